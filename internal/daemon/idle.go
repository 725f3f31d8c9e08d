package daemon

import (
	"context"
	"time"
)

// DefaultExitIdle is how long a daemon started by launchd stays after it
// has become idle: its warm window over and no connection open. A
// restart costs one exec and start-up, a few milliseconds (BENCHMARKS.md,
// "Restart after an idle exit", has the figure), and once the warm window is over the
// pool stops refilling and its last tokens expire within the maximum age,
// so a request after an idle minute is cold with or without a restart. A
// minute is also well above launchd's 10 s ThrottleInterval, so the
// restart is immediate.
const DefaultExitIdle = time.Minute

// idleTimer decides when a daemon has been idle long enough to exit.
type idleTimer struct {
	after     time.Duration
	idleSince time.Time // zero while busy
}

// observe records whether the daemon is busy at now and reports whether it
// has been idle, at every observation, for at least after.
func (t *idleTimer) observe(now time.Time, busy bool) bool {
	if busy {
		t.idleSince = time.Time{}
		return false
	}
	if t.idleSince.IsZero() {
		t.idleSince = now
	}
	return now.Sub(t.idleSince) >= t.after
}

// idleCheckEvery is how often the daemon looks whether it is idle: a
// quarter of the idle time, between 10 ms and 15 s.
func idleCheckEvery(after time.Duration) time.Duration {
	return min(max(after/4, 10*time.Millisecond), 15*time.Second)
}

// watchIdle returns a channel that is closed once busy has reported false
// at every check for at least after, or never if ctx ends first.
func watchIdle(ctx context.Context, after time.Duration, busy func() bool) <-chan struct{} {
	idle := make(chan struct{})
	go func() {
		t := idleTimer{after: after}
		tick := time.NewTicker(idleCheckEvery(after))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if t.observe(now, busy()) {
					close(idle)
					return
				}
			}
		}
	}()
	return idle
}
