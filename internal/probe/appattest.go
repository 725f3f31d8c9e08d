package probe

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/appattest"
)

// AppAttestConfig is what the App Attest measurement needs.
type AppAttestConfig struct {
	// Start returns App Attest (darwin.NewAppAttest, or the simulator).
	Start func() (appattest.Service, error)
	// Register, when set, is the registration server: the probe's key is
	// registered with it once, and the round trip timed.
	Register *appattest.Client
}

// AppAttestReport is the App Attest half of the probe: a key made for the
// probe (not the helper's, whose Keychain item it leaves alone), one
// registration round trip with it, then its assertions' latency.
type AppAttestReport struct {
	// StartMs is the service's start (isSupported); Error says why the
	// measurement stopped, if it did.
	StartMs float64 `json:"startMs"`
	Error   string  `json:"error,omitempty"`
	// KeyMs is generateKey; Key the key id's fingerprint.
	KeyMs float64 `json:"keyMs,omitempty"`
	Key   string  `json:"key,omitempty"`
	// Registration is the round trip, with --appattest-register.
	Registration *Registration `json:"registration,omitempty"`
	// Assertions are timed as tokens are: the first (cold) one, then
	// Count more; TokenBytes is an assertion's size.
	Assertions *Latency `json:"assertions,omitempty"`
}

// Registration is one registration round trip: a challenge, attestKey
// (Apple's server), and the registration; the milliseconds of each.
type Registration struct {
	ChallengeMs float64 `json:"challengeMs"`
	AttestMs    float64 `json:"attestMs,omitempty"`
	RegisterMs  float64 `json:"registerMs,omitempty"`
	TotalMs     float64 `json:"totalMs"`
	// Environment is the server's word on the key; Error why the round
	// trip failed.
	Environment string `json:"environment,omitempty"`
	Error       string `json:"error,omitempty"`
}

// measureAppAttest starts App Attest, makes a key, registers it (first:
// Apple attests a key only until its first assertion) and times count
// assertions after a cold one.
func measureAppAttest(ctx context.Context, cfg *AppAttestConfig, count int, timeout time.Duration, clock Clock) *AppAttestReport {
	r := &AppAttestReport{}
	start := clock.Now()
	svc, err := cfg.Start()
	r.StartMs = ms(clock.Now().Sub(start))
	if err != nil {
		r.Error = "start App Attest: " + err.Error()
		return r
	}
	kctx, cancel := context.WithTimeout(ctx, timeout)
	start = clock.Now()
	keyID, err := svc.GenerateKey(kctx)
	cancel()
	r.KeyMs = ms(clock.Now().Sub(start))
	if err != nil {
		r.Error = "generateKey: " + err.Error()
		return r
	}
	r.Key = header.Fingerprint(keyID)
	if cfg.Register != nil {
		r.Registration = register(ctx, svc, cfg.Register, keyID, timeout, clock)
	}
	asserting := provider.Func{K: header.KindAppAttest, F: func(ctx context.Context) ([]byte, error) {
		h := make([]byte, sha256.Size) // a fresh clientDataHash for each assertion
		rand.Read(h)
		return svc.GenerateAssertion(ctx, keyID, h)
	}}
	l := measureLatency(ctx, asserting, count, timeout, clock)
	r.Assertions = &l
	return r
}

// register times one registration of keyID.
func register(ctx context.Context, svc appattest.Service, c *appattest.Client, keyID string, timeout time.Duration, clock Clock) *Registration {
	reg := &Registration{}
	begin := clock.Now()
	defer func() { reg.TotalMs = ms(clock.Now().Sub(begin)) }()
	step := func(what string, dst *float64, f func(context.Context) error) bool {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		t := clock.Now()
		err := f(sctx)
		*dst = ms(clock.Now().Sub(t))
		if err != nil {
			reg.Error = what + ": " + err.Error()
		}
		return err == nil
	}
	var ch appattest.Challenge
	var att []byte
	_ = step("challenge", &reg.ChallengeMs, func(ctx context.Context) (err error) { ch, err = c.Challenge(ctx); return err }) &&
		step("attestKey", &reg.AttestMs, func(ctx context.Context) (err error) {
			h := sha256.Sum256(ch.Bytes)
			att, err = svc.AttestKey(ctx, keyID, h[:])
			return err
		}) &&
		step("register", &reg.RegisterMs, func(ctx context.Context) error {
			r, err := c.Register(ctx, keyID, att, ch.Text)
			reg.Environment = r.Environment
			return err
		})
	return reg
}

// failure says what failed in the App Attest measurement, or "".
func (r *AppAttestReport) failure() string {
	switch {
	case r.Error != "":
		return "App Attest: " + r.Error
	case r.Registration != nil && r.Registration.Error != "":
		return "App Attest registration: " + r.Registration.Error
	case r.Assertions != nil && r.Assertions.OK == 0:
		return "no App Attest assertion was made: " + r.Assertions.FirstError
	}
	return ""
}

func (r *AppAttestReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "App Attest: started in %.2f ms", r.StartMs)
	if r.Key != "" {
		fmt.Fprintf(w, "; a key (%s) in %.2f ms", r.Key, r.KeyMs)
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "  stopped: %s\n", r.Error)
	}
	if g := r.Registration; g != nil {
		fmt.Fprintf(w, "registration: %.2f ms (challenge %.2f, attestKey %.2f, register %.2f)", g.TotalMs, g.ChallengeMs, g.AttestMs, g.RegisterMs)
		if g.Environment != "" {
			fmt.Fprintf(w, "; %s key", g.Environment)
		}
		fmt.Fprintln(w)
		if g.Error != "" {
			fmt.Fprintf(w, "  failed: %s\n", g.Error)
		}
	}
	if a := r.Assertions; a != nil {
		fmt.Fprint(w, "assertions: ")
		a.writeText(w)
	}
}
