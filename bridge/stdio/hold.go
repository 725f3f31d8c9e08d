package stdio

import (
	"context"
	"slices"
	"time"

	"github.com/attestd/attestd/bridge/internal/jsonscan"
)

// DefaultHold bounds how long a line is held for a token when Bridge.Hold
// is zero. The bound covers nearly all of DeviceCheck's latencies as the
// pool's simulation (bridge/pool/poolsim) draws them: a shorter bound
// serves fewer requests in time for little less hold, a longer one adds
// little but lengthens the worst case ("go run ./test/bench -only holds"
// measures each bound; BENCHMARKS.md says how). Past the bound the line
// goes on without a token.
const DefaultHold = time.Second

// ReadyWaiter is a Source that can say when a token is ready.
type ReadyWaiter interface {
	// WaitReady warms the source and returns nil as soon as Token would
	// return a token at once, an error at once when none will come soon
	// (the provider is failing or backing off), or ctx's error.
	WaitReady(ctx context.Context) error
}

// TurnTracker is a Source that adapts its refill to turns; calls must not
// block.
type TurnTracker interface {
	// TurnStarted says that the app-server has started a turn.
	TurnStarted()
	// TurnCompleted says that a turn TurnStarted reported has ended.
	TurnCompleted()
}

// hold runs when the client sends a call that leads to token requests
// (method is one of WarmMethods other than initialize). For one of
// HoldMethods, with a Source that is a ReadyWaiter, it waits until a
// token is ready, the Source says none will come soon, Bridge.Hold
// passes, or the session ends; the line, and every line behind it, waits
// meanwhile. Otherwise it only warms the Source.
func (s *session) hold(method string) {
	rw, ok := s.b.Source.(ReadyWaiter)
	bound := s.b.hold()
	if !ok || bound <= 0 || !slices.Contains(HoldMethods, method) {
		s.b.Source.Warm()
		return
	}
	// The lines before this one may still be in the buffer to the child,
	// left for this line to flush: they are not held, so they go now.
	s.flushToChild()
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, bound)
	err := rw.WaitReady(ctx)
	timedOut := ctx.Err() != nil
	cancel()
	held := time.Since(start)
	switch {
	case err == nil:
		s.log.Debug("held until a token was ready", "method", method, "held", held)
	case timedOut && s.ctx.Err() == nil:
		s.log.Info("held for the whole bound; passing it on without a ready token", "method", method, "held", held, "bound", bound)
	case timedOut:
		s.log.Debug("hold ended with the session", "method", method, "held", held)
	default:
		s.log.Debug("not held: the token source will not have a token soon", "method", method, "held", held, "err", err)
	}
}

// flushToChild passes on what is buffered for the child. It runs between
// client lines, never in the middle of one.
func (s *session) flushToChild() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inClosed || s.toChild.Buffered() == 0 {
		return
	}
	if err := s.toChild.Flush(); err != nil {
		s.log.Debug("flush to child", "err", err)
	}
}

// trackTurn tells a TurnTracker Source about a turn/started or
// turn/completed notification from the child, once per turn id, so that
// a repeated notification or one for an unknown turn does not unbalance
// its count. line is the whole notification when whole is set, else its
// first MaxInspect bytes, from which the id is read where first found.
func (s *session) trackTurn(method string, line []byte, whole bool) {
	tt, ok := s.b.Source.(TurnTracker)
	if !ok {
		return
	}
	id, ok := turnID(line, whole)
	if !ok {
		s.log.Debug("turn notification without a turn id", "method", method)
		return
	}
	if s.turns == nil {
		s.turns = make(map[string]bool)
	}
	switch {
	case method == methodTurnStarted && !s.turns[id]:
		if len(s.turns) >= maxOpenTurns {
			s.log.Warn("too many turns open at once; not tracking another", "open", len(s.turns))
			return
		}
		s.turns[id] = true
		tt.TurnStarted()
	case method == methodTurnCompleted && s.turns[id]:
		delete(s.turns, id)
		tt.TurnCompleted()
	}
}

// completeTurns completes, for a TurnTracker Source, every turn still
// open once the child's output has ended.
func (s *session) completeTurns() {
	tt, ok := s.b.Source.(TurnTracker)
	if !ok {
		return
	}
	for id := range s.turns {
		delete(s.turns, id)
		tt.TurnCompleted()
	}
}

// turnID returns params.turn.id of a turn notification. A whole line is
// read by the rules of jsonrpc.Decode and of the serde_json Value that
// params is to the app-server (the last of repeated keys); the start of a
// longer one is read where the id is first found.
func turnID(line []byte, whole bool) (string, bool) {
	var raw []byte
	if whole {
		req := request(line)
		if req == nil || req.Params == nil {
			return "", false
		}
		turn := lastMember(req.Params, "turn")
		if turn == nil {
			return "", false
		}
		raw = lastMember(turn, "id")
	} else {
		raw, _ = lookup(line, false, "params", "turn", "id")
	}
	if raw == nil {
		return "", false
	}
	id, err := jsonscan.String(raw)
	return id, err == nil && id != ""
}
