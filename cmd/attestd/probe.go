package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/verify"
)

func init() {
	c := &command{
		name: "probe",
		summary: "Measure DeviceCheck's latency on this Mac and, with a DeviceCheck key, a token's lifetime and reuse.\n\n" +
			"Latency: one cold call, then --count calls: min, p50, p90, p99 (nearest rank) and max.\n" +
			"Lifetime (with --team-id, --key-id and --key): one fresh token per age in --ages, each\n" +
			"validated with Apple once it is that old, until Apple refuses one; the age-0 token is then\n" +
			"validated a second time (reuse) and a made-up token once (bad). Prints the measured\n" +
			"lifetime, the --max-age it recommends, and Apple's exact HTTP status and body for each\n" +
			"kind of answer. The search takes as long as the largest age it reaches (1 h by default).\n" +
			"With --provider dev it runs anywhere; dev tokens go only to an --environment URL.",
		usage: "probe [--count N] [--json] [--provider P] [--dev-latency D] [--timeout D] [--team-id T --key-id K --key FILE] [--environment E] [--ages LIST]",
	}
	c.run = func(ctx context.Context, s *stdio, args []string) error { return runProbe(ctx, s, c, args) }
	register(c)
}

// defaultProbeAges are the token ages the lifetime search tries: Apple
// publishes no lifetime, and one report says about 30 s.
var defaultProbeAges = []time.Duration{
	0, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour,
}

// probeClock is the probe's view of time: the lifetime search waits with
// Sleep, so a test can run an hour of ages at once.
type probeClock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realProbeClock struct{}

func (realProbeClock) Now() time.Time { return time.Now() }

func (realProbeClock) Sleep(ctx context.Context, d time.Duration) error {
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

// Seams for tests.
var (
	probeClockNow  probeClock = realProbeClock{}
	probeTransport            = defaultProbeTransport
)

// probeReport is what "attestd probe --json" prints.
type probeReport struct {
	Attestd  string          `json:"attestd"`
	Platform string          `json:"platform"`
	Provider string          `json:"provider"`
	Latency  *latencyReport  `json:"latency,omitempty"`
	Lifetime *lifetimeReport `json:"lifetime,omitempty"`
}

func runProbe(ctx context.Context, s *stdio, c *command, args []string) error {
	fs := newFlagSet(s, c)
	count := fs.Int("count", 20, "tokens to time after the cold first call (0: no latency measurement)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	provFlags := addProviderFlags(fs, "auto", "token provider: "+providerNames)
	timeout := fs.Duration("timeout", 15*time.Second, "bound on each token and each request to Apple")
	teamID := fs.String("team-id", "", "Apple developer team id (the JWT iss), to measure the lifetime")
	keyID := fs.String("key-id", "", "id of the DeviceCheck key (the JWT kid)")
	keyFile := fs.String("key", "", "the key's .p8 file (AuthKey_KEYID.p8)")
	env := fs.String("environment", "production", "Apple environment: production, development (tokens from development-signed helpers) or a base URL")
	agesFlag := fs.String("ages", formatAges(defaultProbeAges), "token ages to validate, ascending, comma-separated (0s is added when missing)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	if *count < 0 || *timeout <= 0 {
		return usagef("--count must not be negative and --timeout must be positive")
	}
	keyFlags := 0
	for _, v := range []string{*teamID, *keyID, *keyFile} {
		if v != "" {
			keyFlags++
		}
	}
	if keyFlags != 0 && keyFlags != 3 {
		return usagef("give all of --team-id, --key-id and --key to measure the lifetime, or none")
	}
	if keyFlags == 0 && *count == 0 {
		return usagef("nothing to measure: --count 0 and no DeviceCheck key")
	}
	ages, err := parseAges(*agesFlag)
	if err != nil {
		return usagef("--ages: %v", err)
	}
	baseURL, err := verify.EnvironmentURL(*env)
	if err != nil {
		return usagef("--environment: %v", err)
	}
	prov, err := provFlags.newProvider(s)
	if err != nil {
		return err
	}
	if keyFlags == 3 && prov.Kind() != header.KindDeviceCheck && (baseURL == verify.Production || baseURL == verify.Development) {
		return usagef("%s tokens are never valid with Apple: measure the lifetime with --provider devicecheck on a Mac, or point --environment at a test server", prov.Kind())
	}
	var apple *appleProbe
	if keyFlags == 3 {
		key, err := verify.LoadPrivateKey(*keyFile)
		if err != nil {
			return withHint(err, "%s", appleKeyHint)
		}
		apple, err = newAppleProbe(verify.Config{TeamID: *teamID, KeyID: *keyID, Key: key, BaseURL: baseURL, Timeout: *timeout})
		if err != nil {
			return err
		}
		defer apple.client.CloseIdleConnections()
	}

	r := probeReport{Attestd: version, Platform: runtime.GOOS + "/" + runtime.GOARCH, Provider: prov.Kind()}
	var failures []string
	if *count > 0 {
		l := measureLatency(ctx, prov, *count, *timeout, probeClockNow)
		r.Latency = &l
		if l.OK == 0 {
			failures = append(failures, "no token was made: "+l.FirstError)
		}
	}
	if apple != nil {
		if !*jsonOut {
			fmt.Fprintf(s.err, "attestd: note: measuring the token lifetime takes up to %v (the largest age)\n", ages[len(ages)-1])
		}
		l := searchLifetime(ctx, prov, apple, probeClockNow, ages, *timeout)
		l.Environment = baseURL
		r.Lifetime = &l
		if l.Aborted != "" {
			failures = append(failures, l.Aborted)
		}
	}
	if err := writeReport(s.out, *jsonOut, r, r.render); err != nil {
		return err
	}
	if len(failures) > 0 {
		return withHint(fmt.Errorf("probe: %s", strings.Join(failures, "; ")), "%s", probeHint(r))
	}
	return nil
}

func probeHint(r probeReport) string {
	if r.Lifetime != nil && r.Lifetime.Aborted != "" {
		return "check --team-id, --key-id, --key and --environment (tokens from a development-signed helper validate only with --environment development)"
	}
	return "run \"attestd selftest\" to see which check fails"
}

// parseAges reads --ages: ascending non-negative durations; 0s is added
// in front when missing, since the fresh token also serves the reuse and
// bad-token checks.
func parseAges(s string) ([]time.Duration, error) {
	var ages []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, fmt.Errorf("negative age %v", d)
		}
		if len(ages) > 0 && d <= ages[len(ages)-1] {
			return nil, fmt.Errorf("ages must ascend: %v after %v", d, ages[len(ages)-1])
		}
		ages = append(ages, d)
	}
	if len(ages) == 0 || ages[0] != 0 {
		ages = append([]time.Duration{0}, ages...)
	}
	return ages, nil
}

func formatAges(ages []time.Duration) string {
	s := make([]string, len(ages))
	for i, a := range ages {
		s[i] = shortDuration(a)
	}
	return strings.Join(s, ",")
}

// shortDuration prints 1m instead of 1m0s and 1h instead of 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// latencyReport is the latency half of the probe. Durations are in
// milliseconds; the statistics cover the calls after the cold one that
// succeeded.
type latencyReport struct {
	// Count is how many calls were timed after the cold one.
	Count int `json:"count"`
	// ColdMs is the first call, which loads DeviceCheck and opens its
	// connection; ColdError is set when it failed.
	ColdMs     float64 `json:"coldMs"`
	ColdError  string  `json:"coldError,omitempty"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"firstError,omitempty"`
	MinMs      float64 `json:"minMs"`
	P50Ms      float64 `json:"p50Ms"`
	P90Ms      float64 `json:"p90Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	MeanMs     float64 `json:"meanMs"`
	// TokenBytes is the size of the last token (DeviceCheck's vary).
	TokenBytes int `json:"tokenBytes,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measureLatency makes one cold call and then count more, one at a time,
// each bounded by timeout.
func measureLatency(ctx context.Context, p provider.Provider, count int, timeout time.Duration, clock probeClock) latencyReport {
	r := latencyReport{Count: count}
	call := func() (time.Duration, []byte, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		start := clock.Now()
		tok, err := p.Generate(cctx)
		return clock.Now().Sub(start), tok, err
	}
	cold, tok, err := call()
	r.ColdMs = ms(cold)
	if err != nil {
		r.ColdError = err.Error()
	} else {
		r.TokenBytes = len(tok)
	}
	var took []time.Duration
	for range count {
		if ctx.Err() != nil {
			break
		}
		d, tok, err := call()
		if err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
			continue
		}
		took = append(took, d)
		r.TokenBytes = len(tok)
	}
	r.OK = len(took)
	if r.FirstError == "" && r.OK == 0 {
		r.FirstError = r.ColdError
	}
	if len(took) == 0 {
		return r
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	r.MinMs, r.MaxMs = ms(took[0]), ms(took[len(took)-1])
	r.P50Ms, r.P90Ms, r.P99Ms = ms(percentile(took, 50)), ms(percentile(took, 90)), ms(percentile(took, 99))
	r.MeanMs = ms(sum / time.Duration(len(took)))
	return r
}

// percentile returns the nearest-rank p-th percentile of sorted: the
// smallest value with at least p% of the values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// render writes the report for people.
func (r probeReport) render(w io.Writer) {
	fmt.Fprintf(w, "attestd probe (%s, provider %s, attestd %s)\n", r.Platform, r.Provider, r.Attestd)
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "latency: a cold call, then %d calls (%d ok, %d failed)\n", l.Count, l.OK, l.Errors)
		cold := fmt.Sprintf("%.2f ms", l.ColdMs)
		if l.ColdError != "" {
			cold += " (failed: " + l.ColdError + ")"
		}
		fmt.Fprintf(w, "  cold  %s\n", cold)
		if l.OK > 0 {
			fmt.Fprintf(w, "  min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f ms; tokens of %d bytes\n",
				l.MinMs, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.MeanMs, l.TokenBytes)
		}
		if l.FirstError != "" {
			fmt.Fprintf(w, "  first error: %s\n", l.FirstError)
		}
	}
	if l := r.Lifetime; l != nil {
		l.render(w)
	}
}
