package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/internal/probe/probetest"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

var _ Clock = (*probetest.StepClock)(nil)

func TestPercentile(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
		got, err := ParseAges(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
			t.Errorf("ParseAges(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := FormatAges(DefaultAges); got != "0s,15s,30s,1m,2m,5m,10m,30m,1h" {
		t.Errorf("FormatAges(default) = %q", got)
	}
	if back, err := ParseAges(FormatAges(DefaultAges)); err != nil || !slices.Equal(back, DefaultAges) {
		t.Errorf("the default ages do not read back: %v, %v", back, err)
	}
}

// issuedTokens stands in for DeviceCheck in these tests: it takes each
// token from the fake Apple's IssueToken, so the fake knows its age.
type issuedTokens struct {
	srv    *devicechecktest.Server
	mu     sync.Mutex
	issued map[string]bool
}

func (p *issuedTokens) Name() string { return "issued" }

func (p *issuedTokens) Generate(context.Context) (provider.Answer, error) {
	tok := p.srv.IssueToken()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issued[string(tok)] = true
	return provider.Answer{Kind: "dc", Token: tok}, nil
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

// lifetimeSetup is the fake Apple with a clock of the test's, a provider
// that takes its tokens from it, and a probe client pointed at it.
func lifetimeSetup(t *testing.T) (*devicechecktest.Server, *issuedTokens, *appleProbe, *probetest.StepClock) {
	t.Helper()
	key := mustKey(t)
	srv := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "KEY1234567")
	t.Cleanup(srv.Close)
	clock := probetest.NewStepClock()
	srv.Now = clock.Now
	p := &issuedTokens{srv: srv, issued: map[string]bool{}}
	srv.ValidTokens(p.known) // a made-up token is refused
	apple, err := newAppleProbe(verify.Config{TeamID: "TEAMID1234", KeyID: "KEY1234567", Key: key, BaseURL: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apple.client.CloseIdleConnections)
	return srv, p, apple, clock
}

// Ages short enough that the fake's check of request timestamps (within
// five minutes of its clock, which runs ahead here) still passes.
var testAges = []time.Duration{0, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}

// TestSearchLifetimeExpiry is the whole search against a fake Apple
// whose tokens expire after 45s and are accepted once.
func TestSearchLifetimeExpiry(t *testing.T) {
	t.Parallel()
	refusedBody := devicechecktest.BodyBadDeviceToken
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
	for kind, want := range map[string]Answer{
		"valid":  {Outcome: OutcomeValid, HTTPStatus: 200, Body: ""},
		"tooOld": {Outcome: OutcomeRefused, HTTPStatus: 400, Body: refusedBody},
		"reused": {Outcome: OutcomeRefused, HTTPStatus: 400, Body: refusedBody},
		"bad":    {Outcome: OutcomeRefused, HTTPStatus: 400, Body: refusedBody},
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
	if clock.Slept() != time.Minute {
		t.Errorf("slept %v, want 1m", clock.Slept())
	}
	var b strings.Builder
	r.Environment = srv.URL
	r.writeText(&b)
	for _, s := range []string{"lifetime: at least 30s and less than 1m", "Apple refused the second use", `tooOld  HTTP 400 "Missing or incorrectly formatted device token payload"`, `valid   HTTP 200 ""`} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("rendered report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestSearchLifetime(t *testing.T) {
	t.Parallel()
	t.Run("tokens outlive every age, reuse accepted", func(t *testing.T) {
		t.Parallel()
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
		if r.Answers["reused"].Outcome != OutcomeValid || r.Answers["bad"].Outcome != OutcomeRefused {
			t.Errorf("answers %+v", r.Answers)
		}
	})

	t.Run("expired before the first age", func(t *testing.T) {
		t.Parallel()
		srv, p, apple, clock := lifetimeSetup(t)
		srv.SetTokenLifetime(5 * time.Second)
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if r.FirstRefused != "15s" || r.RecommendedMaxAge != "" || !strings.Contains(r.Recommendation, "finer ages") || r.Lifetime != "less than 15s" {
			t.Errorf("refused %q, recommended %q (%s), lifetime %q", r.FirstRefused, r.RecommendedMaxAge, r.Recommendation, r.Lifetime)
		}
	})

	t.Run("fresh token refused", func(t *testing.T) {
		t.Parallel()
		srv, p, apple, clock := lifetimeSetup(t)
		srv.ValidTokens(func([]byte) bool { return false })
		r := searchLifetime(context.Background(), p, apple, clock, testAges, 10*time.Second)
		if !strings.Contains(r.Aborted, "refused a fresh token (HTTP 400") || r.Lifetime != "not measured" || len(srv.Requests()) != 1 {
			t.Errorf("aborted %q, lifetime %q, %d requests", r.Aborted, r.Lifetime, len(srv.Requests()))
		}
	})

	t.Run("key refused midway", func(t *testing.T) {
		t.Parallel()
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
}

func TestSearchLifetimeSkipsInconclusive(t *testing.T) {
	t.Parallel()
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
}

func TestClassifyAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{200, "", OutcomeValid},
		{200, " ", OutcomeInconclusive},
		{200, "Failed to find bit state", OutcomeInconclusive},
		{302, "", OutcomeInconclusive},
		{400, "Missing or incorrectly formatted device token payload", OutcomeRefused},
		{404, "", OutcomeRefused},
		{401, "Unable to verify authorization token", OutcomeAuth},
		{403, "", OutcomeAuth},
		{429, "", OutcomeInconclusive},
		{500, "", OutcomeInconclusive},
		{0, "", OutcomeInconclusive},
	}
	for _, tt := range tests {
		a := classifyAnswer(&recorded{status: tt.status, body: []byte(tt.body)}, nil)
		if a.Outcome != tt.want || a.HTTPStatus != tt.status || a.Body != tt.body {
			t.Errorf("classify(%d %q) = %+v, want %s", tt.status, tt.body, a, tt.want)
		}
	}
}
