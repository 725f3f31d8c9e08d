package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/internal/clock"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// harness runs a pool on a fake clock and lets a test wait until the
// pool's loop has nothing left to do.
type harness struct {
	t    *testing.T
	p    *Pool
	clk  *clock.Fake
	prov *providertest.Scripted
	idle chan struct{}
}

func newHarness(t *testing.T, cfg Config, script func(n int) providertest.Step) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(epoch), idle: make(chan struct{}, 1),
		prov: &providertest.Scripted{Script: script, Started: make(chan int, 100)}}
	cfg.Provider = h.prov
	cfg.Clock = h.clk
	if cfg.Jitter == nil {
		cfg.Jitter = func() float64 { return 0 }
	}
	h.p = start(cfg, func() {
		select {
		case h.idle <- struct{}{}:
		default:
		}
	})
	t.Cleanup(h.p.Close)
	return h
}

// settle returns once the loop has looked at the current state and found
// nothing more to start.
func (h *harness) settle() {
	h.t.Helper()
	for range 2 {
		select {
		case <-h.idle:
		default:
		}
		h.p.kick()
		select {
		case <-h.idle:
		case <-time.After(5 * time.Second):
			h.t.Fatal("pool loop did not go idle")
		}
	}
}

func (h *harness) token(ctx context.Context) (header.Value, error) {
	h.t.Helper()
	s, err := h.p.Token(ctx)
	if err != nil {
		return header.Value{}, err
	}
	v, derr := header.Decode(s)
	if derr != nil {
		h.t.Fatalf("pool handed out an undecodable value: %v", derr)
	}
	return v, nil
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestWarmFillsToSizeAndServesOldestFirst(t *testing.T) {
	h := newHarness(t, Config{Size: 3, BundleID: "com.example.attestd", TeamID: "TEAM123456"}, nil)
	h.p.Warm()
	h.settle()
	if got := h.p.Status().Ready; got != 3 {
		t.Fatalf("ready = %d, want 3", got)
	}
	if h.prov.Calls() != 3 {
		t.Fatalf("provider calls = %d, want 3", h.prov.Calls())
	}
	seen := map[string]bool{}
	for i := range 3 {
		v, err := h.token(canceledCtx()) // ready tokens need no waiting
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if v.Kind != header.KindDev || v.BundleID != "com.example.attestd" || v.TeamID != "TEAM123456" {
			t.Fatalf("token %d = %+v", i, v)
		}
		if seen[string(v.Token)] {
			t.Fatalf("token %d handed out twice", i)
		}
		seen[string(v.Token)] = true
	}
	h.settle()
	if got := h.p.Status().Ready; got != 3 {
		t.Fatalf("after taking, refilled to %d, want 3", got)
	}
	if c := h.p.Status().Counters; c.Served != 3 || c.Generated != 6 || c.Requests != 3 {
		t.Fatalf("counters = %+v", c)
	}
}

func TestNoGenerationWithoutDemand(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	h.settle()
	if n := h.prov.Calls(); n != 0 {
		t.Fatalf("idle pool called the provider %d times", n)
	}
}

func TestRequestWaitsForGenerationInFlight(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{Size: 1}, func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Release: release}
		}
		return providertest.Step{}
	})
	got := make(chan error, 1)
	go func() {
		_, err := h.token(context.Background())
		got <- err
	}()
	<-h.prov.Started // the request started a generation
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("Token: %v", err)
	}
}

func TestDeadlineGivesPromptTimeoutAndKeepsTheLateToken(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{Size: 1}, func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Release: release}
		}
		return providertest.Step{Release: make(chan struct{})} // later calls wait forever
	})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { _, err := h.p.Token(ctx); got <- err }()
	<-h.prov.Started
	cancel()
	err := <-got
	if provider.ReasonOf(err) != provider.ReasonTimeout || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v (reason %s), want a timeout wrapping the context error", err, provider.ReasonOf(err))
	}
	close(release)
	h.settle()
	if s := h.p.Status(); s.Ready != 1 || s.Counters.Timeouts != 1 {
		t.Fatalf("late token not kept: %+v", s)
	}
}

func TestFailureFailsWaitersThenBacksOff(t *testing.T) {
	dcErr := &provider.Error{Reason: provider.ReasonProviderError, Msg: "serverUnavailable", DCCode: 4, HasDCCode: true}
	fail := true
	var mu sync.Mutex
	h := newHarness(t, Config{BackoffMin: time.Second, BackoffMax: 8 * time.Second}, func(n int) providertest.Step {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return providertest.Step{Err: dcErr}
		}
		return providertest.Step{}
	})
	_, err := h.p.Token(context.Background())
	if code, ok := provider.DCErrorCodeOf(err); !ok || code != 4 || !errors.Is(err, dcErr) {
		t.Fatalf("err = %v, want the provider's DeviceCheck error", err)
	}
	h.settle()
	calls := h.prov.Calls()
	// While backing off, a request fails at once with the last error.
	_, err = h.p.Token(context.Background())
	if !errors.Is(err, dcErr) {
		t.Fatalf("during backoff err = %v", err)
	}
	h.settle()
	if h.prov.Calls() != calls {
		t.Fatal("pool called the provider during backoff")
	}
	st := h.p.Status()
	if st.RetryAt == nil || st.ConsecutiveFailures != 1 || st.LastError == nil || st.LastError.DCErrorCode == nil || *st.LastError.DCErrorCode != 4 {
		t.Fatalf("status = %+v", st)
	}
	// With jitter 0, the first wait is half of BackoffMin.
	if want := epoch.Add(500 * time.Millisecond); !st.RetryAt.Equal(want) {
		t.Fatalf("retryAt = %v, want %v", st.RetryAt, want)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	h.clk.Advance(500 * time.Millisecond)
	h.settle()
	if st := h.p.Status(); st.Ready != DefaultSize || st.ConsecutiveFailures != 0 || st.RetryAt != nil {
		t.Fatalf("after backoff: %+v", st)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := &Pool{cfg: Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}}
	for _, tc := range []struct {
		n        int
		jitter   float64
		min, max time.Duration
	}{
		{1, 0, 50 * time.Millisecond, 50 * time.Millisecond},
		{1, 0.999, 99 * time.Millisecond, 100 * time.Millisecond},
		{2, 0, 100 * time.Millisecond, 100 * time.Millisecond},
		{4, 0, 400 * time.Millisecond, 400 * time.Millisecond},
		{5, 0.999, 999 * time.Millisecond, time.Second},
		{50, 0.5, 750 * time.Millisecond, 750 * time.Millisecond},
	} {
		p.cfg.Jitter = func() float64 { return tc.jitter }
		if d := p.backoff(tc.n); d < tc.min || d > tc.max {
			t.Errorf("backoff(%d) with jitter %v = %v, want in [%v, %v]", tc.n, tc.jitter, d, tc.min, tc.max)
		}
	}
}

func TestReadyTokensExpire(t *testing.T) {
	h := newHarness(t, Config{Size: 2, MaxAge: 20 * time.Second, BusyWindow: 30 * time.Second, WarmWindow: time.Minute}, nil)
	h.p.Warm()
	h.settle()
	h.clk.Advance(20 * time.Second) // both age out; still busy: replaced
	h.settle()
	st := h.p.Status()
	if st.Counters.Expired != 2 || st.Ready != 2 || st.Counters.Generated != 4 {
		t.Fatalf("after expiry while warm: %+v", st)
	}
	v, err := h.token(canceledCtx())
	if err != nil {
		t.Fatal(err)
	}
	if age := h.clk.Now().Sub(v.GeneratedAt); age != 0 {
		t.Fatalf("served a token %v old", age)
	}
}

func TestPoolGoesColdAfterWarmWindow(t *testing.T) {
	h := newHarness(t, Config{Size: 1, MaxAge: 10 * time.Second, WarmWindow: 15 * time.Second}, nil)
	h.p.Warm()
	h.settle()
	h.clk.Advance(10 * time.Second) // expires at 10 s, replaced (warm until 15 s)
	h.settle()
	h.clk.Advance(10 * time.Second) // 20 s: expired again, now cold
	h.settle()
	h.clk.Advance(time.Hour)
	h.settle()
	st := h.p.Status()
	if st.Warm || st.Ready != 0 || st.Counters.Generated != 2 {
		t.Fatalf("cold pool kept generating: %+v", st)
	}
}

func TestPanickingProviderIsAnError(t *testing.T) {
	h := newHarness(t, Config{}, func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Panic: "boom"}
		}
		return providertest.Step{}
	})
	_, err := h.p.Token(context.Background())
	if err == nil || provider.ReasonOf(err) != provider.ReasonProviderError {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyTokenIsAnError(t *testing.T) {
	h := newHarness(t, Config{}, func(int) providertest.Step { return providertest.Step{Token: []byte{}} })
	if _, err := h.p.Token(context.Background()); err == nil {
		t.Fatal("an empty token was accepted")
	}
}

func TestCloseFailsWaitersAndLaterCalls(t *testing.T) {
	h := newHarness(t, Config{}, func(int) providertest.Step { return providertest.Step{Hang: true} })
	got := make(chan error, 1)
	go func() { _, err := h.p.Token(context.Background()); got <- err }()
	<-h.prov.Started
	h.p.Close()
	if err := <-got; provider.ReasonOf(err) != provider.ReasonShuttingDown {
		t.Fatalf("waiter err = %v", err)
	}
	if _, err := h.p.Token(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close err = %v", err)
	}
	h.p.Close() // idempotent
}

func TestConcurrentRequestsGetDistinctTokens(t *testing.T) {
	p := New(Config{Provider: provider.Dev{}, Size: 4})
	defer p.Close()
	const n = 200
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 8 {
				s, err := p.Token(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[s] {
					t.Error("token handed out twice")
				}
				seen[s] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("got %d distinct tokens, want %d", len(seen), n)
	}
}

func TestTryTokenNeverWaits(t *testing.T) {
	h := newHarness(t, Config{Size: 1}, nil)
	if _, ok := h.p.TryToken(); ok {
		t.Fatal("TryToken on an empty pool returned a token")
	}
	h.settle()
	if st := h.p.Status(); st.Counters.Requests != 0 || st.Warm || h.prov.Calls() != 0 {
		t.Fatalf("a failed TryToken changed the pool: %+v", st)
	}
	h.p.Warm()
	h.settle()
	v, ok := h.p.TryToken()
	if !ok {
		t.Fatal("no token after warm-up")
	}
	if _, err := header.Decode(v); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if st := h.p.Status(); st.Counters.Served != 1 || st.Counters.Requests != 1 || st.Ready != 1 {
		t.Fatalf("after TryToken: %+v", st)
	}
}

func TestTooManyWaitersFailAtOnce(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{MaxWaiters: 1}, func(int) providertest.Step { return providertest.Step{Release: release} })
	errs := make(chan error, 1)
	go func() { _, err := h.p.Token(context.Background()); errs <- err }()
	// The request queued itself before it woke the loop that started this
	// generation, so the queue is full now.
	<-h.prov.Started
	_, err := h.p.Token(context.Background())
	if !errors.Is(err, ErrOverloaded) || provider.ReasonOf(err) != provider.ReasonOverloaded {
		t.Fatalf("second waiter: %v", err)
	}
	close(release)
	if err := <-errs; err != nil {
		t.Errorf("queued request: %v", err)
	}
}
