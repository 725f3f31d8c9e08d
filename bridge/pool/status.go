package pool

import (
	"maps"

	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// Status returns a snapshot of the pool's state and counters.
func (p *Pool) Status() protocol.PoolStatus {
	var aa *protocol.AppAttestStatus
	if r, ok := p.cfg.Provider.(provider.AppAttestReporter); ok {
		st := r.AppAttestStatus()
		aa = &st
	}
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropExpiredLocked(now)
	s := protocol.PoolStatus{
		Provider:            p.cfg.Provider.Name(),
		Ready:               len(p.ready),
		Capacity:            p.cfg.Size,
		Target:              p.targetLocked(now),
		MaxAge:              p.cfg.MaxAge.String(),
		Generating:          p.generating,
		Warm:                p.demand.target(now, &p.cfg) > 0,
		Turns:               p.demand.turns.Len(),
		Waiting:             p.queues.n,
		WaitingReady:        p.readyWait.n,
		ConsecutiveFailures: p.failures,
		Counters:            p.counters,
		LastKind:            p.lastKind,
		AppAttest:           aa,
	}
	if len(p.servedKind) > 0 {
		s.ServedByKind = maps.Clone(p.servedKind)
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
