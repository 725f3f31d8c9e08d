package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
)

func TestWaitReadyReturnsAtOnceWhenReady(t *testing.T) {
	h := newHarness(t, Config{Size: 1, MaxAge: time.Hour}, nil)
	h.p.Warm()
	h.settle()
	if err := h.p.WaitReady(canceledCtx()); err != nil {
		t.Fatalf("WaitReady with a token ready: %v", err)
	}
	if st := h.p.Status(); st.Ready != 1 || st.Counters.Served != 0 || st.Counters.Requests != 0 {
		t.Fatalf("WaitReady took a token or counted a request: %+v", st)
	}
}

// From cold, WaitReady warms the pool and returns once the generation it
// started lands in the ready set, where the token stays.
func TestWaitReadyWaitsForGeneration(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{Size: 1, MaxAge: time.Hour}, func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Release: release}
		}
		return providertest.Step{}
	})
	got := make(chan error, 1)
	go func() { got <- h.p.WaitReady(context.Background()) }()
	<-h.prov.Started // WaitReady warmed the pool
	select {
	case err := <-got:
		t.Fatalf("WaitReady returned %v before a token was ready", err)
	default:
	}
	close(release)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, ok := h.p.TryToken(); !ok {
		t.Fatal("the token WaitReady waited for is not ready")
	}
}

// A token with less than ReadyMargin of its life left does not count as
// ready: the request that follows the wait could find it expired.
func TestWaitReadyWantsAFreshToken(t *testing.T) {
	h := newHarness(t, Config{Size: 1, MaxAge: 20 * time.Second, ReadyMargin: 2 * time.Second, WarmWindow: time.Second}, nil)
	h.p.Warm()
	h.settle()
	h.clk.Advance(19 * time.Second) // cold now, and the token has 1 s left
	h.settle()
	if st := h.p.Status(); st.Ready != 1 || st.Counters.Generated != 1 {
		t.Fatalf("setup: %+v", st)
	}
	if err := h.p.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.p.Status(); st.Counters.Generated != 2 {
		t.Fatalf("WaitReady accepted a token 1 s from expiry: %+v", st)
	}
}

func TestWaitReadyEndsWithContext(t *testing.T) {
	h := newHarness(t, Config{}, func(int) providertest.Step { return providertest.Step{Hang: true} })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- h.p.WaitReady(ctx) }()
	<-h.prov.Started
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ctx's error", err)
	}
	if st := h.p.Status(); st.WaitingReady != 0 {
		t.Fatalf("a canceled wait is still registered: %+v", st)
	}
}

// A failing provider answers every wait at once with its error, and
// during the backoff that follows a new wait fails at once too, without
// calling the provider.
func TestWaitReadyFailsWithProvider(t *testing.T) {
	dcErr := &provider.Error{Reason: provider.ReasonProviderError, Msg: "serverUnavailable", DCCode: 4, HasDCCode: true}
	release := make(chan struct{})
	h := newHarness(t, Config{BackoffMin: time.Second}, func(int) providertest.Step {
		return providertest.Step{Release: release, Err: dcErr}
	})
	const n = 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- h.p.WaitReady(context.Background()) }()
	}
	<-h.prov.Started
	poll.Until(t, "the waits to register", func() bool { return h.p.Status().WaitingReady == n })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if code, ok := provider.DCErrorCodeOf(err); !ok || code != 4 {
			t.Fatalf("err = %v, want the provider's error", err)
		}
	}
	h.settle()
	calls := h.prov.Calls()
	err := h.p.WaitReady(context.Background()) // backing off
	if !errors.Is(err, dcErr) {
		t.Fatalf("during backoff: %v", err)
	}
	h.settle()
	if h.prov.Calls() != calls {
		t.Fatal("a wait during backoff called the provider")
	}
}

func TestWaitReadyAfterClose(t *testing.T) {
	h := newHarness(t, Config{}, func(int) providertest.Step { return providertest.Step{Hang: true} })
	got := make(chan error, 1)
	go func() { got <- h.p.WaitReady(context.Background()) }()
	<-h.prov.Started
	h.p.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting: %v", err)
	}
	if err := h.p.WaitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
