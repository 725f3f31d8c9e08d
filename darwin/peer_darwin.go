package darwin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"
)

func newPeerRequirement(text string) (PeerChecker, error) {
	if err := loadPeerSecurity(); err != nil {
		return nil, err
	}
	if err := loadSystem(); err != nil {
		return nil, err
	}
	str := newCFString(text)
	if str == 0 {
		return nil, fmt.Errorf("peer requirement %q: cannot make a CFString of it", text)
	}
	defer cfRelease(str)
	var ref uintptr
	// OSStatus SecRequirementCreateWithString(CFStringRef text, SecCSFlags flags,
	//     SecRequirementRef *requirement);
	if st := secRequirementCreateWithString(str, kSecCSDefaultFlags, &ref); st != 0 {
		return nil, fmt.Errorf("peer requirement %q: %w", text, statusError("SecRequirementCreateWithString", st))
	}
	// The compiled requirement is never released: a daemon makes one
	// checker at start-up and uses it until it exits.
	p := peerCheck{
		token:    peerAuditToken,
		validate: func(t auditToken) error { return validateGuest(t, ref) },
	}
	return p.check, nil
}

// peerAuditToken reads the peer's audit token with getsockopt(SOL_LOCAL,
// LOCAL_PEERTOKEN).
func peerAuditToken(conn *net.UnixConn) (auditToken, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return auditToken{}, err
	}
	var (
		t     auditToken
		opErr error
	)
	err = raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(t))
		// int getsockopt(int socket, int level, int option_name,
		//     void *restrict option_value, socklen_t *restrict option_len);
		// purego's trampoline reads errno right after the call, on the
		// thread that made it, before any Go code can run there; errno is
		// a C int, so only the low 32 bits of that word are errno.
		r, _, errno := purego.SyscallN(getsockoptSym, fd, unix.SOL_LOCAL, unix.LOCAL_PEERTOKEN,
			uintptr(unsafe.Pointer(&t)), uintptr(unsafe.Pointer(&size)))
		opErr = getsockoptResult(int32(r), int32(errno), size, uint32(unsafe.Sizeof(t)))
	})
	if err != nil {
		return auditToken{}, err
	}
	return t, opErr
}

// validateGuest checks the code behind the audit token against the
// requirement: SecCodeCopyGuestWithAttributes with kSecGuestAttributeAudit,
// then SecCodeCheckValidity, inside an autorelease pool on a locked
// thread.
func validateGuest(t auditToken, req uintptr) error {
	var err error
	if perr := inAutoreleasePool(func() { err = validateGuestInPool(t, req) }); perr != nil {
		return perr
	}
	return err
}

func validateGuestInPool(t auditToken, req uintptr) error {
	var raw [32]byte
	for i, w := range t {
		binary.NativeEndian.PutUint32(raw[4*i:], w)
	}
	data := newCFData(raw[:])
	if data == 0 {
		return errors.New("CFDataCreate failed")
	}
	defer cfRelease(data)
	attrs := newCFDictionary([]uintptr{kSecGuestAttributeAudit}, []uintptr{data})
	if attrs == 0 {
		return errors.New("CFDictionaryCreate failed")
	}
	defer cfRelease(attrs)
	var code uintptr
	// OSStatus SecCodeCopyGuestWithAttributes(SecCodeRef host, CFDictionaryRef attributes,
	//     SecCSFlags flags, SecCodeRef *guest);
	if st := secCodeCopyGuestWithAttributes(0, attrs, kSecCSDefaultFlags, &code); st != 0 {
		return statusError("SecCodeCopyGuestWithAttributes", st)
	}
	defer cfRelease(code)
	// OSStatus SecCodeCheckValidity(SecCodeRef code, SecCSFlags flags,
	//     SecRequirementRef requirement);
	if st := secCodeCheckValidity(code, kSecCSDefaultFlags, req); st != 0 {
		return statusError("SecCodeCheckValidity", st)
	}
	return nil
}
