package pool

import (
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// Status returns a snapshot of the pool's state and counters.
func (p *Pool) Status() protocol.PoolStatus {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropExpiredLocked(now)
	target := p.demand.target(now, &p.cfg)
	s := protocol.PoolStatus{
		Provider:            p.cfg.Provider.Kind(),
		Ready:               len(p.ready),
		Capacity:            p.cfg.Size,
		Target:              target,
		MaxAge:              p.cfg.MaxAge.String(),
		Generating:          p.generating,
		Warm:                target > 0,
		Turns:               p.demand.turns.Len(),
		Waiting:             p.queues.n,
		WaitingReady:        p.readyWait.n,
		ConsecutiveFailures: p.failures,
		Counters:            p.counters,
	}
	if s.Warm && s.Turns == 0 {
		t := p.demand.warmUntil
		s.WarmUntil = &t
	}
	if now.Before(p.retryAt) {
		t := p.retryAt
		s.RetryAt = &t
	}
	if p.lastErr != nil {
		s.LastError = &protocol.PoolFailure{Reason: provider.ReasonOf(p.lastErr), Message: p.lastErr.Error(), At: p.lastErrAt}
		if code, ok := provider.DCErrorCodeOf(p.lastErr); ok {
			s.LastError.DCErrorCode = &code
		}
	}
	return s
}
