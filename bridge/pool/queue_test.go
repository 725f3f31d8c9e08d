package pool

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
)

// gatedProvider makes one token per value sent on gate.
func gatedProvider(gate <-chan struct{}) func(int) providertest.Step {
	return func(int) providertest.Step { return providertest.Step{Release: gate} }
}

type answer struct {
	who string
	err error
}

// Tokens go round robin across queues, oldest first within each: a queue
// with many waiters gets one token in every k, k the queues waiting.
func TestWaitersServedRoundRobin(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, Config{Size: 1, MaxAge: time.Hour}, gatedProvider(gate))
	var flood, other Queue
	answers := make(chan answer, 10)
	ask := func(q *Queue, who string, waiting int) {
		go func() {
			_, err := h.p.TokenIn(context.Background(), q)
			answers <- answer{who, err}
		}()
		poll.Until(t, "requests to wait", func() bool { return h.p.Status().Waiting == waiting })
	}
	for i := range 6 {
		ask(&flood, fmt.Sprintf("flood-%d", i), i+1)
	}
	ask(&other, "other-0", 7)
	ask(&other, "other-1", 8)
	ask(nil, "shared-0", 9)

	want := []string{"flood-0", "other-0", "shared-0", "flood-1", "other-1", "flood-2", "flood-3", "flood-4", "flood-5"}
	for i, w := range want {
		gate <- struct{}{}
		a := <-answers
		if a.err != nil || a.who != w {
			t.Fatalf("token %d went to %s (%v), want %s", i, a.who, a.err, w)
		}
	}
}

// At MaxWaiters, a newcomer from a short queue makes room by failing the
// newest waiter of the longest queue; one from the longest queue is
// refused.
func TestOverloadFallsOnTheLongestQueue(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, Config{Size: 1, MaxAge: time.Hour, MaxWaiters: 4}, gatedProvider(gate))
	var flood, other Queue
	answers := make(chan answer, 10)
	for i := range 4 {
		go func() {
			_, err := h.p.TokenIn(context.Background(), &flood)
			answers <- answer{fmt.Sprintf("flood-%d", i), err}
		}()
		poll.Until(t, "requests to wait", func() bool { return h.p.Status().Waiting == i+1 })
	}
	if _, err := h.p.TokenIn(context.Background(), &flood); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("fifth from the full queue: %v, want ErrOverloaded", err)
	}
	go func() {
		_, err := h.p.TokenIn(context.Background(), &other)
		answers <- answer{"other", err}
	}()
	a := <-answers // the flood's newest makes room
	if a.who != "flood-3" || !errors.Is(a.err, ErrOverloaded) || provider.ReasonOf(a.err) != provider.ReasonOverloaded {
		t.Fatalf("evicted %s (%v), want flood-3 overloaded", a.who, a.err)
	}
	poll.Until(t, "requests to wait", func() bool { return h.p.Status().Waiting == 4 })
	for _, w := range []string{"flood-0", "other", "flood-1", "flood-2"} {
		gate <- struct{}{}
		if a := <-answers; a.who != w || a.err != nil {
			t.Fatalf("token went to %s (%v), want %s", a.who, a.err, w)
		}
	}
}

// A waiter that gives up leaves its queue, and an emptied queue leaves
// the rotation.
func TestGivingUpLeavesTheQueue(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, Config{Size: 1, MaxAge: time.Hour}, gatedProvider(gate))
	var a, b Queue
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := h.p.TokenIn(ctx, &a); gaveUp <- err }()
	poll.Until(t, "requests to wait", func() bool { return h.p.Status().Waiting == 1 })
	got := make(chan error, 1)
	go func() { _, err := h.p.TokenIn(context.Background(), &b); got <- err }()
	poll.Until(t, "requests to wait", func() bool { return h.p.Status().Waiting == 2 })
	cancel()
	if err := <-gaveUp; provider.ReasonOf(err) != provider.ReasonTimeout {
		t.Fatalf("gave up with %v", err)
	}
	gate <- struct{}{}
	if err := <-got; err != nil {
		t.Fatalf("b: %v", err)
	}
	if st := h.p.Status(); st.Waiting != 0 || st.Counters.Timeouts != 1 {
		t.Fatalf("%+v", st)
	}
}
