package darwin

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

func selfIdentity() (Identity, error) {
	sig, err := selfSignature()
	if err != nil {
		return Identity{}, err
	}
	return identityOf(mainBundleID(), sig), nil
}

// mainBundleID returns the main bundle's identifier, or "" when the
// executable is not inside a bundle (or CoreFoundation cannot be loaded).
func mainBundleID() string {
	if loadCoreFoundation() != nil {
		return ""
	}
	// CFBundleRef CFBundleGetMainBundle(void);  (Get rule: not released)
	b := cfBundleGetMainBundle()
	if b == 0 {
		return ""
	}
	// CFStringRef CFBundleGetIdentifier(CFBundleRef bundle);  (Get rule)
	return cfString(cfBundleGetIdentifier(b))
}

// selfSignature reads the own code signature inside an autorelease pool
// on a locked thread.
func selfSignature() (Signature, error) {
	if err := loadSecurity(); err != nil {
		return Signature{}, err
	}
	var (
		sig Signature
		err error
	)
	if perr := inAutoreleasePool(func() { sig, err = selfSignatureInPool() }); perr != nil {
		return Signature{}, perr
	}
	return sig, err
}

func selfSignatureInPool() (Signature, error) {
	var code uintptr
	// OSStatus SecCodeCopySelf(SecCSFlags flags, SecCodeRef *self);
	st := secCodeCopySelf(kSecCSDefaultFlags, &code)
	if st == errSecCSUnsigned {
		return Signature{}, nil
	}
	if st != 0 {
		return Signature{}, statusError("SecCodeCopySelf", st)
	}
	defer cfRelease(code)
	var info uintptr
	// OSStatus SecCodeCopySigningInformation(SecStaticCodeRef code, SecCSFlags flags,
	//     CFDictionaryRef *information);
	// A SecCodeRef is accepted in place of the SecStaticCodeRef.
	st = secCodeCopySigningInformation(code, kSecCSSigningInformation, &info)
	if st == errSecCSUnsigned {
		return Signature{}, nil
	}
	if st != 0 {
		return Signature{}, statusError("SecCodeCopySigningInformation", st)
	}
	if info == 0 {
		return Signature{}, fmt.Errorf("SecCodeCopySigningInformation returned no dictionary")
	}
	defer cfRelease(info)
	var sig Signature
	// const void *CFDictionaryGetValue(CFDictionaryRef theDict, const void *key);  (Get rule)
	if v := cfDictionaryGetValue(info, kSecCodeInfoIdentifier); v != 0 {
		sig.Signed = true
		sig.Identifier = cfString(v)
	}
	sig.TeamID = cfString(cfDictionaryGetValue(info, kSecCodeInfoTeamIdentifier))
	if flags, ok := cfInt64(cfDictionaryGetValue(info, kSecCodeInfoFlags)); ok {
		sig.Flags = uint32(flags)
	}
	return sig, nil
}

func osVersion() (string, error) {
	v, err := unix.Sysctl("kern.osproductversion")
	if err != nil {
		return "", fmt.Errorf("sysctl kern.osproductversion: %w", err)
	}
	if build, err := unix.Sysctl("kern.osversion"); err == nil && build != "" {
		v += " (" + build + ")"
	}
	return v, nil
}

func translated() (bool, error) {
	v, err := unix.SysctlUint32("sysctl.proc_translated")
	if errors.Is(err, unix.ENOENT) {
		return false, nil // an Intel Mac: no Rosetta
	}
	if err != nil {
		return false, fmt.Errorf("sysctl sysctl.proc_translated: %w", err)
	}
	return v == 1, nil
}
