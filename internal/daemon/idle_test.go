package daemon

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestIdleTimer(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type obs struct {
		ms   int
		busy bool
		exit bool
	}
	for _, tc := range []struct {
		name string
		obs  []obs
	}{
		{"idle from the start", []obs{{0, false, false}, {50, false, false}, {100, false, true}}},
		{"busy resets the count", []obs{{0, false, false}, {90, true, false}, {150, false, false}, {249, false, false}, {250, false, true}}},
		{"always busy", []obs{{0, true, false}, {1000, true, false}, {5000, true, false}}},
		{"one idle look is not enough", []obs{{0, true, false}, {500, false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			it := idleTimer{after: 100 * time.Millisecond}
			for _, o := range tc.obs {
				if got := it.observe(at(o.ms), o.busy); got != o.exit {
					t.Fatalf("at %d ms (busy %v): exit %v, want %v", o.ms, o.busy, got, o.exit)
				}
			}
		})
	}
	if d := idleCheckEvery(time.Minute); d != 15*time.Second {
		t.Errorf("check every %v for a minute", d)
	}
	if d := idleCheckEvery(time.Millisecond); d != 10*time.Millisecond {
		t.Errorf("check every %v for a millisecond", d)
	}
}

func TestWatchIdle(t *testing.T) {
	t.Parallel()
	var busy atomic.Bool
	busy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := watchIdle(ctx, 20*time.Millisecond, busy.Load)
	select {
	case <-idle:
		t.Fatal("idle while busy")
	case <-time.After(100 * time.Millisecond): // an absence: a slow machine cannot fail this
	}
	busy.Store(false)
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		t.Fatal("not idle 10 s after the last busy check")
	}

	stopped, stop := context.WithCancel(context.Background())
	never := watchIdle(stopped, time.Hour, busy.Load)
	stop()
	select {
	case <-never:
		t.Fatal("a watch whose context ended reported idle")
	default:
	}
}
