package darwin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

// KeyStore keeps the App Attest key id between runs of the helper. Apple
// advises the Keychain: the item survives updates of the app, and a
// reinstall or a restore to another Mac loses the key anyway. Keychain is
// the macOS one; tests of code above it pass a fake.
type KeyStore interface {
	// Get returns the stored key id, or an error wrapping ErrNotFound
	// when there is none. A stored value that is not a key id in Apple's
	// form gives an error wrapping ErrBadKeyID: delete it and make a new
	// key.
	Get(ctx context.Context) (keyID string, err error)
	// Set stores keyID (which must pass ParseKeyID), replacing any stored
	// one.
	Set(ctx context.Context, keyID string) error
	// Delete removes the stored key id; when there is none it returns nil.
	Delete(ctx context.Context) error
}

// ErrNotFound means no key id is stored (errSecItemNotFound).
var ErrNotFound = errors.New("no App Attest key id is stored")

const (
	// KeychainAccount is the account of the Keychain item that holds the
	// key id; its service names the host (KeychainService).
	KeychainAccount = "appattest-key-id"
	// DefaultKeychainService is the item's service when neither a
	// LaunchAgent label nor a bundle id is known.
	DefaultKeychainService = "attestd"
	// DefaultKeychainTimeout bounds each Keychain call when
	// KeychainOptions.Timeout is zero.
	DefaultKeychainTimeout = 5 * time.Second
	// keychainLabel is the item's label, what Keychain Access shows as its
	// name.
	keychainLabel = "attestd App Attest key id"
)

// KeychainService returns the service of the Keychain item for a helper
// that runs under the LaunchAgent label, else (bridge and development
// runs) as the bundle id, else DefaultKeychainService. Each host app has
// its own label, so each has its own key.
func KeychainService(label, bundleID string) string {
	for _, s := range []string{label, bundleID} {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return DefaultKeychainService
}

// KeychainOptions configure NewKeychain.
type KeychainOptions struct {
	// Service is the item's service (KeychainService); empty means
	// DefaultKeychainService.
	Service string
	// Timeout bounds each call; zero means DefaultKeychainTimeout. A call
	// still blocked after it (a Keychain prompt nobody answers) fails
	// with a timeout, and later calls wait for it up to their own
	// deadlines.
	Timeout time.Duration
}

// Keychain is the KeyStore in the user's login Keychain: a generic
// password item with the service from KeychainOptions and the account
// KeychainAccount, whose data is the key id. Calls run one at a time.
type Keychain struct {
	native  keychainNative
	service string
	calls   *serialCalls
}

var _ KeyStore = (*Keychain)(nil)

// NewKeychain returns the KeyStore in the login Keychain. Off macOS it
// returns an error wrapping ErrUnsupported.
func NewKeychain(opts KeychainOptions) (*Keychain, error) {
	n, err := newKeychainNative()
	if err != nil {
		return nil, err
	}
	return newKeychainWith(n, opts)
}

// keychainNative is the seam between the Keychain logic and Security's
// SecItem functions. Each call blocks until Security returns.
type keychainNative interface {
	// copyData returns the item's data, or an error wrapping ErrNotFound.
	copyData(service, account string) ([]byte, error)
	// add adds the item; an existing one gives a *KeychainError with
	// Status errSecDuplicateItem.
	add(service, account, label string, data []byte) error
	// update replaces the item's data; a missing item wraps ErrNotFound.
	update(service, account string, data []byte) error
	// remove deletes the item; a missing item wraps ErrNotFound.
	remove(service, account string) error
}

func newKeychainWith(n keychainNative, opts KeychainOptions) (*Keychain, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("keychain: negative timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultKeychainTimeout
	}
	service := opts.Service
	if service == "" {
		service = DefaultKeychainService
	}
	if strings.TrimSpace(service) != service || strings.IndexByte(service, 0) >= 0 {
		return nil, fmt.Errorf("keychain: service %q: must be a label or bundle id without surrounding spaces or NUL", service)
	}
	return &Keychain{native: n, service: service, calls: newSerialCalls("keychain", "the Keychain", opts.Timeout)}, nil
}

// Service returns the item's service.
func (k *Keychain) Service() string { return k.service }

// Get implements KeyStore.
func (k *Keychain) Get(ctx context.Context) (string, error) {
	data, err := k.do(ctx, func() ([]byte, error) { return k.native.copyData(k.service, KeychainAccount) })
	if err != nil {
		return "", err
	}
	keyID := string(data)
	if _, err := ParseKeyID(keyID); err != nil {
		return "", hint.Wrap(fmt.Errorf("keychain item (service %q, account %q): %w", k.service, KeychainAccount, err),
			"delete the item ("+k.deleteCommand()+"); attestd then makes a new key")
	}
	return keyID, nil
}

// Set implements KeyStore: it adds the item, or replaces the data of the
// one that exists.
func (k *Keychain) Set(ctx context.Context, keyID string) error {
	if _, err := ParseKeyID(keyID); err != nil {
		return fmt.Errorf("keychain: %w", err)
	}
	_, err := k.do(ctx, func() ([]byte, error) {
		err := k.native.add(k.service, KeychainAccount, keychainLabel, []byte(keyID))
		if isStatus(err, errSecDuplicateItem) {
			err = k.native.update(k.service, KeychainAccount, []byte(keyID))
		}
		return nil, err
	})
	return err
}

// Delete implements KeyStore.
func (k *Keychain) Delete(ctx context.Context) error {
	_, err := k.do(ctx, func() ([]byte, error) {
		err := k.native.remove(k.service, KeychainAccount)
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
		return nil, err
	})
	return err
}

// do runs the blocking f on a goroutine of its own and waits for it like
// an Apple completion handler, so that a call Security never returns from
// ends at the deadline. Such a goroutine stays blocked until Security
// returns.
func (k *Keychain) do(ctx context.Context, f func() ([]byte, error)) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	r, err := await(ctx, k.calls, func(deliver func(result)) error {
		go func() {
			data, err := f()
			deliver(result{data, err})
		}()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.data, r.err
}

// deleteCommand is the security(1) command that deletes the item.
func (k *Keychain) deleteCommand() string {
	return fmt.Sprintf("security delete-generic-password -s %q -a %q", k.service, KeychainAccount)
}

// KeychainError is a SecItem call on the key id's item that failed with
// an OSStatus other than errSecItemNotFound (which is ErrNotFound).
type KeychainError struct {
	Service, Account string
	Err              *OSStatusError // the call, its OSStatus and Apple's text
}

func (e *KeychainError) Error() string {
	return fmt.Sprintf("keychain item (service %q, account %q): %v", e.Service, e.Account, e.Err)
}

// Unwrap returns the *OSStatusError.
func (e *KeychainError) Unwrap() error { return e.Err }

// Hint says what to do about the failure, for hint.Of.
func (e *KeychainError) Hint() string {
	find := fmt.Sprintf("security find-generic-password -s %q -a %q", e.Service, e.Account)
	remove := fmt.Sprintf("security delete-generic-password -s %q -a %q", e.Service, e.Account)
	switch e.Err.Status {
	case errSecInteractionNotAllowed, errSecAuthFailed, errSecUserCanceled:
		return "the Keychain wants the user to allow this (the login keychain is locked, or the item " +
			"was made by a differently signed attestd): unlock the login keychain, or delete the item (" +
			remove + ") so attestd makes a new key"
	case errSecNotAvailable, errSecNoSuchKeychain, errSecNoDefaultKeychain:
		return "this session has no login keychain: " + provider.NoGUISessionHint
	case errSecDuplicateItem:
		return "an item with this service and account exists where attestd cannot see it; look at it with " + find
	}
	return ""
}

var _ hint.Hinter = (*KeychainError)(nil)

// keychainError turns a failed SecItem call into ErrNotFound or a
// *KeychainError; msg is SecCopyErrorMessageString's text, if any.
func keychainError(service, account, op string, status int32, msg string) error {
	if status == errSecItemNotFound {
		return fmt.Errorf("keychain item (service %q, account %q): %w", service, account, ErrNotFound)
	}
	return &KeychainError{Service: service, Account: account, Err: &OSStatusError{Op: op, Status: status, Msg: msg}}
}

// isStatus reports whether err is a SecItem failure with status.
func isStatus(err error, status int32) bool {
	var se *OSStatusError
	return errors.As(err, &se) && se.Status == status
}
