package appattest

import (
	"errors"
	"fmt"
)

// Why an attestation, an assertion or a counter was refused. Each is
// carried by an *Error with a Reason; test with errors.Is.
var (
	// ErrBadFormat: not an App Attest attestation or assertion object
	// (not one CBOR map, fmt not "apple-appattest", a field missing or of
	// the wrong type, too large).
	ErrBadFormat = errors.New("not an App Attest object")
	// ErrBadAuthData: the authenticator data is not laid out as Apple's
	// (too short, a credential id running past the end, a COSE key that
	// is not an ES256 P-256 key, bytes after it that are not one CBOR
	// map with text keys).
	ErrBadAuthData = errors.New("malformed authenticator data")
	// ErrBadAppID: the authenticator data's rpIdHash is not SHA-256 of
	// an accepted App ID.
	ErrBadAppID = errors.New("app id not accepted")
	// ErrBadCounter: an attestation's counter is not 0.
	ErrBadCounter = errors.New("attestation counter is not 0")
	// ErrBadAAGUID: the AAGUID is neither Apple's development nor its
	// production value.
	ErrBadAAGUID = errors.New("unknown aaguid")
	// ErrBadEnvironment: the key's environment (from its AAGUID) is not
	// one the caller accepts.
	ErrBadEnvironment = errors.New("environment not accepted")
	// ErrBadKeyID: the credential id is not SHA-256 of the leaf
	// certificate's key, or not the key id the client claimed.
	ErrBadKeyID = errors.New("key id does not match the attested key")
	// ErrBadPublicKey: the COSE key in the authenticator data is not the
	// leaf certificate's key.
	ErrBadPublicKey = errors.New("credential public key does not match the certificate")
	// ErrBadNonce: the leaf certificate's nonce extension is missing,
	// malformed, or not SHA-256(authData ‖ clientDataHash).
	ErrBadNonce = errors.New("nonce does not match")
	// ErrBadChain: the certificates do not parse, the leaf key is not
	// P-256, or the chain does not end at one of the given roots.
	ErrBadChain = errors.New("certificate chain not trusted")
	// ErrExpired: a certificate of the chain is not valid at the time of
	// verification (expired, or not yet valid).
	ErrExpired = errors.New("certificate not valid at this time")
	// ErrBadSignature: the assertion's signature is not a valid ECDSA
	// P-256 signature by the key over SHA-256(authData ‖ clientDataHash).
	ErrBadSignature = errors.New("assertion signature not valid")
	// ErrReplay: a counter already accepted, or below the window.
	ErrReplay = errors.New("assertion counter replayed")
)

// Error is a refusal: which check failed, why, and the underlying error
// when there is one. It never holds the object's bytes.
type Error struct {
	// Reason is the short machine-readable name of the check, as Reason
	// returns it (e.g. "bad_nonce").
	Reason string
	// Err is the sentinel (ErrBadNonce, …).
	Err error
	// Detail says what was found, for a person reading the log.
	Detail string
	// Cause is the error that made the check fail (a CBOR or X.509
	// error), or nil.
	Cause error
}

// Error reads "app attest: <sentinel>: <detail>[: <cause>]".
func (e *Error) Error() string {
	s := "app attest: " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and, when there is one, the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// reasons maps each sentinel to its name, in the package doc's order.
var reasons = []struct {
	err  error
	name string
}{
	{ErrBadFormat, "bad_format"},
	{ErrBadAuthData, "bad_auth_data"},
	{ErrBadAppID, "bad_app_id"},
	{ErrBadCounter, "bad_counter"},
	{ErrBadAAGUID, "bad_aaguid"},
	{ErrBadEnvironment, "bad_environment"},
	{ErrBadKeyID, "bad_key_id"},
	{ErrBadPublicKey, "bad_public_key"},
	{ErrBadNonce, "bad_nonce"},
	{ErrBadChain, "bad_chain"},
	{ErrExpired, "expired"},
	{ErrBadSignature, "bad_signature"},
	{ErrReplay, "replay"},
	{ErrUnknownKey, "unknown_key"},
	{ErrKeyRevoked, "revoked_key"},
	{ErrKeyConflict, "key_conflict"},
}

// Reason returns the short machine-readable name of why err refused an
// object (the package doc lists them), "error" for any other error (a
// caller's mistake, such as no App ID given) and "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "error"
}

// Rejected reports whether err says the object itself is bad (any of the
// sentinels above), as opposed to a caller's mistake.
func Rejected(err error) bool {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return true
		}
	}
	return false
}

// refuse makes the *Error for sentinel, with its reason name.
func refuse(sentinel error, cause error, format string, args ...any) *Error {
	return &Error{Reason: reasonOf(sentinel), Err: sentinel, Detail: fmt.Sprintf(format, args...), Cause: cause}
}

func reasonOf(sentinel error) string {
	for _, r := range reasons {
		if r.err == sentinel {
			return r.name
		}
	}
	return "error"
}
