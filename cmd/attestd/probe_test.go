package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func runProbeJSON(t *testing.T, args ...string) (int, probeReport, string) {
	t.Helper()
	code, out, stderr := runCLI(t, nil, "", append([]string{"probe", "--json"}, args...)...)
	var r probeReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe --json printed %q (stderr %q): %v", out, stderr, err)
	}
	return code, r, stderr
}

// TestProbeDevLatency is "attestd probe --provider dev --count N --json"
// as it runs on Linux: the figures follow the dev provider's latency.
func TestProbeDevLatency(t *testing.T) {
	const latency = 2 * time.Millisecond
	code, r, stderr := runProbeJSON(t, "--provider", "dev", "--dev-latency", latency.String(), "--count", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	l := r.Latency
	if r.Provider != "dev" || l == nil || r.Lifetime != nil {
		t.Fatalf("report %+v, want dev latency only", r)
	}
	if l.Count != 8 || l.OK != 8 || l.Errors != 0 || l.TokenBytes != 32 || l.ColdError != "" {
		t.Errorf("latency %+v, want 8 ok 32-byte tokens", l)
	}
	// Lower bounds only: each call waits at least the latency.
	lat := ms(latency)
	if l.ColdMs < lat || l.MinMs < lat {
		t.Errorf("cold %.3f ms, min %.3f ms; want at least %.3f ms", l.ColdMs, l.MinMs, lat)
	}
	if !(l.MinMs <= l.P50Ms && l.P50Ms <= l.P90Ms && l.P90Ms <= l.P99Ms && l.P99Ms <= l.MaxMs) || l.MeanMs < l.MinMs || l.MeanMs > l.MaxMs {
		t.Errorf("figures out of order: %+v", l)
	}
}

func TestProbeUsage(t *testing.T) {
	key := writeProbeKey(t, mustKey(t))
	tests := [][]string{
		{"--count", "-1"},
		{"--timeout", "0s"},
		{"--team-id", "T"},
		{"--count", "0"},
		{"--ages", "1m,30s"},
		{"--ages", "-5s"},
		{"--environment", "ftp://x"},
		{"--provider", "dev", "--team-id", "T", "--key-id", "K", "--key", key}, // dev tokens to Apple
		{"stray"},
	}
	for _, args := range tests {
		code, _, stderr := runCLI(t, nil, "", append([]string{"probe"}, args...)...)
		if code != 2 || !strings.Contains(stderr, "attestd: error:") {
			t.Errorf("probe %q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x)
		}
		return out
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{ds(1), 50, 1},
		{ds(1), 99, 1},
		{ds(1, 2), 50, 1},
		{ds(1, 2, 3, 4), 50, 2},
		{ds(1, 2, 3, 4), 90, 4},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0, 1},
		{nil, 50, 0},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}

func TestParseAges(t *testing.T) {
	tests := []struct {
		in      string
		want    []time.Duration
		wantErr bool
	}{
		{"0s,15s,1m", []time.Duration{0, 15 * time.Second, time.Minute}, false},
		{"15s, 1h", []time.Duration{0, 15 * time.Second, time.Hour}, false},
		{"", []time.Duration{0}, false},
		{"1m,1m", nil, true},
		{"soon", nil, true},
		{"-1s", nil, true},
	}
	for _, tt := range tests {
		got, err := parseAges(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
			t.Errorf("parseAges(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := formatAges(defaultProbeAges); got != "0s,15s,30s,1m,2m,5m,10m,30m,1h" {
		t.Errorf("formatAges(default) = %q", got)
	}
	if back, err := parseAges(formatAges(defaultProbeAges)); err != nil || !slices.Equal(back, defaultProbeAges) {
		t.Errorf("the default ages do not read back: %v, %v", back, err)
	}
}

// stepClock is a probe clock that moves only when the probe sleeps, so
// an hour of token ages passes at once. The fake Apple reads it too.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func newStepClock() *stepClock { return &stepClock{now: time.Now()} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
		c.slept += d
	}
	return nil
}

// issuedTokens stands in for DeviceCheck in these tests: it takes each
// token from the fake Apple's IssueToken, so the fake knows its age.
type issuedTokens struct {
	srv    *devicechecktest.Server
	mu     sync.Mutex
	issued map[string]bool
}

func (p *issuedTokens) Kind() string { return "issued" }

func (p *issuedTokens) Generate(context.Context) ([]byte, error) {
	tok := p.srv.IssueToken()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issued[string(tok)] = true
	return tok, nil
}

func (p *issuedTokens) known(tok []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issued[string(tok)]
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writeProbeKey(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "AuthKey_KEY1234567.p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lifetimeSetup is the fake Apple with a clock of the test's, a provider
// that takes its tokens from it, and a probe client pointed at it.
func lifetimeSetup(t *testing.T) (*devicechecktest.Server, *issuedTokens, *appleProbe, *stepClock) {
	t.Helper()
	key := mustKey(t)
	srv := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "KEY1234567")
	t.Cleanup(srv.Close)
	clock := newStepClock()
	srv.Now = clock.Now
	p := &issuedTokens{srv: srv, issued: map[string]bool{}}
	srv.ValidTokens(p.known) // a made-up token is refused
	apple, err := newAppleProbe(verify.Config{TeamID: "TEAMID1234", KeyID: "KEY1234567", Key: key, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apple.client.CloseIdleConnections)
	return srv, p, apple, clock
}

// Ages short enough that the fake's check of request timestamps (within
// five minutes of its clock, which runs ahead here) still passes.
var testAges = []time.Duration{0, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}

func TestSearchLifetime(t *testing.T) {
	refusedBody := devicechecktest.BodyBadDeviceToken
	t.Run("tokens expire after 45s, one use each", func(t *testing.T) {
		srv, p, apple, clock := lifetimeSetup(t)
		srv.SetTokenLifetime(45 * time.Second)
		srv.RejectReuse(true)
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if r.Aborted != "" {
			t.Fatalf("aborted: %s", r.Aborted)
		}
		if r.LongestValid != "30s" || r.FirstRefused != "1m" || r.Lifetime != "at least 30s and less than 1m" {
			t.Errorf("longest %q, first refused %q, lifetime %q", r.LongestValid, r.FirstRefused, r.Lifetime)
		}
		if r.RecommendedMaxAge != "15s" || !strings.HasPrefix(r.Recommendation, "--max-age 15s") {
			t.Errorf("recommended %q: %s", r.RecommendedMaxAge, r.Recommendation)
		}
		if r.ReuseAccepted == nil || *r.ReuseAccepted {
			t.Errorf("ReuseAccepted = %v, want false", r.ReuseAccepted)
		}
		var got []string
		for _, a := range r.Ages {
			got = append(got, a.Age+"="+a.Outcome+"@"+a.MeasuredAge)
		}
		want := []string{"0s=valid@0s", "15s=valid@15s", "30s=valid@30s", "1m=refused@1m0s"}
		if !slices.Equal(got, want) {
			t.Errorf("ages %q, want %q (2m and 4m never asked)", got, want)
		}
		for kind, want := range map[string]appleAnswer{
			"valid":  {Outcome: outcomeValid, HTTPStatus: 200, Body: ""},
			"tooOld": {Outcome: outcomeRefused, HTTPStatus: 400, Body: refusedBody},
			"reused": {Outcome: outcomeRefused, HTTPStatus: 400, Body: refusedBody},
			"bad":    {Outcome: outcomeRefused, HTTPStatus: 400, Body: refusedBody},
		} {
			a := r.Answers[kind]
			if a.Outcome != want.Outcome || a.HTTPStatus != want.HTTPStatus || a.Body != want.Body {
				t.Errorf("answer %s = %+v, want %+v", kind, a, want)
			}
		}
		// Six validations: fresh, reuse, bad, 15s, 30s, 1m. Six tokens made.
		if n := len(srv.Requests()); n != 6 {
			t.Errorf("%d requests to Apple, want 6", n)
		}
		if len(p.issued) != len(testAges) {
			t.Errorf("%d tokens made, want one per age (%d)", len(p.issued), len(testAges))
		}
		// The clock moved exactly to the 1m token's age; nothing slept
		// for real.
		if clock.slept != time.Minute {
			t.Errorf("slept %v, want 1m", clock.slept)
		}
		var b strings.Builder
		r.Environment = srv.URL
		r.render(&b)
		for _, s := range []string{"lifetime: at least 30s and less than 1m", "Apple refused the second use", `tooOld  HTTP 400 "Missing or incorrectly formatted device token payload"`, `valid   HTTP 200 ""`} {
			if !strings.Contains(b.String(), s) {
				t.Errorf("rendered report lacks %q:\n%s", s, b.String())
			}
		}
	})

	t.Run("tokens outlive every age, reuse accepted", func(t *testing.T) {
		_, p, apple, clock := lifetimeSetup(t)
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if r.FirstRefused != "" || r.LongestValid != "4m" || !strings.Contains(r.Lifetime, "accepted every age") {
			t.Errorf("first refused %q, longest %q, lifetime %q", r.FirstRefused, r.LongestValid, r.Lifetime)
		}
		if r.RecommendedMaxAge != "2m" {
			t.Errorf("recommended %q, want 2m", r.RecommendedMaxAge)
		}
		if r.ReuseAccepted == nil || !*r.ReuseAccepted {
			t.Errorf("ReuseAccepted = %v, want true", r.ReuseAccepted)
		}
		if r.Answers["reused"].Outcome != outcomeValid || r.Answers["bad"].Outcome != outcomeRefused {
			t.Errorf("answers %+v", r.Answers)
		}
	})

	t.Run("expired before the first age", func(t *testing.T) {
		srv, p, apple, clock := lifetimeSetup(t)
		srv.SetTokenLifetime(5 * time.Second)
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if r.FirstRefused != "15s" || r.RecommendedMaxAge != "" || !strings.Contains(r.Recommendation, "finer ages") || r.Lifetime != "less than 15s" {
			t.Errorf("refused %q, recommended %q (%s), lifetime %q", r.FirstRefused, r.RecommendedMaxAge, r.Recommendation, r.Lifetime)
		}
	})

	t.Run("fresh token refused", func(t *testing.T) {
		srv, p, apple, clock := lifetimeSetup(t)
		srv.ValidTokens(func([]byte) bool { return false })
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if !strings.Contains(r.Aborted, "refused a fresh token (HTTP 400") || r.Lifetime != "not measured" || len(srv.Requests()) != 1 {
			t.Errorf("aborted %q, lifetime %q, %d requests", r.Aborted, r.Lifetime, len(srv.Requests()))
		}
	})

	t.Run("key refused midway", func(t *testing.T) {
		srv, p, apple, clock := lifetimeSetup(t)
		srv.Respond(func(req devicechecktest.Request) *devicechecktest.Response {
			if len(srv.Requests()) >= 4 { // fresh, reuse, bad, then 15s
				return &devicechecktest.Response{Status: http.StatusUnauthorized, Body: devicechecktest.BodyBadAuthorization}
			}
			return nil
		})
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if !strings.Contains(r.Aborted, "refused the key at age 15s (HTTP 401") || len(r.Ages) != 2 {
			t.Errorf("aborted %q after %d ages", r.Aborted, len(r.Ages))
		}
	})

	t.Run("inconclusive answers are skipped", func(t *testing.T) {
		srv, p, apple, clock := lifetimeSetup(t)
		srv.SetTokenLifetime(100 * time.Second)
		srv.Respond(func(req devicechecktest.Request) *devicechecktest.Response {
			switch len(srv.Requests()) {
			case 4: // 15s: a 200 that is not Apple's empty yes
				return &devicechecktest.Response{Status: http.StatusOK, Body: `{"status":"ok"}`}
			case 5: // 30s: unavailable
				return &devicechecktest.Response{Status: http.StatusServiceUnavailable, Body: "Service Unavailable"}
			}
			return nil
		})
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		var got []string
		for _, a := range r.Ages {
			got = append(got, a.Age+"="+a.Outcome)
		}
		want := []string{"0s=valid", "15s=inconclusive", "30s=inconclusive", "1m=valid", "2m=refused"}
		if !slices.Equal(got, want) {
			t.Errorf("ages %q, want %q", got, want)
		}
		if r.Ages[1].Body != `{"status":"ok"}` || r.Ages[2].HTTPStatus != 503 {
			t.Errorf("raw answers not kept: %+v, %+v", r.Ages[1], r.Ages[2])
		}
		if r.Lifetime != "at least 1m and less than 2m" || r.RecommendedMaxAge != "30s" {
			t.Errorf("lifetime %q, recommended %q", r.Lifetime, r.RecommendedMaxAge)
		}
	})
}

func TestClassifyAnswer(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{200, "", outcomeValid},
		{200, " ", outcomeInconclusive},
		{200, "Failed to find bit state", outcomeInconclusive},
		{302, "", outcomeInconclusive},
		{400, "Missing or incorrectly formatted device token payload", outcomeRefused},
		{404, "", outcomeRefused},
		{401, "Unable to verify authorization token", outcomeAuth},
		{403, "", outcomeAuth},
		{429, "", outcomeInconclusive},
		{500, "", outcomeInconclusive},
		{0, "", outcomeInconclusive},
	}
	for _, tt := range tests {
		a := classifyAnswer(&recorded{status: tt.status, body: []byte(tt.body)}, nil)
		if a.Outcome != tt.want || a.HTTPStatus != tt.status || a.Body != tt.body {
			t.Errorf("classify(%d %q) = %+v, want %s", tt.status, tt.body, a, tt.want)
		}
	}
}

// TestProbeCLIWithKey runs the whole command against the fake Apple with
// the dev provider (allowed because --environment is a URL) and the step
// clock.
func TestProbeCLIWithKey(t *testing.T) {
	key := mustKey(t)
	srv := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "KEY1234567")
	t.Cleanup(srv.Close)
	clock := newStepClock()
	srv.Now = clock.Now
	old := probeClockNow
	probeClockNow = clock
	t.Cleanup(func() { probeClockNow = old })

	code, r, stderr := runProbeJSON(t, "--provider", "dev", "--count", "3", "--ages", "0s,10s,20s",
		"--team-id", "TEAMID1234", "--key-id", "KEY1234567", "--key", writeProbeKey(t, key), "--environment", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if r.Latency == nil || r.Latency.OK != 3 || r.Lifetime == nil {
		t.Fatalf("report %+v", r)
	}
	l := r.Lifetime
	if l.Environment != srv.URL || l.LongestValid != "20s" || l.RecommendedMaxAge != "10s" || len(l.Ages) != 3 {
		t.Errorf("lifetime %+v", l)
	}
	// The fake accepts any well-formed token, made-up ones included.
	if l.Answers["bad"].Outcome != outcomeValid || l.ReuseAccepted == nil || !*l.ReuseAccepted {
		t.Errorf("answers %+v", l.Answers)
	}

	// Apple refusing the key fails the command with a hint.
	srv.Respond(func(devicechecktest.Request) *devicechecktest.Response {
		return &devicechecktest.Response{Status: http.StatusForbidden, Body: "Forbidden"}
	})
	code, out, stderr := runCLI(t, nil, "", "probe", "--provider", "dev", "--count", "0", "--ages", "0s",
		"--team-id", "TEAMID1234", "--key-id", "KEY1234567", "--key", writeProbeKey(t, key), "--environment", srv.URL)
	if code != 1 || !strings.Contains(stderr, "refused the key") || !strings.Contains(stderr, "attestd: hint:") || !strings.Contains(out, `HTTP 403 "Forbidden"`) {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
}
