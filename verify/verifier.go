package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/appattest"
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

// Defaults of a Verifier's zero fields.
const (
	// DefaultMaxAge is the oldest token a Verifier accepts when MaxAge is
	// zero. attestd's pool hands out tokens at most 20 s old; the rest is
	// room for the request's way and for the client's clock. g is the
	// client's claim, so the limit catches stale honest tokens; replays
	// are the replay check's job.
	DefaultMaxAge = 5 * time.Minute
	// DefaultReplayWindow is how long a Verifier remembers a token when
	// ReplayWindow is zero. Apple does not publish how long a token stays
	// valid (attestd probe measures it on a Mac), so it is kept well past
	// any lifetime reported.
	DefaultReplayWindow = time.Hour
	// DefaultRefusedWindow is how long a Verifier remembers a token Apple
	// refused when RefusedWindow is zero: long enough that a repeat is
	// refused without asking Apple again, short enough that a flood of
	// distinct forged tokens cannot fill the store.
	DefaultRefusedWindow = time.Minute
)

// Verifier checks attestations: the format, the policy (kind, age, one
// use per token) and, through Client, Apple's opinion of the token.
//
// The zero value is the safe one: tokens older than DefaultMaxAge are
// refused, every token is remembered for DefaultReplayWindow in a
// process-wide in-memory cache and refused a second time, and one check
// takes at most DefaultTimeout. Turning any of that off takes an explicit
// field. Its fields must not change while it is in use; it is safe for
// concurrent use.
type Verifier struct {
	// Client asks Apple; it must come from NewClient. Without one,
	// DeviceCheck tokens fail with ErrNotValidated, and Middleware
	// refuses the Verifier unless NoClient says that is meant.
	Client *Client
	// NoClient says that a Verifier without a Client is meant: it only
	// decodes and applies its local policy (development tokens, under
	// AllowDev, pass; DeviceCheck tokens fail with ErrNotValidated).
	// Setting it with a Client is a mistake Middleware refuses.
	NoClient bool
	// AllowDev accepts tokens from attestd's development provider, and
	// App Attest assertions by keys that did not come from Apple's root
	// (devattest's development root, a test CA). Apple never issued
	// either: they prove nothing. Development tokens are not sent to
	// Apple's own servers; they are sent when Client points at another
	// base URL (a fake server or a proxy), so tests run the whole path.
	// Never set it in production.
	AllowDev bool
	// Kinds lists the kinds of attestation accepted: header.KindDeviceCheck
	// ("dc"), header.KindAppAttest ("aa"), header.KindDev ("dev"; it also
	// needs AllowDev). A value of another kind is refused at once
	// (ErrKindNotAccepted), so a server can require App Attest and
	// refuse DeviceCheck tokens outright. Nil means what the Verifier is
	// set up to check: dc always, aa when Keys is set, dev under AllowDev.
	Kinds []string
	// Keys holds the registered App Attest keys and their counters
	// (appattest.MemoryKeyStore for one instance, package appattestredis
	// for many). A value of kind "aa" is checked against it, locally:
	// the key must be registered and active, its signature good over
	// header.AppAttestClientDataHash of the value, and its counter new
	// within the key's window. Nil refuses kind "aa".
	Keys appattest.KeyStore
	// MaxAge refuses tokens generated longer ago than this (by their g,
	// a claim of the client), or that do not say when they were
	// generated. Zero means DefaultMaxAge; negative means no limit.
	MaxAge time.Duration
	// Replays remembers tokens so that each is accepted once. Nil means
	// one in-memory cache shared by every such Verifier in the process;
	// give a shared store (package redisreplay) when several instances
	// serve the same clients. A token is recorded once it passes the
	// local checks, before Apple is asked, so two concurrent uses cannot
	// both pass: first for RefusedWindow, then, before a 200, for the
	// whole replay window. A token Apple refused keeps the short record;
	// one whose check ended without Apple's verdict is forgotten, unless
	// the caller may let it through (see Middleware).
	Replays ReplayCache
	// RefusedWindow is how long a token Apple refused stays recorded,
	// from when this server first saw it; a repeat within it is refused
	// as a replay without asking Apple. Zero means DefaultRefusedWindow.
	// It is never shorter than the check (Timeout plus a second).
	RefusedWindow time.Duration
	// AllowReplays turns the replay check off. Never set it in
	// production: a captured header could be sent again and again. It
	// does not touch App Attest's counter window, which Keys applies to
	// every "aa" value.
	AllowReplays bool
	// ReplayWindow is how long a token that may be admitted is
	// remembered, from the end of its check (on the store's clock; g is
	// the client's word and plays no part). Zero means
	// DefaultReplayWindow. It is never
	// shorter than MaxAge plus MaxClockSkew, so a token is remembered at
	// least as long as its age could pass. With no age limit (a negative
	// MaxAge) nothing bounds a token's age, so a header captured more than
	// ReplayWindow ago passes again if Apple still accepts its token: keep
	// an age limit, or a ReplayWindow longer than Apple's token lifetime.
	ReplayWindow time.Duration
	// Timeout bounds one Verify in all: the replay store, and every call
	// to Apple with its retries (the Client's own Timeout bounds those
	// too). Zero means DefaultTimeout.
	Timeout time.Duration
	// Observer, when set, is told the outcome of every check (with its
	// kind, when it is a KindObserver) and every failure of the replay
	// store or the App Attest key store.
	Observer Observer
	// Now returns the current time, for ages; nil means time.Now.
	Now func() time.Time
}

// Result is the outcome of Verify. Printing it (with fmt or log/slog) or
// encoding it as JSON shows the token's fingerprint, never the token.
type Result struct {
	Attestation
	// Valid is true when every check passed; Verify then returns nil.
	Valid bool
	// AppleChecked reports whether Apple answered about this token: it
	// accepted it, or refused it as a bad device token. It is false when
	// Apple was not asked, or its answer said nothing about the token (an
	// outage, our credentials refused, a redirect or another unexpected
	// answer).
	AppleChecked bool
	// Age is how long ago the token was generated, when it says.
	Age time.Duration
	// Environment is the App Attest key's environment ("development" or
	// "production") once the key was found registered; "" for the other
	// kinds. The key is Attestation.KeyID.
	Environment string
	// AppID is the App ID ("TEAMID.bundle.id") the App Attest key was
	// attested for, once the key was found registered; "" for the other
	// kinds. Unlike the header's b and m, which the client states, it is
	// proven: Apple's attestation and every assertion cover it.
	AppID string
	// Counter is the App Attest assertion's counter, once its signature
	// verified.
	Counter uint32
}

// Verify parses value (an envelope or a bare "v1." value, as in the
// x-oai-attestation header), applies the policy and asks Apple. It returns
// nil only for a valid attestation. The Result is non-nil whenever value
// could be parsed, even with an error, so callers can report what arrived.
//
// Errors wrap ErrMissing, ErrMalformed, ErrClientStatus (a *StatusError),
// ErrDevToken, ErrTooOld, ErrFuture, ErrReplay, ErrReplayStore,
// ErrNotValidated, ErrLimited, one of Apple's errors (an *AppleError,
// e.g. ErrBadDeviceToken) or ctx.Err(). Rejected, AppleDown and Reason
// classify them.
func (v *Verifier) Verify(ctx context.Context, value string) (*Result, error) {
	return v.check(ctx, value, nil)
}

// check is Verify; keep, when set, says which failures without Apple's
// verdict leave the token spent, because the caller may let the request
// through all the same (Middleware's policies). Keeping it in the same
// step as the check, rather than forgetting it and recording it again,
// leaves no moment in which another request can take the token.
func (v *Verifier) check(ctx context.Context, value string, keep func(error) bool) (*Result, error) {
	start := time.Now()
	res, err := v.verify(ctx, value, keep)
	kind := ""
	if res != nil {
		kind = res.Kind
	}
	v.observeCheck(kind, err, time.Since(start))
	return res, err
}

// observeCheck tells the Observer, if any, of a check's outcome, with its
// kind when the Observer is a KindObserver.
func (v *Verifier) observeCheck(kind string, err error, elapsed time.Duration) {
	switch o := v.Observer.(type) {
	case nil:
	case KindObserver:
		o.ObserveCheckKind(kind, err, elapsed)
	default:
		o.ObserveCheck(err, elapsed)
	}
}

func (v *Verifier) verify(ctx context.Context, value string, keep func(error) bool) (*Result, error) {
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
	if a.Kind == header.KindAppAttest {
		return res, v.checkAppAttest(ctx, a, res, keep)
	}
	if err := v.Client.usable(); err != nil && a.Kind != header.KindDev {
		return res, err
	}
	local := a.Kind == header.KindDev && (v.Client.usable() != nil || v.Client.base == Production || v.Client.base == Development)
	ctx, cancel := context.WithTimeout(ctx, orDefault(v.Timeout, DefaultTimeout))
	defer cancel()
	if local {
		// Nothing more to ask: spent at once for the whole window.
		_, err := v.record(ctx, a, v.replayTTL())
		res.Valid = err == nil
		return res, err
	}
	rec, err := v.record(ctx, a, v.pendingTTL())
	if err != nil {
		return res, err
	}
	err = v.Client.ValidateDeviceToken(ctx, a.Token)
	var ae *AppleError
	res.AppleChecked = err == nil || (errors.As(err, &ae) && errors.Is(ae.Err, ErrBadDeviceToken))
	if err = v.settle(ctx, a, rec, res.AppleChecked, err, keep); err != nil {
		return res, err
	}
	res.Valid = true
	return res, nil
}

// settle makes the token's record match the outcome of asking Apple,
// before the caller answers: a token that may be admitted (Apple's yes,
// or a failure keep says the caller lets through) is spent for the whole
// replay window, and if that fails the check fails with ErrReplayStore; a
// token Apple refused keeps its short record, so a repeat is refused
// without asking Apple again; any other token admitted nothing and is
// forgotten, so a retry of the same header is checked again and an
// outage or a flood refused by our limit takes no room.
func (v *Verifier) settle(ctx context.Context, a *Attestation, rec *record, verdict bool, err error, keep func(error) bool) error {
	switch {
	case err == nil || (!verdict && keep != nil && keep(err)):
		if xerr := rec.extend(ctx, v.replayTTL()); xerr != nil {
			return xerr
		}
	case !verdict:
		rec.remove(ctx)
	}
	if err != nil {
		return fmt.Errorf("token %s: %w", a.Fingerprint(), err)
	}
	return nil
}

// Spend records a's token as used, for a caller that admits a request
// whose check failed without Apple's verdict on the token (AppleDown, or
// any failure under the Annotate policy that the caller accepts). Verify
// forgets such a token, so that a retry is checked again; a caller that
// lets the request through must spend it, or the same header could be let
// through again. Middleware needs no Spend: it keeps the token recorded
// whenever it may let the request through. The error wraps ErrReplay when
// the token is already recorded (another request used it meanwhile:
// refuse this one) and ErrReplayStore when the store fails; with
// AllowReplays it is always nil.
func (v *Verifier) Spend(ctx context.Context, a *Attestation) error {
	// Not cut short by a caller that hangs up: the request may already
	// have been let through.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(v.Timeout, DefaultTimeout))
	defer cancel()
	_, err := v.record(ctx, a, v.replayTTL())
	return err
}

// Check applies the Verifier's local policy (envelope status, kind and
// age) to a parsed attestation, without asking Apple, the replay store
// or the key store.
func (v *Verifier) Check(a *Attestation) error {
	if a.Status != header.StatusOK {
		return &StatusError{Status: a.Status}
	}
	if a.Kind == header.KindDev && !v.AllowDev {
		return ErrDevToken
	}
	if !v.accepts(a.Kind) {
		return fmt.Errorf("%w: %q (accepted: %s)", ErrKindNotAccepted, a.Kind, strings.Join(v.kinds(), ", "))
	}
	maxAge := v.maxAge()
	if maxAge <= 0 {
		return nil
	}
	if a.GeneratedAt.IsZero() {
		return fmt.Errorf("%w: no generation time", ErrTooOld)
	}
	switch age := v.now().Sub(a.GeneratedAt); {
	case age > maxAge:
		return fmt.Errorf("%w: generated %v ago, limit %v", ErrTooOld, age.Round(time.Millisecond), maxAge)
	case age < -MaxClockSkew:
		return fmt.Errorf("%w: generated %v from now", ErrFuture, (-age).Round(time.Millisecond))
	}
	return nil
}

// maxAge returns the age limit in force, or 0 for none.
func (v *Verifier) maxAge() time.Duration {
	switch {
	case v.MaxAge < 0:
		return 0
	case v.MaxAge == 0:
		return DefaultMaxAge
	}
	return v.MaxAge
}

// replays returns the replay cache in force, or nil when replays are
// allowed.
func (v *Verifier) replays() ReplayCache {
	switch {
	case v.AllowReplays:
		return nil
	case v.Replays != nil:
		return v.Replays
	}
	return defaultReplays()
}

// pendingTTL is how long a token is first recorded, before Apple is
// asked: RefusedWindow, or longer when the check and settling it could
// take longer, so that the record outlives the check.
func (v *Verifier) pendingTTL() time.Duration {
	return max(orDefault(v.RefusedWindow, DefaultRefusedWindow), addSat(orDefault(v.Timeout, DefaultTimeout), settleTimeout))
}

// replayTTL is how long a token is remembered from now:
// max(ReplayWindow, MaxAge + MaxClockSkew), the sum saturating at the
// largest duration, which stores read as "forever".
func (v *Verifier) replayTTL() time.Duration {
	return max(orDefault(v.ReplayWindow, DefaultReplayWindow), addSat(v.maxAge(), MaxClockSkew))
}

// addSat returns a+b for non-negative a and b, or the largest duration
// when the sum would overflow.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (v *Verifier) observeStoreError(err error) {
	if v.Observer != nil {
		v.Observer.ObserveReplayStoreError(err)
	}
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
// "replay", "replay_store", "kind_not_accepted", "unknown_key",
// "revoked_key", "dev_key", "key_store", the name of the App Attest check
// an assertion failed ("bad_signature", "bad_format", "bad_auth_data",
// "bad_app_id": see package appattest), "not_validated", "bad_device_token",
// "bad_request", "bad_authorization", "expired_authorization",
// "forbidden", "rate_limited", "apple_server_error", "apple_unavailable",
// "unexpected_response", "network", "limited", "canceled", "timeout" or
// "error".
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
	if errors.Is(err, ErrAssertion) {
		return appattest.Reason(err)
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
	{ErrReplayStore, "replay_store"},
	{ErrKindNotAccepted, "kind_not_accepted"},
	{ErrUnknownKey, "unknown_key"},
	{ErrRevokedKey, "revoked_key"},
	{ErrDevKey, "dev_key"},
	{ErrKeyStore, "key_store"},
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
// Apple, an App Attest key unknown, revoked or not allowed, an assertion
// that does not verify), as opposed to a failure to check it (Apple
// unreachable, our own limit, our credentials refused, the replay store
// or the key store): it chooses between 403 and 503.
//
// Rejected is not the test for letting a request through. A handler that
// fails open (under Annotate, or calling Verify itself) must refuse every
// error for which AppleDown is false: Rejected ones, and also our own
// limit (ErrLimited), Apple's 429, unexpected answers and replay store
// failures, which a flood or a hostile network causes at will. Refusing
// only what Rejected names would admit a forged header every time the
// limit keeps it from Apple.
func Rejected(err error) bool {
	for _, e := range []error{ErrMissing, ErrMalformed, ErrClientStatus, ErrDevToken, ErrTooOld, ErrFuture, ErrReplay, ErrBadDeviceToken,
		ErrKindNotAccepted, ErrUnknownKey, ErrRevokedKey, ErrDevKey, ErrAssertion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// AppleDown reports whether err says Apple is down: the call got no
// answer, a 5xx, or ran out of time, while the Client's breaker counted
// Apple as down (most recent attempts, each given its whole
// AttemptTimeout, failed; see BreakerConfig): err wraps ErrAppleDown.
// These are what MiddlewareOptions.WhenAppleDown can let through. A
// failure while the breaker is closed is not "down", whatever its cause:
// one request can be made to time out by its caller or by a slow replay
// store. Apple's 429, our own limit, an unexpected answer (a redirect, a
// 200 with a page, a certificate that does not verify) and Apple refusing
// our credentials are never "down": they are refused either way, so that
// a flood or a hostile network cannot open the door.
func AppleDown(err error) bool {
	return errors.Is(err, ErrAppleDown)
}
