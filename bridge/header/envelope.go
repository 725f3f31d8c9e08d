package header

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Status is the s field of the app-server's attestation envelope: what
// happened when the app-server asked its client for a token.
type Status int

// Envelope statuses, as codex app-server defines them.
const (
	StatusOK                Status = 0 // the client answered with a token
	StatusTimeout           Status = 1 // no answer within the deadline
	StatusClientError       Status = 2 // the client answered a JSON-RPC error
	StatusCanceled          Status = 3 // the request was canceled
	StatusMalformedResponse Status = 4 // the answer had no string token
)

var statusNames = [...]string{"ok", "timeout", "client_error", "canceled", "malformed_response"}

// String returns the status name, e.g. "client_error", or "unknown(N)".
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("unknown(%d)", int(s))
}

// Known reports whether s is one of the statuses defined above.
func (s Status) Known() bool { return s >= 0 && int(s) < len(statusNames) }

// MaxEnvelopeLen bounds the envelope text ParseEnvelope accepts.
const MaxEnvelopeLen = MaxValueLen + 256

// Errors returned by ParseEnvelope; test with errors.Is.
var (
	ErrEnvelopeJSON    = errors.New("attestation envelope is not a JSON object")
	ErrEnvelopeVersion = errors.New("attestation envelope has an unsupported version")
	ErrEnvelopeStatus  = errors.New("attestation envelope has an unknown status")
	ErrEnvelopeToken   = errors.New("attestation envelope token does not match its status")
)

// Envelope is the JSON the app-server sends upstream as x-oai-attestation:
// {"v":1,"s":0,"t":"v1.…"}. Token is set only when Status is StatusOK.
type Envelope struct {
	Version int
	Status  Status
	Token   string
}

// ParseEnvelope parses the app-server envelope. It checks the shape and the
// status only; decode Token with Decode. Member names are matched exactly
// and may not repeat; members other than v, s and t are ignored, and
// their values may nest at most 32 levels deep. What it allocates is
// bounded by a small multiple of len(s), whatever s holds.
func ParseEnvelope(s string) (Envelope, error) {
	if len(s) > MaxEnvelopeLen {
		return Envelope{}, fmt.Errorf("parse envelope: %w: longer than %d bytes", ErrEnvelopeJSON, MaxEnvelopeLen)
	}
	members, err := scanEnvelope(s)
	if err != nil {
		return Envelope{}, fmt.Errorf("parse envelope: %w: %v", ErrEnvelopeJSON, err)
	}
	var (
		v, st *int
		t     *string
	)
	for _, m := range []struct {
		name string
		raw  string
		dst  **int
	}{{"v", members.v, &v}, {"s", members.s, &st}} {
		if m.raw == "" {
			continue
		}
		if err := json.Unmarshal([]byte(m.raw), m.dst); err != nil {
			return Envelope{}, fmt.Errorf("parse envelope: %w: %s: %v", ErrEnvelopeJSON, m.name, err)
		}
	}
	switch raw := members.t; {
	case raw == "", raw == "null":
	case raw[0] != '"':
		return Envelope{}, fmt.Errorf("parse envelope: %w: t: not a string", ErrEnvelopeJSON)
	default:
		tok := unquote(raw)
		t = &tok
	}
	if v == nil || *v != 1 {
		return Envelope{}, fmt.Errorf("parse envelope: %w", ErrEnvelopeVersion)
	}
	if st == nil || !Status(*st).Known() {
		return Envelope{}, fmt.Errorf("parse envelope: %w", ErrEnvelopeStatus)
	}
	e := Envelope{Version: 1, Status: Status(*st)}
	if t != nil {
		e.Token = *t
	}
	switch {
	case e.Status == StatusOK && e.Token == "":
		return Envelope{}, fmt.Errorf("parse envelope: %w: status ok without t", ErrEnvelopeToken)
	case e.Status != StatusOK && t != nil:
		return Envelope{}, fmt.Errorf("parse envelope: %w: status %s with t", ErrEnvelopeToken, e.Status)
	}
	return e, nil
}

// IsEnvelope reports whether s looks like a JSON envelope rather than a
// bare header value, so callers can accept either form.
func IsEnvelope(s string) bool {
	return strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{")
}
