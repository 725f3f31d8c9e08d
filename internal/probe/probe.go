// Package probe measures DeviceCheck where attestd runs: how long a token
// takes to make and, with a DeviceCheck key, how long Apple accepts a
// token, whether it accepts one twice, and Apple's exact answers; or App
// Attest: a key, an assertion's latency, cold and warm, and one
// registration round trip. Run does the measuring and returns a Report;
// the command renders it.
//
// A probe that runs but measures nothing useful (no token was made, or
// the lifetime search stopped early) still returns its whole report,
// together with a *FailedError, so the report can be shown before the
// failure is.
package probe

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/verify"
)

// Config says what to measure and how.
type Config struct {
	// Provider makes the tokens. Required, unless AppAttest is set.
	Provider provider.Provider
	// AppAttest, when set, measures App Attest instead of Provider:
	// Count assertions after a cold one.
	AppAttest *AppAttestConfig
	// Count is how many tokens to time after the cold first call; zero
	// skips the latency measurement.
	Count int
	// Timeout bounds each token and each request to Apple. Required.
	Timeout time.Duration
	// Lifetime, when set, measures a token's lifetime with Apple; nil
	// skips that. Count may be zero only when Lifetime is set.
	Lifetime *LifetimeConfig
	// Version is attestd's version, reported as it is.
	Version string
	// Clock times the calls and waits for token ages; nil is the real
	// clock.
	Clock Clock
	// Transport carries the requests to Apple; nil is a transport of the
	// probe's own, cloned from http.DefaultTransport.
	Transport http.RoundTripper
	// OnLifetimeSearch, when set, is called once the latency is measured
	// and before the lifetime search starts, with the largest age the
	// search may wait for, so that a user can be told how long it takes.
	OnLifetimeSearch func(largestAge time.Duration)
}

// LifetimeConfig is what the lifetime search needs to ask Apple.
type LifetimeConfig struct {
	// TeamID and KeyID name the DeviceCheck key (the JWT iss and kid);
	// Key is its private half.
	TeamID, KeyID string
	Key           *ecdsa.PrivateKey
	// BaseURL is verify.Production, verify.Development or another base
	// URL (a test server); see verify.EnvironmentURL.
	BaseURL string
	// Ages are the token ages to validate: ascending, the first 0 (what
	// ParseAges returns).
	Ages []time.Duration
}

// ErrConfig is wrapped by the error Run returns for a Config it cannot
// run.
var ErrConfig = errors.New("probe: bad config")

// A FailedError reports a probe that ran but measured nothing useful:
// no token was made, or the lifetime search stopped early. Run returns
// it with the complete report.
type FailedError struct {
	// Reasons says what failed, one entry per measurement.
	Reasons []string
}

func (e *FailedError) Error() string { return "probe: " + strings.Join(e.Reasons, "; ") }

// Report is what the probe found; "attestd probe --json" prints it.
type Report struct {
	Attestd   string           `json:"attestd"`
	Platform  string           `json:"platform"`
	Provider  string           `json:"provider"`
	Latency   *Latency         `json:"latency,omitempty"`
	Lifetime  *Lifetime        `json:"lifetime,omitempty"`
	AppAttest *AppAttestReport `json:"appAttest,omitempty"`
}

// Clock is the probe's view of time: the lifetime search waits with
// Sleep, so a test can run an hour of ages at once.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends, and returns ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run measures what cfg asks for: the latency (a cold call, then
// cfg.Count more), then the lifetime. It returns an error wrapping
// ErrConfig, or verify's for a key it cannot use, before measuring
// anything; a *FailedError with the complete report when a measurement
// failed.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	var apple *appleProbe
	if l := cfg.Lifetime; l != nil {
		var err error
		apple, err = newAppleProbe(verify.Config{TeamID: l.TeamID, KeyID: l.KeyID, Key: l.Key, BaseURL: l.BaseURL, Timeout: cfg.Timeout}, cfg.Transport)
		if err != nil {
			return Report{}, err
		}
		defer apple.client.CloseIdleConnections()
	}

	r := Report{Attestd: cfg.Version, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if cfg.AppAttest != nil {
		r.Provider = header.KindAppAttest
		r.AppAttest = measureAppAttest(ctx, cfg.AppAttest, cfg.Count, cfg.Timeout, clock)
		if f := r.AppAttest.failure(); f != "" {
			return r, &FailedError{Reasons: []string{f}}
		}
		return r, nil
	}
	r.Provider = cfg.Provider.Name()
	var failures []string
	if cfg.Count > 0 {
		l := measureLatency(ctx, cfg.Provider, cfg.Count, cfg.Timeout, clock)
		r.Latency = &l
		if l.OK == 0 {
			failures = append(failures, "no token was made: "+l.FirstError)
		}
	}
	if apple != nil {
		ages := cfg.Lifetime.Ages
		if cfg.OnLifetimeSearch != nil {
			cfg.OnLifetimeSearch(ages[len(ages)-1])
		}
		l := searchLifetime(ctx, cfg.Provider, apple, clock, ages, cfg.Timeout)
		l.Environment = cfg.Lifetime.BaseURL
		r.Lifetime = &l
		if l.Aborted != "" {
			failures = append(failures, l.Aborted)
		}
	}
	if len(failures) > 0 {
		return r, &FailedError{Reasons: failures}
	}
	return r, nil
}

// check reports what makes cfg impossible to run.
func (cfg Config) check() error {
	switch {
	case cfg.AppAttest != nil && (cfg.AppAttest.Start == nil || cfg.Lifetime != nil || cfg.Count == 0):
		return fmt.Errorf("%w: App Attest needs a start, a count and no lifetime search", ErrConfig)
	case cfg.Provider == nil && cfg.AppAttest == nil:
		return fmt.Errorf("%w: no provider", ErrConfig)
	case cfg.Count < 0:
		return fmt.Errorf("%w: negative count %d", ErrConfig, cfg.Count)
	case cfg.Timeout <= 0:
		return fmt.Errorf("%w: timeout %v is not positive", ErrConfig, cfg.Timeout)
	case cfg.Count == 0 && cfg.Lifetime == nil:
		return fmt.Errorf("%w: nothing to measure (no count, no lifetime)", ErrConfig)
	case cfg.Lifetime == nil:
		return nil
	}
	ages := cfg.Lifetime.Ages
	if len(ages) == 0 || ages[0] != 0 {
		return fmt.Errorf("%w: the ages must start at 0s", ErrConfig)
	}
	for i := 1; i < len(ages); i++ {
		if ages[i] <= ages[i-1] {
			return fmt.Errorf("%w: ages must ascend: %v after %v", ErrConfig, ages[i], ages[i-1])
		}
	}
	return nil
}
