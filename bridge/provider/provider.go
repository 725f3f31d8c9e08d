// Package provider defines where attestation comes from: the Provider
// interface and the Answer it gives, the failure reasons reported to
// clients, and the development provider that works on every OS.
package provider

import (
	"context"
	"errors"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/protocol"
)

// Provider makes attestation: one whole answer (a header value but for
// the helper's identity) per call. The kind of the answers may differ
// from one call to the next: the App Attest provider answers with
// DeviceCheck tokens until its key is registered.
type Provider interface {
	// Name names the provider in initialize and attestation/status: the
	// header kind of a provider that makes one kind (dc, dev), else its
	// --provider value (appattest, appattest-sim).
	Name() string
	// Generate returns one fresh answer. It must return promptly once ctx
	// is done, with an error that wraps ctx.Err().
	Generate(ctx context.Context) (Answer, error)
}

// Func adapts a function that makes raw tokens of one kind to Provider.
type Func struct {
	K string // the kind of the tokens, which is also the provider's name
	F func(ctx context.Context) ([]byte, error)
}

// Name implements Provider: the kind.
func (f Func) Name() string { return f.K }

// Generate implements Provider: F's token, of kind K.
func (f Func) Generate(ctx context.Context) (Answer, error) {
	tok, err := f.F(ctx)
	if err != nil {
		return Answer{}, err
	}
	return Answer{Kind: f.K, Token: tok}, nil
}

var _ Provider = Func{}

// Reasons are the machine-readable failure classes sent to clients as
// data.reason in JSON-RPC errors.
const (
	ReasonUnsupported       = "unsupported"        // the device or OS cannot make tokens
	ReasonNoGUISession      = "no_gui_session"     // no Aqua login session in this process
	ReasonTimeout           = "timeout"            // no token before the deadline
	ReasonProviderError     = "provider_error"     // the provider failed
	ReasonShuttingDown      = "shutting_down"      // the daemon is stopping
	ReasonOverloaded        = "overloaded"         // too many requests already wait for a token
	ReasonDaemonUnreachable = "daemon_unreachable" // a client could not reach the daemon
)

// Sentinel errors that carry a reason of their own.
var (
	// ErrUnsupported means this platform or device cannot generate tokens.
	ErrUnsupported = &Error{Reason: ReasonUnsupported, Msg: "DeviceCheck is not available on this system"}
	// ErrNoGUISession means the process has no graphical login session.
	ErrNoGUISession = &Error{Reason: ReasonNoGUISession, Msg: "no GUI login session: DeviceCheck needs one",
		HintText: NoGUISessionHint}
)

// Error is a provider failure with a reason for clients, an optional hint for
// people, and an optional Apple DeviceCheck error code.
type Error struct {
	Reason string
	Msg    string
	// HintText says what to do about the failure; Hint returns it.
	HintText string
	// DCCode is Apple's DCError code when HasDCCode is set.
	DCCode    int
	HasDCCode bool
	Err       error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Err != nil {
		if s == "" {
			s = e.Err.Error()
		} else {
			s += ": " + e.Err.Error()
		}
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Hint returns HintText, for hint.Of.
func (e *Error) Hint() string { return e.HintText }

var _ hint.Hinter = (*Error)(nil)

// ReasonOf returns the failure reason for err: the Reason of the first
// *Error in its chain, ReasonTimeout for a deadline, else
// ReasonProviderError.
func ReasonOf(err error) string {
	var pe *Error
	if errors.As(err, &pe) && pe.Reason != "" {
		return pe.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	return ReasonProviderError
}

// DCErrorCodeOf returns Apple's DeviceCheck error code carried by err, if any.
func DCErrorCodeOf(err error) (int, bool) {
	var pe *Error
	if errors.As(err, &pe) && pe.HasDCCode {
		return pe.DCCode, true
	}
	return 0, false
}

// Starter is implemented by a provider with work of its own to start
// (Lazy, the App Attest provider): the daemon starts it once it has taken
// its socket. The channel is closed when the attempt (or first round)
// begun ends.
type Starter interface {
	Start() <-chan struct{}
}

// Ahead is implemented by a provider that decides how many of its answers
// a pool makes ahead of need. A pool without it keeps what demand asks
// for; DeviceCheck tokens take hundreds of milliseconds, so they must be
// made ahead, while App Attest assertions are made in milliseconds, on
// demand, and only as many ahead as the user asked for.
type Ahead interface {
	// Ahead returns how many answers to keep ready when demand asks for
	// want (want > 0) just now: want, or fewer; 0 means every answer is
	// made when a request asks for it.
	Ahead(want int) int
}

// AppAttestReporter is implemented by a provider that uses App Attest: its
// state, which attestation/status shows.
type AppAttestReporter interface {
	AppAttestStatus() protocol.AppAttestStatus
}
