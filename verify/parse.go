package verify

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// HeaderName is the HTTP header in which codex app-server forwards the
// attestation upstream.
const HeaderName = "X-Oai-Attestation"

// Form is the shape in which an attestation arrived.
type Form string

const (
	// FormEnvelope is the app-server's JSON envelope {"v":1,"s":N,"t":"v1.…"}.
	FormEnvelope Form = "envelope"
	// FormValue is a bare "v1." header value, as the helper hands it out.
	FormValue Form = "value"
)

// Errors returned by Parse and Verifier.Verify for what arrived (as
// opposed to what Apple said). Test with errors.Is.
var (
	// ErrMissing means there was no attestation at all.
	ErrMissing = errors.New("no attestation")
	// ErrMalformed means the input is neither a valid envelope nor a valid
	// header value. The header package's error is wrapped too, so
	// errors.Is(err, header.ErrBase64) and the like also work.
	ErrMalformed = errors.New("malformed attestation")
	// ErrClientStatus means the app-server sent an envelope with a status
	// other than ok: it could not get a token from its client. The error is
	// a *StatusError that says which status.
	ErrClientStatus = errors.New("app-server sent no token")
)

// StatusError reports an envelope whose status is not ok. It unwraps to
// ErrClientStatus.
type StatusError struct {
	Status header.Status
}

// Error names the status and what it means.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%v: status %d %s (%s)", ErrClientStatus, int(e.Status), e.Status, StatusText(e.Status))
}

// Unwrap returns ErrClientStatus.
func (e *StatusError) Unwrap() error { return ErrClientStatus }

var statusText = map[header.Status]string{
	header.StatusOK:                "the client answered with a token",
	header.StatusTimeout:           "the client did not answer the app-server in time",
	header.StatusClientError:       "the client answered the app-server with an error",
	header.StatusCanceled:          "the app-server canceled its request to the client",
	header.StatusMalformedResponse: "the client's answer to the app-server had no token",
}

// StatusText returns a short English description of an envelope status,
// or "unknown status" for one the header package does not define.
func StatusText(s header.Status) string {
	if t, ok := statusText[s]; ok {
		return t
	}
	return "unknown status"
}

// Attestation is what a client sent, parsed but not yet checked.
type Attestation struct {
	// Form is the shape it arrived in.
	Form Form
	// Status is the envelope status; StatusOK for a bare value. When it is
	// not ok, the fields below are empty.
	Status header.Status
	// Kind is header.KindDeviceCheck, header.KindAppAttest or
	// header.KindDev.
	Kind string
	// Token holds the raw token bytes (for App Attest, the assertion
	// object). It is a secret: log Fingerprint() instead.
	Token []byte
	// KeyID and Nonce are App Attest's key id (32 bytes) and nonce (16
	// bytes), nil for the other kinds. The key id names the device's key,
	// not a secret; once Verify finds it registered, the Result says so.
	KeyID, Nonce []byte
	// GeneratedAt is when the helper got the token; zero if it did not say.
	GeneratedAt time.Time
	// BundleID and TeamID identify the helper, as it reported them. They
	// are claims, not proof: Apple's answer does not cover them.
	BundleID, TeamID string

	fingerprint string // of the "v1." value, set by Parse
}

// Fingerprint returns a short name for the token that is safe to log, or
// "" when there is none. For a parsed attestation it is the fingerprint of
// the "v1." value, the name attestd's own logs and "attestd decode" give
// it, so client and server logs can be matched.
func (a *Attestation) Fingerprint() string {
	switch {
	case a == nil || len(a.Token) == 0:
		return ""
	case a.fingerprint != "":
		return a.fingerprint
	}
	return header.Fingerprint(a.Token)
}

// Parse parses the value of the x-oai-attestation header: either the
// app-server's JSON envelope or a bare "v1." value. Surrounding white space
// is ignored.
//
// Parse checks the format only; it neither applies a policy nor asks Apple
// (see Verifier). It returns an error wrapping ErrMissing for empty input
// and ErrMalformed for input it cannot parse. For a well-formed envelope
// whose status is not ok it returns both the Attestation (with its Status)
// and a *StatusError, so a caller that stops at the first error is safe.
func Parse(s string) (*Attestation, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ErrMissing
	}
	if !header.IsEnvelope(s) {
		v, err := header.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return fromValue(FormValue, s, v), nil
	}
	env, err := header.ParseEnvelope(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.Status != header.StatusOK {
		a := &Attestation{Form: FormEnvelope, Status: env.Status}
		return a, &StatusError{Status: env.Status}
	}
	v, err := header.Decode(env.Token)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope token: %w", ErrMalformed, err)
	}
	return fromValue(FormEnvelope, env.Token, v), nil
}

func fromValue(f Form, value string, v header.Value) *Attestation {
	return &Attestation{
		fingerprint: header.Fingerprint(value),
		Form:        f,
		Status:      header.StatusOK,
		Kind:        v.Kind,
		Token:       v.Token,
		KeyID:       v.KeyID,
		Nonce:       v.Nonce,
		GeneratedAt: v.GeneratedAt,
		BundleID:    v.BundleID,
		TeamID:      v.TeamID,
	}
}
