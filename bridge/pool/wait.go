package pool

import (
	"container/list"
	"context"
)

// readyWaiters are the WaitReady calls waiting for a ready token; guarded
// by Pool.mu.
type readyWaiters struct {
	l list.List // of chan error, buffered 1
	n int
}

// notify answers every waiting WaitReady call with err (nil: a token is
// ready).
func (r *readyWaiters) notify(err error) {
	for e := r.l.Front(); e != nil; e = r.l.Front() {
		r.l.Remove(e).(chan error) <- err
	}
	r.n = 0
}

// WaitReady warms the pool, as Warm does, and waits until a Token call
// would get a token at once: a ready token with at least ReadyMargin of
// its life left, so it is still fresh when the request that follows the
// wait comes. It never takes a token.
//
// It returns nil once a token is ready, or at once when the provider
// makes its answers on demand (provider.Ahead says none are made ahead);
// at once an error with the
// provider's reason (provider.ReasonOf) when none will come soon, because
// the pool is backing off after a failed generation, a generation fails
// while it waits, or the pool is closed; and ctx's error when ctx ends
// first. While requests wait for tokens, the tokens made go to them, so
// WaitReady may wait longer than one generation.
func (p *Pool) WaitReady(ctx context.Context) error {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.demand.request(now, &p.cfg)
	p.dropExpiredLocked(now)
	if p.freshLocked(now, p.cfg.ReadyMargin) > 0 {
		p.mu.Unlock()
		p.kick() // the busy window may want more
		return nil
	}
	if !p.generating && now.Before(p.retryAt) {
		err := p.backoffErrLocked(now)
		p.mu.Unlock()
		return err
	}
	if p.onDemand() {
		// Each request gets an answer made for it in time: nothing to
		// wait for.
		p.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		return err
	}
	ch := make(chan error, 1)
	e := p.readyWait.l.PushBack(ch)
	p.readyWait.n++
	p.mu.Unlock()
	p.kick()

	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
	}
	p.mu.Lock()
	select {
	case err := <-ch: // answered while we were giving up
		p.mu.Unlock()
		return err
	default:
	}
	p.readyWait.l.Remove(e)
	p.readyWait.n--
	p.mu.Unlock()
	return ctx.Err()
}
