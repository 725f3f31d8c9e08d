package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// Errors returned by Verifier.Verify for its own policy. Test with
// errors.Is.
var (
	// ErrDevToken means the token came from attestd's development
	// provider and the Verifier does not allow those.
	ErrDevToken = errors.New("development token not allowed")
	// ErrTooOld means the token was generated longer ago than MaxAge, or
	// does not say when it was generated.
	ErrTooOld = errors.New("attestation too old")
	// ErrFuture means the token claims to be generated in the future,
	// beyond the allowed clock skew.
	ErrFuture = errors.New("attestation generated in the future")
	// ErrNotValidated means the token is a DeviceCheck token but the
	// Verifier has no Client to ask Apple with.
	ErrNotValidated = errors.New("not validated with apple: no client configured")
)

// MaxClockSkew is how far in the future a token's generation time may lie
// when a Verifier checks its age.
const MaxClockSkew = time.Minute

// Verifier checks attestations: the format, the policy (kind and age) and,
// through Client, Apple's opinion of the token. Its fields must not change
// while it is in use; it is safe for concurrent use.
type Verifier struct {
	// Client asks Apple. Without one, DeviceCheck tokens fail with
	// ErrNotValidated.
	Client *Client
	// AllowDev accepts tokens from attestd's development provider. Apple
	// never issued them, so they are not sent to Apple's own servers; they
	// are sent when Client points at another base URL (a fake server or a
	// proxy), so tests run the whole path. Never set it in production.
	AllowDev bool
	// MaxAge rejects tokens generated longer ago than this, or that do not
	// say when they were generated. Zero means no limit.
	MaxAge time.Duration
	// Replays, when set, refuses a token presented a second time
	// (ErrReplay). A token is recorded once it passes the local checks,
	// before Apple is asked, so one whose check failed for an outage is
	// spent too; clients send a fresh token with every request anyway.
	// Entries expire MaxAge after the token's generation (an hour after
	// use without MaxAge).
	Replays ReplayCache
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Result is the outcome of Verify.
type Result struct {
	Attestation
	// Valid is true when every check passed; Verify then returns nil.
	Valid bool
	// AppleChecked reports whether Apple was asked (and answered).
	AppleChecked bool
	// Age is how long ago the token was generated, when it says.
	Age time.Duration
}

// Verify parses value (an envelope or a bare "v1." value, as in the
// x-oai-attestation header), applies the policy and asks Apple. It returns
// nil only for a valid attestation. The Result is non-nil whenever value
// could be parsed, even with an error, so callers can report what arrived.
//
// Errors wrap ErrMissing, ErrMalformed, ErrClientStatus (a *StatusError),
// ErrDevToken, ErrTooOld, ErrFuture, ErrReplay, ErrNotValidated, one of
// Apple's errors (an *AppleError, e.g. ErrBadDeviceToken) or ctx.Err().
func (v *Verifier) Verify(ctx context.Context, value string) (*Result, error) {
	a, err := Parse(value)
	if a == nil {
		return nil, err
	}
	res := &Result{Attestation: *a, Age: v.age(a)}
	if err != nil {
		return res, err
	}
	if err := v.Check(a); err != nil {
		return res, err
	}
	if err := v.recordUse(ctx, a); err != nil {
		return res, err
	}
	if a.Kind == header.KindDev && (v.Client == nil || v.Client.base == Production || v.Client.base == Development) {
		res.Valid = true
		return res, nil
	}
	if v.Client == nil {
		return res, ErrNotValidated
	}
	if err := v.Client.ValidateDeviceToken(ctx, a.Token); err != nil {
		var ae *AppleError
		res.AppleChecked = errors.As(err, &ae)
		return res, fmt.Errorf("token %s: %w", a.Fingerprint(), err)
	}
	res.AppleChecked, res.Valid = true, true
	return res, nil
}

// Check applies the Verifier's local policy (kind and age) to a parsed
// attestation, without asking Apple.
func (v *Verifier) Check(a *Attestation) error {
	if a.Status != header.StatusOK {
		return &StatusError{Status: a.Status}
	}
	if a.Kind == header.KindDev && !v.AllowDev {
		return ErrDevToken
	}
	if v.MaxAge <= 0 {
		return nil
	}
	if a.GeneratedAt.IsZero() {
		return fmt.Errorf("%w: no generation time", ErrTooOld)
	}
	switch age := v.now().Sub(a.GeneratedAt); {
	case age > v.MaxAge:
		return fmt.Errorf("%w: generated %v ago, limit %v", ErrTooOld, age.Round(time.Millisecond), v.MaxAge)
	case age < -MaxClockSkew:
		return fmt.Errorf("%w: generated %v from now", ErrFuture, (-age).Round(time.Millisecond))
	}
	return nil
}

// recordUse adds a's token to the replay cache, failing if it was there.
func (v *Verifier) recordUse(ctx context.Context, a *Attestation) error {
	if v.Replays == nil {
		return nil
	}
	expiry := v.now().Add(defaultReplayWindow)
	if v.MaxAge > 0 && !a.GeneratedAt.IsZero() {
		expiry = a.GeneratedAt.Add(v.MaxAge + time.Second)
	}
	added, err := v.Replays.Add(ctx, ReplayKey(a.Token), expiry)
	switch {
	case err != nil:
		return fmt.Errorf("replay cache: %w", err)
	case !added:
		return fmt.Errorf("token %s: %w", a.Fingerprint(), ErrReplay)
	}
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) age(a *Attestation) time.Duration {
	if a.GeneratedAt.IsZero() {
		return 0
	}
	return v.now().Sub(a.GeneratedAt)
}

// Reason returns a short machine-readable name for why err failed
// verification, for logs, metrics and JSON answers: "missing",
// "malformed", "client_status", "dev_token", "too_old", "future",
// "replay", "not_validated", "bad_device_token", "bad_request",
// "bad_authorization", "expired_authorization", "forbidden",
// "rate_limited", "apple_server_error", "apple_unavailable",
// "unexpected_response", "network", "canceled", "timeout" or "error".
// It returns "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "error"
}

var reasons = []struct {
	err  error
	name string
}{
	{ErrMissing, "missing"},
	{ErrMalformed, "malformed"},
	{ErrClientStatus, "client_status"},
	{ErrDevToken, "dev_token"},
	{ErrTooOld, "too_old"},
	{ErrFuture, "future"},
	{ErrReplay, "replay"},
	{ErrNotValidated, "not_validated"},
	{ErrBadDeviceToken, "bad_device_token"},
	{ErrBadRequest, "bad_request"},
	{ErrBadAuthorization, "bad_authorization"},
	{ErrExpiredAuthorization, "expired_authorization"},
	{ErrForbidden, "forbidden"},
	{ErrRateLimited, "rate_limited"},
	{ErrServerError, "apple_server_error"},
	{ErrUnavailable, "apple_unavailable"},
	{ErrUnexpectedResponse, "unexpected_response"},
	{ErrNetwork, "network"},
	{ErrLimited, "limited"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

// Rejected reports whether err says the attestation itself is bad
// (missing, malformed, not allowed, too old, already used, refused by
// Apple), as opposed to a failure to check it (Apple unreachable, our own
// credentials refused).
// A server that fails open on outages should still refuse these.
func Rejected(err error) bool {
	for _, e := range []error{ErrMissing, ErrMalformed, ErrClientStatus, ErrDevToken, ErrTooOld, ErrFuture, ErrReplay, ErrBadDeviceToken} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// AppleDown reports whether err says Apple could not be reached or failed:
// no answer, a 5xx, or the check's time ran out waiting for Apple. These
// are what MiddlewareOptions.WhenAppleDown can let through. Apple's 429,
// our own limit, an unexpected answer (a redirect, a 200 with a page) and
// Apple refusing our credentials are not "down": they are refused either
// way, so that a flood or a hostile network cannot open the door.
func AppleDown(err error) bool {
	switch Reason(err) {
	case "network", "apple_server_error", "apple_unavailable", "timeout":
		return true
	}
	return false
}
