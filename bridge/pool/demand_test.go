package pool

import (
	"context"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/provider/providertest"
)

// state is what the refill policy tests look at after each step.
type state struct {
	ready, target, turns int
	generated            uint64
}

func (h *harness) state() state {
	h.t.Helper()
	st := h.p.Status()
	return state{ready: st.Ready, target: st.Target, turns: st.Turns, generated: st.Counters.Generated}
}

// TestRefillFollowsTurns walks the refill policy on the fake clock: Size
// ready while a turn runs, one for WarmWindow after it completes (made
// again as it expires), then nothing.
func TestRefillFollowsTurns(t *testing.T) {
	cfg := Config{Size: 3, MaxAge: 20 * time.Second, RefreshAhead: -1,
		WarmWindow: 50 * time.Second, BusyWindow: 5 * time.Second, TurnTimeout: time.Hour}
	h := newHarness(t, cfg, nil)
	steps := []struct {
		name string
		do   func()
		want state
	}{
		{"idle", func() {}, state{}},
		{"turn starts: Size ready", h.p.TurnStarted, state{ready: 3, target: 3, turns: 1, generated: 3}},
		{"a request inside the turn is replaced", func() { h.takeReady() }, state{ready: 3, target: 3, turns: 1, generated: 4}},
		{"30 s into the turn, past the busy window: still Size", func() { h.clk.Advance(30 * time.Second) },
			state{ready: 3, target: 3, turns: 1, generated: 7}},
		{"turn completes: the ready tokens stay, none is made", h.p.TurnCompleted, state{ready: 3, target: 1, generated: 7}},
		{"they expire: one is made", func() { h.clk.Advance(20 * time.Second) }, state{ready: 1, target: 1, generated: 8}},
		{"it expires: one more", func() { h.clk.Advance(20 * time.Second) }, state{ready: 1, target: 1, generated: 9}},
		{"past the warm window: nothing", func() { h.clk.Advance(20 * time.Second) }, state{generated: 9}},
		{"an hour later: still nothing", func() { h.clk.Advance(time.Hour) }, state{generated: 9}},
	}
	for _, s := range steps {
		s.do()
		h.settle()
		if got := h.state(); got != s.want {
			t.Fatalf("%s: got %+v, want %+v", s.name, got, s.want)
		}
	}
}

// takeReady takes a ready token and fails the test when none is ready.
func (h *harness) takeReady() {
	h.t.Helper()
	if _, ok := h.p.TryToken(); !ok {
		h.t.Fatal("no token ready")
	}
}

// From a minute of token lifetime on, two tokens are kept between turns.
func TestWarmSizeFollowsMaxAge(t *testing.T) {
	for _, tc := range []struct {
		maxAge time.Duration
		want   int
	}{{20 * time.Second, 1}, {59 * time.Second, 1}, {time.Minute, 2}, {5 * time.Minute, 2}} {
		h := newHarness(t, Config{Size: 3, MaxAge: tc.maxAge, BusyWindow: time.Second}, nil)
		h.p.Warm()
		h.clk.Advance(time.Second)
		if got := h.p.Status().Target; got != tc.want {
			t.Errorf("max age %s: %d kept between turns, want %d", tc.maxAge, got, tc.want)
		}
	}
}

// Requests and warm hints from clients that never signal turns keep Size
// ready for BusyWindow, then one until WarmWindow.
func TestRefillFollowsRequestsAndHints(t *testing.T) {
	cfg := Config{Size: 2, MaxAge: 20 * time.Second, RefreshAhead: -1, WarmWindow: time.Minute, BusyWindow: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		demand func(h *harness)
	}{
		{"warm hint", func(h *harness) { h.p.Warm() }},
		{"request", func(h *harness) {
			if _, err := h.p.Token(context.Background()); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"wait for readiness", func(h *harness) {
			if err := h.p.WaitReady(context.Background()); err != nil {
				h.t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, cfg, nil)
			tc.demand(h)
			h.settle()
			if got := h.state(); got.ready != 2 || got.target != 2 {
				t.Fatalf("after demand: %+v, want 2 ready", got)
			}
			h.clk.Advance(20 * time.Second) // both expire; the busy window is over: one is enough
			h.settle()
			if got := h.state(); got.ready != 1 || got.target != 1 {
				t.Fatalf("after the busy window: %+v, want 1 ready", got)
			}
			h.clk.Advance(40 * time.Second) // the warm window is over
			h.settle()
			if got := h.state(); got.ready != 0 || got.target != 0 {
				t.Fatalf("after the warm window: %+v, want nothing", got)
			}
		})
	}
}

// When the last turn completes, the busy window of the requests inside it
// ends too: no token is made for a turn that is over.
//
// Each step settles before the next, so that the refill a taken token
// asks for (on the pool's own goroutine) never races the step after it.
func TestTurnCompletionEndsBusyWindow(t *testing.T) {
	h := newHarness(t, Config{Size: 2, WarmSize: 1, MaxAge: time.Hour, BusyWindow: time.Minute}, nil)
	h.p.TurnStarted()
	h.settle()
	h.takeReady() // a request inside the turn: its busy window runs a minute
	h.settle()
	if got := h.state(); got.ready != 2 || got.target != 2 || got.generated != 3 {
		t.Fatalf("inside the turn: %+v, want the taken token replaced", got)
	}
	h.p.TurnCompleted()
	h.settle()
	if got := h.state(); got.ready != 2 || got.target != 1 || got.generated != 3 {
		t.Fatalf("after the turn: %+v, want one kept (the busy window is over) and nothing made", got)
	}
}

// A turn that never completes ends after TurnTimeout, and the warm window
// starts then.
func TestTurnTimesOut(t *testing.T) {
	h := newHarness(t, Config{Size: 2, WarmSize: 1, MaxAge: time.Hour, TurnTimeout: time.Minute,
		BusyWindow: time.Second, WarmWindow: 30 * time.Second}, nil)
	turn := h.p.BeginTurn()
	h.settle()
	h.clk.Advance(59 * time.Second)
	h.settle()
	if got := h.state(); got.turns != 1 || got.target != 2 {
		t.Fatalf("before the timeout: %+v", got)
	}
	h.clk.Advance(time.Second)
	h.settle()
	if got := h.state(); got.turns != 0 || got.target != 1 {
		t.Fatalf("at the timeout: %+v, want the turn gone and one kept", got)
	}
	turn.End() // late: harmless
	h.clk.Advance(30 * time.Second)
	h.settle()
	if got := h.state(); got.target != 0 {
		t.Fatalf("after the warm window: %+v", got)
	}
}

// TurnCompleted ends turns begun by TurnStarted, oldest first, ignores
// extra completions, and leaves BeginTurn's turns alone.
func TestTurnCounting(t *testing.T) {
	h := newHarness(t, Config{Size: 2, MaxAge: time.Hour}, nil)
	own := h.p.BeginTurn()
	h.p.TurnStarted()
	h.p.TurnStarted()
	for i, want := range []int{3, 2, 1, 1} {
		if got := h.p.Status().Turns; got != want {
			t.Fatalf("step %d: %d turns, want %d", i, got, want)
		}
		h.p.TurnCompleted()
	}
	own.End()
	own.End()
	if got := h.p.Status().Turns; got != 0 {
		t.Fatalf("%d turns after End, want 0", got)
	}
}

// Tokens due for replacement (RefreshAhead before MaxAge) are replaced
// while tokens are wanted, and still handed out until they expire.
func TestRefreshAhead(t *testing.T) {
	h := newHarness(t, Config{Size: 1, MaxAge: 20 * time.Second, RefreshAhead: 2 * time.Second,
		WarmWindow: time.Hour}, nil)
	h.p.Warm()
	h.settle()
	h.clk.Advance(18 * time.Second)
	h.settle()
	if got := h.state(); got.ready != 2 || got.generated != 2 {
		t.Fatalf("at 18 s: %+v, want the old token and its replacement", got)
	}
	v, err := h.token(canceledCtx())
	if err != nil {
		t.Fatal(err)
	}
	if age := h.clk.Now().Sub(v.GeneratedAt); age != 18*time.Second {
		t.Fatalf("served a token %v old, want the oldest (18s)", age)
	}
}

// A generation in flight when the pool goes cold still lands in the ready
// set, and nothing more is made.
func TestNoRefillWhenCold(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{Size: 2, MaxAge: time.Hour, BusyWindow: time.Second, WarmWindow: time.Second},
		func(n int) providertest.Step {
			if n == 0 {
				return providertest.Step{Release: release}
			}
			return providertest.Step{}
		})
	h.p.Warm()
	<-h.prov.Started
	h.clk.Advance(time.Hour)
	close(release)
	h.settle()
	if got := h.state(); got.ready != 1 || got.generated != 1 || got.target != 0 {
		t.Fatalf("%+v", got)
	}
}
