package protocol

import "time"

// StatusResult is the result of attestation/status: what doctor and
// monitoring read.
type StatusResult struct {
	// Version is the daemon's build version.
	Version string `json:"version"`
	// Provider is the kind of tokens served: "devicecheck" or "dev".
	Provider string `json:"provider"`
	// Pool is the token pool's state.
	Pool PoolStatus `json:"pool"`
	// Server counts the server's connections and requests.
	Server ServerStats `json:"server"`
}

// ServerStats counts connections and requests since start.
type ServerStats struct {
	// Uptime is the time since the server started, rounded to the second.
	Uptime string `json:"uptime"`
	// ActiveConnections counts the connections open now.
	ActiveConnections int64 `json:"activeConnections"`
	// Accepted counts the connections served.
	Accepted int64 `json:"accepted"`
	// Refused counts the connections refused (peer check, or at the cap
	// with none idle).
	Refused int64 `json:"refused"`
	// Evicted counts the idle connections closed to make room.
	Evicted int64 `json:"evicted"`
	// Requests counts the requests read.
	Requests int64 `json:"requests"`
	// TokensServed counts the tokens handed out.
	TokensServed int64 `json:"tokensServed"`
	// Errors counts the requests answered with an error.
	Errors int64 `json:"errors"`
}

// PoolStatus is a snapshot of the token pool, which fills it.
type PoolStatus struct {
	// Provider is the kind of tokens the pool's provider makes.
	Provider string `json:"provider"`
	// Ready counts the tokens ready to hand out.
	Ready int `json:"ready"`
	// Capacity is the most tokens the pool keeps ready.
	Capacity int `json:"capacity"`
	// Target is how many ready tokens the pool keeps now: Capacity while
	// busy (a turn runs, or just after a request or hint), the warm size
	// (one, two from a 60 s max age) while warm, else 0.
	Target int `json:"target"`
	// MaxAge is the age at which a ready token is dropped unused.
	MaxAge string `json:"maxAge"`
	// Generating reports whether a generation is in flight.
	Generating bool `json:"generating"`
	// Warm reports whether the pool keeps tokens ready now (Target > 0).
	Warm bool `json:"warm"`
	// WarmUntil is when the pool stops keeping tokens ready, when it is
	// warm with no turn running.
	WarmUntil *time.Time `json:"warmUntil,omitempty"`
	// Turns counts the turns running.
	Turns int `json:"turns"`
	// Waiting counts the requests waiting for a token.
	Waiting int `json:"waiting"`
	// WaitingReady counts the waits for readiness (attestation/warm with
	// wait) in progress.
	WaitingReady int `json:"waitingReady"`
	// ConsecutiveFailures counts the generations failed since the last
	// success.
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// RetryAt is when the pool tries again, while it backs off.
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// Counters count what the pool has done since it started.
	Counters PoolCounters `json:"counters"`
	// LastError describes the last failed generation, if any.
	LastError *PoolFailure `json:"lastError,omitempty"`
}

// PoolCounters count what the pool has done since it started.
type PoolCounters struct {
	// Requests counts the requests for a token.
	Requests uint64 `json:"requests"`
	// Served counts the tokens handed out.
	Served uint64 `json:"served"`
	// Generated counts the tokens the provider made.
	Generated uint64 `json:"generated"`
	// GenerateFailures counts the failed provider calls.
	GenerateFailures uint64 `json:"generateFailures"`
	// Expired counts the ready tokens dropped unused for age.
	Expired uint64 `json:"expired"`
	// Timeouts counts the requests whose context ended first.
	Timeouts uint64 `json:"timeouts"`
	// Errors counts the requests failed by a generation error or backoff.
	Errors uint64 `json:"errors"`
}

// PoolFailure describes the pool's last failed generation.
type PoolFailure struct {
	// Reason is the failure's machine-readable class, as in ErrorData.
	Reason string `json:"reason"`
	// Message is the error's text.
	Message string `json:"message"`
	// DCErrorCode is Apple's DCError code, when Apple gave one.
	DCErrorCode *int `json:"dcErrorCode,omitempty"`
	// At is when the generation failed.
	At time.Time `json:"at"`
}
