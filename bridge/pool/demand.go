package pool

import (
	"container/list"
	"context"
	"time"
)

// How many tokens the pool keeps ready follows demand, not a guess:
//
//   - Size while a turn runs (TurnStarted … TurnCompleted, or a Turn from
//     BeginTurn until End), and for BusyWindow after a request or a Warm
//     hint, which stands in for a turn for clients that do not signal
//     turns;
//   - WarmSize (one, two from a 60 s MaxAge) for WarmWindow after the
//     last of these ends: a turn completing, a request, a hint — so the
//     first request of the next turn finds a token even though nothing
//     said a turn was coming;
//   - none after that: an idle helper does not call Apple.
//
// A turn that never completes ends TurnTimeout after it started, so a
// client that vanished cannot keep the pool busy. When the last turn
// completes, the busy window of the requests inside it ends with it: the
// turn said it is over.

// demand is the pool's record of it; guarded by Pool.mu.
type demand struct {
	busyUntil time.Time // Size ready until then
	warmUntil time.Time // one ready until then
	turns     list.List // of *Turn, oldest first
	anonymous []*Turn   // begun by TurnStarted, oldest first
}

// request records a request or a Warm hint.
func (d *demand) request(now time.Time, cfg *Config) {
	d.busyUntil = later(d.busyUntil, now.Add(cfg.BusyWindow))
	d.warmUntil = later(d.warmUntil, now.Add(cfg.WarmWindow))
}

// target returns how many fresh tokens to keep ready now, ending turns
// past TurnTimeout.
func (d *demand) target(now time.Time, cfg *Config) int {
	d.expire(now, cfg)
	switch {
	case d.turns.Len() > 0 || now.Before(d.busyUntil):
		return cfg.Size
	case now.Before(d.warmUntil):
		return cfg.WarmSize
	}
	return 0
}

func (d *demand) expire(now time.Time, cfg *Config) {
	for e := d.turns.Front(); e != nil; e = d.turns.Front() {
		t := e.Value.(*Turn)
		if now.Before(t.started.Add(cfg.TurnTimeout)) {
			return
		}
		d.end(t, t.started.Add(cfg.TurnTimeout), cfg)
	}
}

// end removes t and, when it was the last turn, starts the warm window.
func (d *demand) end(t *Turn, now time.Time, cfg *Config) {
	if t.elem == nil {
		return
	}
	d.turns.Remove(t.elem)
	t.elem = nil
	if d.turns.Len() == 0 {
		d.busyUntil = time.Time{}
		d.warmUntil = later(d.warmUntil, now.Add(cfg.WarmWindow))
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Turn is one running turn of a client, begun with BeginTurn. While any
// turn runs the pool keeps Size tokens ready.
type Turn struct {
	p       *Pool
	started time.Time
	elem    *list.Element // in demand.turns; nil once ended
}

// BeginTurn records that a turn has started and returns it; call End when
// it completes. A turn not ended within TurnTimeout ends by itself.
func (p *Pool) BeginTurn() *Turn {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	t := p.beginTurnLocked(now)
	p.mu.Unlock()
	p.kick()
	return t
}

func (p *Pool) beginTurnLocked(now time.Time) *Turn {
	t := &Turn{p: p, started: now}
	p.demand.expire(now, &p.cfg)
	t.elem = p.demand.turns.PushBack(t)
	p.demand.warmUntil = later(p.demand.warmUntil, now.Add(p.cfg.WarmWindow))
	return t
}

// End records that the turn has completed. It is safe to call more than
// once, and after the turn timed out.
func (t *Turn) End() {
	p := t.p
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	p.demand.end(t, now, &p.cfg)
	p.mu.Unlock()
}

// TurnStarted records that a turn has started, for a caller that sees
// turns begin and end but keeps no handle (the stdio bridge). It never
// blocks.
func (p *Pool) TurnStarted() {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	t := p.beginTurnLocked(now)
	a := p.demand.anonymous
	for len(a) > 0 && a[0].elem == nil { // timed out
		a[0] = nil
		a = a[1:]
	}
	p.demand.anonymous = append(a, t)
	p.mu.Unlock()
	p.kick()
}

// TurnCompleted ends the oldest turn begun by TurnStarted that is still
// running; with none, it does nothing. It never blocks.
func (p *Pool) TurnCompleted() {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.demand.expire(now, &p.cfg)
	a := p.demand.anonymous
	for len(a) > 0 {
		t := a[0]
		a[0] = nil
		a = a[1:]
		if t.elem != nil {
			p.demand.end(t, now, &p.cfg)
			break
		}
	}
	p.demand.anonymous = a
}

// The stdio bridge holds a cold turn and signals turns through these.
var _ interface {
	WaitReady(context.Context) error
	TurnStarted()
	TurnCompleted()
} = (*Pool)(nil)
