package probe

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/internal/probe/probetest"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// countingProvider is the dev provider, counting its calls.
type countingProvider struct {
	provider.Dev
	calls atomic.Int32
}

func (p *countingProvider) Generate(ctx context.Context) (provider.Answer, error) {
	p.calls.Add(1)
	return p.Dev.Generate(ctx)
}

// failingProvider makes no token.
type failingProvider struct{}

func (failingProvider) Name() string { return "dc" }

func (failingProvider) Generate(context.Context) (provider.Answer, error) {
	return provider.Answer{}, errors.New("no GUI login session")
}

// fakeApple is the fake Apple on the step clock, and a lifetime config
// pointed at it.
func fakeApple(t *testing.T, ages ...time.Duration) (*devicechecktest.Server, *probetest.StepClock, *LifetimeConfig) {
	t.Helper()
	key := mustKey(t)
	srv := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "KEY1234567")
	t.Cleanup(srv.Close)
	clock := probetest.NewStepClock()
	srv.Now = clock.Now
	return srv, clock, &LifetimeConfig{TeamID: "TEAMID1234", KeyID: "KEY1234567", Key: key, BaseURL: srv.URL, Ages: ages}
}

// TestRun measures both halves against the fake Apple with the dev
// provider, as "attestd probe --provider dev" with a key does.
func TestRun(t *testing.T) {
	t.Parallel()
	_, clock, lc := fakeApple(t, 0, 10*time.Second, 20*time.Second)
	p := &countingProvider{}
	var searchStarted []int32
	var largest time.Duration
	r, err := Run(context.Background(), Config{
		Provider: p, Count: 3, Timeout: 10 * time.Second, Lifetime: lc, Version: "v9", Clock: clock,
		OnLifetimeSearch: func(d time.Duration) { searchStarted, largest = append(searchStarted, p.calls.Load()), d },
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Attestd != "v9" || r.Provider != "dev" || r.Latency == nil || r.Latency.OK != 3 || r.Lifetime == nil {
		t.Fatalf("report %+v", r)
	}
	// Told once, after the cold call and the three timed ones.
	if len(searchStarted) != 1 || searchStarted[0] != 4 || largest != 20*time.Second {
		t.Errorf("OnLifetimeSearch called at %v token(s) made, with %v; want once at 4, with 20s", searchStarted, largest)
	}
	l := r.Lifetime
	if l.Environment != lc.BaseURL || l.LongestValid != "20s" || l.RecommendedMaxAge != "10s" || len(l.Ages) != 3 {
		t.Errorf("lifetime %+v", l)
	}
	// The fake accepts any well-formed token, made-up ones included.
	if l.Answers["bad"].Outcome != OutcomeValid || l.ReuseAccepted == nil || !*l.ReuseAccepted {
		t.Errorf("answers %+v", l.Answers)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	t.Run("key refused", func(t *testing.T) {
		t.Parallel()
		srv, clock, lc := fakeApple(t, 0)
		srv.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: http.StatusForbidden, Body: "Forbidden"}
		})
		r, err := Run(context.Background(), Config{Provider: provider.Dev{}, Timeout: 10 * time.Second, Lifetime: lc, Clock: clock})
		var failed *FailedError
		if !errors.As(err, &failed) || err.Error() != `probe: Apple refused the key (HTTP 403 "Forbidden")` {
			t.Fatalf("err %v, want a *FailedError saying Apple refused the key", err)
		}
		if r.Lifetime == nil || r.Lifetime.Aborted == "" || len(r.Lifetime.Ages) != 1 || r.Latency != nil {
			t.Errorf("the report is not complete: %+v", r)
		}
	})
	t.Run("no token made", func(t *testing.T) {
		t.Parallel()
		_, clock, lc := fakeApple(t, 0, time.Second)
		r, err := Run(context.Background(), Config{Provider: failingProvider{}, Count: 2, Timeout: time.Second, Lifetime: lc, Clock: clock})
		var failed *FailedError
		if !errors.As(err, &failed) || len(failed.Reasons) != 2 {
			t.Fatalf("err %v, want a *FailedError with two reasons", err)
		}
		want := "probe: no token was made: no GUI login session; could not make a token for age 1s: no GUI login session"
		if err.Error() != want {
			t.Errorf("err %q, want %q", err, want)
		}
		if r.Latency == nil || r.Latency.Errors != 2 || r.Latency.ColdError == "" || r.Lifetime.Lifetime != "not measured" {
			t.Errorf("report %+v", r)
		}
	})
}

func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	_, _, lc := fakeApple(t, 0, time.Second)
	unsorted := *lc
	unsorted.Ages = []time.Duration{0, 2 * time.Second, time.Second}
	noZero := *lc
	noZero.Ages = []time.Duration{time.Second}
	dev := provider.Dev{}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no provider", Config{Count: 1, Timeout: time.Second}},
		{"negative count", Config{Provider: dev, Count: -1, Timeout: time.Second}},
		{"no timeout", Config{Provider: dev, Count: 1}},
		{"nothing to measure", Config{Provider: dev, Timeout: time.Second}},
		{"ages out of order", Config{Provider: dev, Timeout: time.Second, Lifetime: &unsorted}},
		{"no age 0", Config{Provider: dev, Timeout: time.Second, Lifetime: &noZero}},
	} {
		if _, err := Run(context.Background(), tc.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tc.name, err)
		}
	}
	// A key verify cannot use is verify's error, before anything is
	// measured.
	noTeam := *lc
	noTeam.TeamID = ""
	p := &countingProvider{}
	_, err := Run(context.Background(), Config{Provider: p, Count: 1, Timeout: time.Second, Lifetime: &noTeam})
	var failed *FailedError
	if err == nil || errors.As(err, &failed) || errors.Is(err, ErrConfig) || p.calls.Load() != 0 {
		t.Errorf("err %v after %d token(s), want verify's error before any token", err, p.calls.Load())
	}
}

func TestRealClockSleep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (realClock{}).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on an ended context = %v, want context.Canceled", err)
	}
	if err := (realClock{}).Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
}

func TestWriteTextLatency(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	Report{Platform: "darwin/arm64", Provider: "dc", Attestd: "v1", Latency: &Latency{Count: 2, ColdMs: 310.5, ColdError: "timeout", Errors: 2, FirstError: "timeout"}}.WriteText(&b)
	want := "attestd probe (darwin/arm64, provider dc, attestd v1)\n" +
		"latency: a cold call, then 2 calls (0 ok, 2 failed)\n" +
		"  cold  310.50 ms (failed: timeout)\n" +
		"  first error: timeout\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
