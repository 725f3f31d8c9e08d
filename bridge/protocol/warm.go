package protocol

import "time"

// attestation/warm takes optional params that make it more than a hint:
//
//	{"turn":"started"}                 a turn began on this connection:
//	                                   the pool keeps more tokens ready
//	{"turn":"completed"}               this connection's oldest turn ended
//	{"wait":true,"timeoutMs":N}        answer only once a token is ready, or
//	                                   after N ms (default 1000, at most
//	                                   10000): {"ready":true|false,"waitedMs":M}
//
// The two combine ({"turn":"started","wait":true}). Turns belong to the
// connection: they end when it closes, and one never completed ends
// after the pool's turn timeout. A connection holds a bounded number of
// turns (server.MaxTurns); another "started" ends its oldest. In a
// notification, "wait" is ignored. A provider failing or backing off
// answers a wait at once with the attestation error (-32000,
// data.reason), as attestation/generate would.

// Bounds of the wait in attestation/warm.
const (
	// DefaultWaitTimeout is the wait when timeoutMs is absent.
	DefaultWaitTimeout = time.Second
	// MaxWaitTimeout is the longest timeoutMs accepted.
	MaxWaitTimeout = 10 * time.Second
)

// Turn values of attestation/warm.
const (
	// TurnStarted says a turn began on the connection.
	TurnStarted = "started"
	// TurnCompleted says the connection's oldest turn ended.
	TurnCompleted = "completed"
)

// WarmParams are the params of attestation/warm; every member is optional.
type WarmParams struct {
	// Wait asks for an answer only once a token is ready, or once
	// TimeoutMs has passed.
	Wait bool `json:"wait,omitempty"`
	// TimeoutMs bounds the wait, in milliseconds, from 0 to
	// MaxWaitTimeout; absent means DefaultWaitTimeout.
	TimeoutMs *int64 `json:"timeoutMs,omitempty"`
	// Turn is TurnStarted, TurnCompleted or empty.
	Turn string `json:"turn,omitempty"`
}

// WarmResult is the result of attestation/warm: empty without "wait";
// with it, whether a token is ready (false: the timeout passed first) and
// how long the call waited.
type WarmResult struct {
	// Ready reports whether a token is ready; nil without "wait".
	Ready *bool `json:"ready,omitempty"`
	// WaitedMs is how long the call waited, in milliseconds; nil without
	// "wait".
	WaitedMs *int64 `json:"waitedMs,omitempty"`
}
