package darwin

import (
	"errors"
	"fmt"
)

// secItems is the keychainNative that calls Security's SecItem functions
// on the login keychain (the file-based one: no kSecUseDataProtectionKeychain,
// which would need a keychain-access-groups entitlement). Each call runs
// on a locked thread inside an autorelease pool.
type secItems struct{}

var _ keychainNative = secItems{}

func newKeychainNative() (keychainNative, error) {
	if err := loadKeychain(); err != nil {
		return nil, err
	}
	if err := loadObjC(); err != nil { // inAutoreleasePool needs it
		return nil, err
	}
	return secItems{}, nil
}

// inPool runs f in an autorelease pool and returns its result.
func inPool[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	if perr := inAutoreleasePool(func() { v, err = f() }); perr != nil {
		return v, perr
	}
	return v, err
}

// itemDictionary returns a dictionary naming the item (class, service,
// account) plus the extra key and value pairs; the caller must CFRelease
// it. It retains what it holds, so the strings made here go at once.
func itemDictionary(service, account string, extra ...uintptr) (uintptr, error) {
	svc := newCFString(service)
	if svc == 0 {
		return 0, fmt.Errorf("keychain: cannot make a CFString of the service %q", service)
	}
	defer cfRelease(svc)
	acct := newCFString(account)
	if acct == 0 {
		return 0, fmt.Errorf("keychain: cannot make a CFString of the account %q", account)
	}
	defer cfRelease(acct)
	keys := []uintptr{kSecClass, kSecAttrService, kSecAttrAccount}
	values := []uintptr{kSecClassGenericPassword, svc, acct}
	for i := 0; i+1 < len(extra); i += 2 {
		keys, values = append(keys, extra[i]), append(values, extra[i+1])
	}
	d := newCFDictionary(keys, values)
	if d == 0 {
		return 0, errors.New("keychain: CFDictionaryCreate failed")
	}
	return d, nil
}

func (secItems) copyData(service, account string) ([]byte, error) {
	return inPool(func() ([]byte, error) {
		extra := []uintptr{kSecReturnData, cfBooleanTrue, kSecMatchLimit, kSecMatchLimitOne}
		if kSecUseAuthenticationUI != 0 && kSecUseAuthenticationUIFail != 0 {
			// Fail rather than authenticate with UI. (It does not switch off
			// the file-based keychain's own access-list panel; see the
			// package doc.)
			extra = append(extra, kSecUseAuthenticationUI, kSecUseAuthenticationUIFail)
		}
		query, err := itemDictionary(service, account, extra...)
		if err != nil {
			return nil, err
		}
		defer cfRelease(query)
		var result uintptr
		// OSStatus SecItemCopyMatching(CFDictionaryRef query, CFTypeRef *result);
		// (Create rule: the result is ours to release.)
		if st := secItemCopyMatching(query, &result); st != errSecSuccess {
			return nil, keychainError(service, account, "SecItemCopyMatching", st, secErrorMessage(st))
		}
		if result == 0 {
			return nil, fmt.Errorf("keychain item (service %q, account %q): SecItemCopyMatching succeeded without a result", service, account)
		}
		defer cfRelease(result)
		data, ok := cfDataBytes(result)
		if !ok {
			return nil, fmt.Errorf("keychain item (service %q, account %q): SecItemCopyMatching returned something other than data", service, account)
		}
		return data, nil
	})
}

func (secItems) add(service, account, label string, data []byte) error {
	_, err := inPool(func() (struct{}, error) {
		lbl := newCFString(label)
		if lbl == 0 {
			return struct{}{}, errors.New("keychain: cannot make a CFString of the label")
		}
		defer cfRelease(lbl)
		value := newCFData(data)
		if value == 0 {
			return struct{}{}, errors.New("keychain: CFDataCreate failed")
		}
		defer cfRelease(value)
		attrs, err := itemDictionary(service, account, kSecAttrLabel, lbl, kSecValueData, value)
		if err != nil {
			return struct{}{}, err
		}
		defer cfRelease(attrs)
		// OSStatus SecItemAdd(CFDictionaryRef attributes, CFTypeRef *result);
		// A NULL result: on macOS the added item would be returned.
		if st := secItemAdd(attrs, nil); st != errSecSuccess {
			return struct{}{}, keychainError(service, account, "SecItemAdd", st, secErrorMessage(st))
		}
		return struct{}{}, nil
	})
	return err
}

func (secItems) update(service, account string, data []byte) error {
	_, err := inPool(func() (struct{}, error) {
		query, err := itemDictionary(service, account)
		if err != nil {
			return struct{}{}, err
		}
		defer cfRelease(query)
		value := newCFData(data)
		if value == 0 {
			return struct{}{}, errors.New("keychain: CFDataCreate failed")
		}
		defer cfRelease(value)
		attrs := newCFDictionary([]uintptr{kSecValueData}, []uintptr{value})
		if attrs == 0 {
			return struct{}{}, errors.New("keychain: CFDictionaryCreate failed")
		}
		defer cfRelease(attrs)
		// OSStatus SecItemUpdate(CFDictionaryRef query, CFDictionaryRef attributesToUpdate);
		if st := secItemUpdate(query, attrs); st != errSecSuccess {
			return struct{}{}, keychainError(service, account, "SecItemUpdate", st, secErrorMessage(st))
		}
		return struct{}{}, nil
	})
	return err
}

func (secItems) remove(service, account string) error {
	_, err := inPool(func() (struct{}, error) {
		query, err := itemDictionary(service, account)
		if err != nil {
			return struct{}{}, err
		}
		defer cfRelease(query)
		// OSStatus SecItemDelete(CFDictionaryRef query);
		if st := secItemDelete(query); st != errSecSuccess {
			return struct{}{}, keychainError(service, account, "SecItemDelete", st, secErrorMessage(st))
		}
		return struct{}{}, nil
	})
	return err
}
