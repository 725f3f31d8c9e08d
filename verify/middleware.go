package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// Policy is what Middleware does with a request whose attestation fails.
type Policy int

const (
	// Reject answers the request itself, with a short JSON body: 401
	// (with WWW-Authenticate) when the attestation is missing, malformed
	// or the app-server reports it could not get one (s ≠ 0); 403 when it
	// is present but refused (development token, too old, already used,
	// Apple rejects the token); 503 (with Retry-After) when it could not
	// be checked (Apple unreachable or refusing our credentials, an
	// unexpected answer, the limit on calls to Apple, the replay store).
	// Only valid requests reach the next handler, unless WhenAppleDown
	// says otherwise.
	Reject Policy = iota
	// Annotate passes every request on, with the outcome in its context
	// for FromContext; the next handler decides. Since it may admit any
	// of them, every token that passed the local checks and got no
	// verdict from Apple stays spent for the whole replay window. A
	// handler that fails open must refuse every error for which
	// AppleDown is false (not only those Rejected names).
	Annotate
)

// DownPolicy is what Middleware does, under Reject, with a request whose
// token passed every local check when Apple could not be reached.
type DownPolicy int

const (
	// RefuseWhenDown answers 503: without Apple's yes nothing is valid.
	// The default.
	RefuseWhenDown DownPolicy = iota
	// AllowWhenDown lets the request through, with the error in its
	// context (FromContext), when AppleDown(err): no answer, a 5xx, or
	// the time ran out waiting for Apple, while the Client's breaker
	// counts Apple as down (see BreakerConfig). Everything else is still
	// refused: missing, malformed, development, old and replayed tokens,
	// tokens Apple refused, and the failures a flood or a hostile network
	// can cause at will (the Client's own limit, Apple's 429, a redirect
	// or another unexpected answer, our credentials refused, the replay
	// store failing).
	AllowWhenDown
)

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// Verifier checks each attestation. Required.
	Verifier *Verifier
	// Policy is Reject (the default) or Annotate.
	Policy Policy
	// WhenAppleDown is RefuseWhenDown (the default) or AllowWhenDown.
	WhenAppleDown DownPolicy
	// Header names the request header to read; empty means HeaderName.
	Header string
	// KeepHeader passes the attestation header on to the next handler.
	// By default it is removed from the request the next handler sees,
	// so the token goes no further than this check (into logs, or to
	// services the handler calls).
	KeepHeader bool
	// Logger, when set, gets one record per failed check with the reason
	// and the token fingerprint (never the token).
	Logger *slog.Logger
	// Client, when set, names the client each request comes from (its
	// address, its account): the Client's calls to Apple are then shared
	// in turn between clients (see Config.MaxClients), so that a flood of
	// forged tokens from one client does not refuse everyone else. Nil
	// puts every request in one queue, first come first served. The name
	// reaches the next handler's context too (ClientFromContext).
	Client ClientKey
}

// ErrNoResult is returned by FromContext for a context the middleware did
// not handle.
var ErrNoResult = errors.New("no attestation result: verify.Middleware did not handle this request")

type ctxKey struct{}

type outcome struct {
	res *Result
	err error
}

// FromContext returns the outcome of the check Middleware made for this
// request: the Result (nil if nothing could be parsed) and nil for a valid
// attestation, or the error that says why not (see Reason).
func FromContext(ctx context.Context) (*Result, error) {
	o, ok := ctx.Value(ctxKey{}).(*outcome)
	if !ok {
		return nil, ErrNoResult
	}
	return o.res, o.err
}

// NewContext returns ctx carrying a verification outcome, as Middleware
// stores it; handlers' tests can use it to fake the middleware.
func NewContext(ctx context.Context, res *Result, err error) context.Context {
	return context.WithValue(ctx, ctxKey{}, &outcome{res: res, err: err})
}

// Middleware checks the x-oai-attestation header of each request with
// opts.Verifier and applies opts.Policy. Handlers behind it read the
// outcome with FromContext. It panics when opts.Verifier is nil, has no
// Client (unless NoClient says that is meant), or has a Client not made
// by NewClient.
func Middleware(next http.Handler, opts MiddlewareOptions) http.Handler {
	checkVerifier(opts.Verifier)
	name := opts.Header
	if name == "" {
		name = HeaderName
	}
	challenge := fmt.Sprintf("Attestation header=%q", name)
	// keep says which checks that end without Apple's verdict leave the
	// token spent: those whose request may still be let through. A token
	// refused with 503 admitted nothing and is forgotten, so the client's
	// retry is checked again.
	keep := keepFor(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			res *Result
			err error
			ctx = r.Context()
		)
		if opts.Client != nil {
			ctx = WithClient(ctx, opts.Client(r))
		}
		vals := r.Header.Values(name)
		switch len(vals) {
		case 0:
			err = ErrMissing
		case 1:
			res, err = opts.Verifier.check(ctx, vals[0], keep)
		default:
			err = errors.Join(ErrMalformed, errors.New("more than one attestation header"))
		}
		if len(vals) != 1 {
			// Refused without Verify: counted all the same.
			opts.Verifier.observeCheck("", err, 0)
		}
		letThrough := err == nil || opts.Policy == Annotate || (opts.WhenAppleDown == AllowWhenDown && AppleDown(err))
		if err != nil && opts.Logger != nil {
			attrs := []slog.Attr{slog.String("reason", Reason(err)), slog.Any("err", err)}
			if res != nil {
				attrs = append(attrs, slog.String("status", res.Status.String()),
					slog.String("kind", res.Kind), slog.String("token", res.Fingerprint()))
				if res.KeyID != nil {
					attrs = append(attrs, slog.String("keyId", keyName(res.KeyID)))
				}
			}
			attrs = append(attrs, slog.Bool("passed", letThrough))
			opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "attestation check failed", attrs...)
		}
		if !letThrough {
			writeRejection(w, res, err, challenge)
			return
		}
		r2 := r.WithContext(NewContext(ctx, res, err))
		if len(vals) > 0 && !opts.KeepHeader {
			r2.Header = r.Header.Clone()
			r2.Header.Del(name)
		}
		next.ServeHTTP(w, r2)
	})
}

// checkVerifier panics, at construction, on a Verifier that could only
// fail later: nil, accepting DeviceCheck tokens without a Client and
// without NoClient (every one would fail as not validated), with both, a
// Client not made by NewClient, or Kinds naming a kind it cannot check.
func checkVerifier(v *Verifier) {
	if v != nil {
		for _, k := range v.Kinds {
			switch {
			case k != header.KindDeviceCheck && k != header.KindAppAttest && k != header.KindDev:
				panic(fmt.Sprintf("verify.Middleware: Verifier.Kinds lists %q; the kinds are %q, %q and %q", k, header.KindDeviceCheck, header.KindAppAttest, header.KindDev))
			case k == header.KindAppAttest && v.Keys == nil:
				panic("verify.Middleware: Verifier.Kinds lists \"aa\" but Keys is nil: give it the App Attest key store")
			}
		}
	}
	switch {
	case v == nil:
		panic("verify.Middleware: MiddlewareOptions.Verifier is nil")
	case v.Client == nil && !v.NoClient && v.accepts(header.KindDeviceCheck):
		panic("verify.Middleware: the Verifier has no Client, so no DeviceCheck token can pass; give it one from NewClient, set NoClient for local checks only, or leave \"dc\" out of Kinds")
	case v.Client != nil && v.NoClient:
		panic("verify.Middleware: the Verifier has a Client and NoClient set; drop one")
	case v.Client != nil && v.Client.usable() != nil:
		panic("verify.Middleware: the Verifier's Client was not made by NewClient")
	}
}

// rejection is the JSON body of a Reject answer.
type rejection struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	// Status is the envelope status when the app-server reported one
	// other than ok.
	Status string `json:"status,omitempty"`
}

func writeRejection(w http.ResponseWriter, res *Result, err error, challenge string) {
	code, body := http.StatusServiceUnavailable, rejection{Error: "attestation_unavailable", Reason: Reason(err)}
	h := w.Header()
	switch {
	case errors.Is(err, ErrMissing), errors.Is(err, ErrMalformed), errors.Is(err, ErrClientStatus):
		code, body.Error = http.StatusUnauthorized, "attestation_required"
		h.Set("WWW-Authenticate", challenge)
	case Rejected(err):
		code, body.Error = http.StatusForbidden, "attestation_rejected"
	default:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	var se *StatusError
	if errors.As(err, &se) {
		body.Status = se.Status.String()
	}
	b, _ := json.Marshal(body)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// retryAfterSeconds is the Retry-After of a 503: what Apple asked for
// (whole seconds, at most a minute), else one second.
func retryAfterSeconds(err error) int {
	var ae *AppleError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return int(math.Ceil(min(ae.RetryAfter, time.Minute).Seconds()))
	}
	return 1
}

// keepFor returns the failures without Apple's verdict after which the
// middleware may let a request through, and so must keep its token spent
// for the whole window: under Annotate every one (the next handler
// decides, and may admit it), under AllowWhenDown those for which
// AppleDown holds, and none otherwise.
func keepFor(opts MiddlewareOptions) func(error) bool {
	switch {
	case opts.Policy == Annotate:
		return func(error) bool { return true }
	case opts.WhenAppleDown == AllowWhenDown:
		return AppleDown
	}
	return nil
}
