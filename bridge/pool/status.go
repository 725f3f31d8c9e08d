package pool

import (
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// Counters count what the pool has done since it started.
type Counters struct {
	Requests         uint64 `json:"requests"`         // calls to Token
	Served           uint64 `json:"served"`           // tokens handed out
	Generated        uint64 `json:"generated"`        // tokens made by the provider
	GenerateFailures uint64 `json:"generateFailures"` // failed provider calls
	Expired          uint64 `json:"expired"`          // ready tokens dropped unused for age
	Timeouts         uint64 `json:"timeouts"`         // requests whose context ended first
	Errors           uint64 `json:"errors"`           // requests failed by a generation error or backoff
}

// ErrorInfo describes the last failed generation.
type ErrorInfo struct {
	Reason      string    `json:"reason"`
	Message     string    `json:"message"`
	DCErrorCode *int      `json:"dcErrorCode,omitempty"`
	At          time.Time `json:"at"`
}

// Status is a snapshot of the pool for attestation/status.
type Status struct {
	Provider string `json:"provider"`
	Ready    int    `json:"ready"`
	Capacity int    `json:"capacity"`
	// Target is how many ready tokens the pool keeps now: Capacity while
	// busy (a turn runs, or just after a request or hint), the warm size
	// (one, two from a 60 s MaxAge) while warm, else 0.
	Target     int        `json:"target"`
	MaxAge     string     `json:"maxAge"`
	Generating bool       `json:"generating"`
	Warm       bool       `json:"warm"`
	WarmUntil  *time.Time `json:"warmUntil,omitempty"`
	// Turns counts the turns running (see BeginTurn).
	Turns   int `json:"turns"`
	Waiting int `json:"waiting"`
	// WaitingReady counts WaitReady calls waiting.
	WaitingReady        int        `json:"waitingReady"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	RetryAt             *time.Time `json:"retryAt,omitempty"`
	Counters            Counters   `json:"counters"`
	LastError           *ErrorInfo `json:"lastError,omitempty"`
}

// Status returns a snapshot of the pool's state and counters.
func (p *Pool) Status() Status {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropExpiredLocked(now)
	target := p.demand.target(now, &p.cfg)
	s := Status{
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
		s.LastError = &ErrorInfo{Reason: provider.ReasonOf(p.lastErr), Message: p.lastErr.Error(), At: p.lastErrAt}
		if code, ok := provider.DCErrorCodeOf(p.lastErr); ok {
			s.LastError.DCErrorCode = &code
		}
	}
	return s
}
