// Package probetest provides a clock for tests of the probe: it moves
// only when the probe sleeps, so an hour of token ages passes at once,
// and every latency and measured age comes out exact.
package probetest

import (
	"context"
	"sync"
	"time"
)

// StepClock is a probe.Clock that stands still until Sleep moves it. It
// is safe for concurrent use: a fake Apple may read it too.
type StepClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

// NewStepClock returns a clock that starts at the real time.
func NewStepClock() *StepClock { return &StepClock{now: time.Now()} }

// Now returns the clock's time.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep moves the clock by d (nothing for d <= 0) at once, or returns
// ctx's error if ctx has ended.
func (c *StepClock) Sleep(ctx context.Context, d time.Duration) error {
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

// Slept returns how far Sleep has moved the clock in all.
func (c *StepClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}
