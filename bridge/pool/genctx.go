package pool

import (
	"context"
	"sync"
	"time"
)

// genCtx is the context of one provider call: done when the pool closes
// (parent) or GenerateTimeout after the call began. It is
// context.WithTimeout(parent, …) made lazily: its channel, timer and
// link to the parent exist only once the provider asks for Done. A
// provider that answers at once (the development provider, which only
// checks Err) then costs no timer and no registration with the parent,
// which was a tenth of the daemon's work per request on the hot path.
type genCtx struct {
	parent   context.Context
	deadline time.Time

	mu   sync.Mutex
	done chan struct{} // nil until Done is first called
	err  error
	stop func() // releases the timer and the watch on the parent
}

func newGenCtx(parent context.Context, timeout time.Duration) *genCtx {
	return &genCtx{parent: parent, deadline: time.Now().Add(timeout)}
}

// Deadline returns when the call times out.
func (c *genCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Value returns nil: the pool passes no values to providers.
func (c *genCtx) Value(any) any { return nil }

// Done returns a channel closed when the pool closes, the call times out
// or it has returned; the first call starts watching the first two.
func (c *genCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
			return c.done
		}
		t := time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
		stopParent := context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
		c.stop = func() { t.Stop(); stopParent() }
	}
	return c.done
}

// Err reports why the context is done, or nil. A reason it finds first
// (the pool closed, the deadline passed) is kept.
func (c *genCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	switch {
	case err != nil:
		return err
	case c.parent.Err() != nil:
		err = c.parent.Err()
	case !time.Now().Before(c.deadline):
		err = context.DeadlineExceeded
	default:
		return nil
	}
	c.end(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// end marks the context done with err, once, and releases its watchers.
func (c *genCtx) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	stop := c.stop
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// cancel ends the context once the call has returned, as the cancel func
// of context.WithTimeout does; a reason it already had is kept.
func (c *genCtx) cancel() { c.end(context.Canceled) }

var _ context.Context = (*genCtx)(nil)
