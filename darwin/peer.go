package darwin

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// ErrPeerRejected is wrapped by every error a PeerChecker from
// NewPeerRequirement returns: the peer is not served.
var ErrPeerRejected = errors.New("peer rejected by the code requirement")

// Code signing OSStatus values (Security/CSCommon.h) the peer check names.
const (
	errSecCSNoSuchCode      = -67065 // no code object for the audit token (the peer is gone)
	errSecCSUnsigned        = -67062 // the code is not signed at all
	errSecCSSignatureFailed = -67061 // invalid signature (code or signature modified)
	errSecCSReqInvalid      = -67052 // invalid or corrupted code requirement
	errSecCSReqUnsupported  = -67051 // unsupported type or version of code requirement
	errSecCSReqFailed       = -67050 // code failed to satisfy the requirement
)

var osStatusText = map[int32]string{
	errSecCSNoSuchCode:      "no such code (the peer may have exited)",
	errSecCSUnsigned:        "code object is not signed at all",
	errSecCSSignatureFailed: "invalid signature (code or signature have been modified)",
	errSecCSReqInvalid:      "invalid or corrupted code requirement",
	errSecCSReqUnsupported:  "unsupported type or version of code requirement",
	errSecCSReqFailed:       "code failed to satisfy specified code requirement(s)",

	// Security/SecBase.h
	errSecUserCanceled:          "User canceled the operation.",
	errSecNotAvailable:          "No keychain is available. You may need to restart your computer.",
	errSecAuthFailed:            "The user name or passphrase you entered is not correct.",
	errSecNoSuchKeychain:        "The specified keychain could not be found.",
	errSecDuplicateItem:         "The specified item already exists in the keychain.",
	errSecItemNotFound:          "The specified item could not be found in the keychain.",
	errSecNoDefaultKeychain:     "A default keychain could not be found.",
	errSecInteractionNotAllowed: "User interaction is not allowed.",
}

// OSStatusError is a Security framework call that did not return
// errSecSuccess.
type OSStatusError struct {
	Op     string // the function called
	Status int32  // its OSStatus
	Msg    string // SecCopyErrorMessageString's text, if any
}

func (e *OSStatusError) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = osStatusText[e.Status]
	}
	if msg == "" {
		return fmt.Sprintf("%s: OSStatus %d", e.Op, e.Status)
	}
	return fmt.Sprintf("%s: OSStatus %d: %s", e.Op, e.Status, msg)
}

// auditToken is audit_token_t: eight 32-bit words, as getsockopt's
// LOCAL_PEERTOKEN returns them.
type auditToken [auditTokenWords]uint32

// pid is audit_token_to_pid: the sixth word.
func (t auditToken) pid() int { return int(t[auditTokenPIDWord]) }

// peerCheck holds the two native steps of a PeerChecker, so its logic is
// tested without a Mac.
type peerCheck struct {
	// token reads the peer's audit token from the connection.
	token func(conn *net.UnixConn) (auditToken, error)
	// validate checks the code behind the token against the requirement;
	// nil means it satisfies it.
	validate func(t auditToken) error
}

// check fails closed: an unreadable token or any validation failure
// rejects the peer.
func (p peerCheck) check(conn *net.UnixConn) error {
	if conn == nil {
		return fmt.Errorf("%w: no connection", ErrPeerRejected)
	}
	t, err := p.token(conn)
	if err != nil {
		return fmt.Errorf("%w: read the peer's audit token: %w", ErrPeerRejected, err)
	}
	if err := p.validate(t); err != nil {
		return fmt.Errorf("%w: pid %d: %w", ErrPeerRejected, t.pid(), err)
	}
	return nil
}

// validRequirementText rejects requirement text that cannot be meant.
func validRequirementText(text string) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("empty code requirement")
	}
	return nil
}

// getsockoptResult turns what getsockopt(SOL_LOCAL, LOCAL_PEERTOKEN)
// returned (ret), the errno captured with that same call, and the size it
// wrote into nil or an error that names the cause.
func getsockoptResult(ret, errno int32, size, want uint32) error {
	switch {
	case ret != 0 && errno == 0:
		return fmt.Errorf("getsockopt LOCAL_PEERTOKEN: returned %d and left errno 0", ret)
	case ret != 0:
		return fmt.Errorf("getsockopt LOCAL_PEERTOKEN: %w", syscall.Errno(errno))
	case size != want:
		return fmt.Errorf("getsockopt LOCAL_PEERTOKEN: %d bytes, want %d", size, want)
	}
	return nil
}
