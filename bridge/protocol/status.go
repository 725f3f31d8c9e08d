package protocol

import "time"

// StatusResult is the result of attestation/status: what doctor and
// monitoring read.
type StatusResult struct {
	// Version is the daemon's build version.
	Version string `json:"version"`
	// Provider names the provider: the kind of the tokens it serves
	// ("dc", "dev"), or "appattest" / "appattest-sim", whose answers are
	// App Attest assertions ("aa") once its key is registered and
	// DeviceCheck (or, simulated, dev) tokens until then.
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
	// Provider names the pool's provider, as StatusResult.Provider.
	Provider string `json:"provider"`
	// Ready counts the tokens ready to hand out.
	Ready int `json:"ready"`
	// Capacity is the most tokens the pool keeps ready.
	Capacity int `json:"capacity"`
	// Target is how many ready tokens the pool keeps now: Capacity while
	// busy (a turn runs, or just after a request or hint), the warm size
	// (one, two from a 60 s max age) while warm, else 0; fewer for a
	// provider that makes its answers on demand (App Attest keeps
	// --appattest-ready assertions ahead, by default none).
	Target int `json:"target"`
	// MaxAge is the age at which a ready token is dropped unused.
	MaxAge string `json:"maxAge"`
	// Generating reports whether a generation is in flight.
	Generating bool `json:"generating"`
	// Warm reports whether demand keeps the pool busy or warm now (Target
	// > 0, but for a provider that answers on demand).
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
	// LastKind is the header kind of the last value handed out ("aa",
	// "dc", "dev"); absent before the first.
	LastKind string `json:"lastKind,omitempty"`
	// ServedByKind counts the values handed out, per header kind; absent
	// before the first.
	ServedByKind map[string]uint64 `json:"servedByKind,omitempty"`
	// AppAttest is the App Attest provider's state; absent for the other
	// providers.
	AppAttest *AppAttestStatus `json:"appAttest,omitempty"`
}

// AppAttestStatus is the state of the App Attest provider: its key, its
// registration, and why it answers with DeviceCheck tokens meanwhile.
type AppAttestStatus struct {
	// State is one of the AppAttest… constants.
	State string `json:"state"`
	// Registered reports whether the key is registered with the server,
	// so that requests get App Attest assertions.
	Registered bool `json:"registered"`
	// KeyID is the key's id as App Attest gives it (standard base64 of
	// 32 bytes; a hash of the public key, no secret); absent before a key
	// is known.
	KeyID string `json:"keyId,omitempty"`
	// Environment is the registration server's word on the key
	// ("development" or "production"), once registered.
	Environment string `json:"environment,omitempty"`
	// Server is the registration base URL (--appattest-register).
	Server string `json:"server"`
	// Ahead is how many assertions are kept made ahead (--appattest-ready);
	// 0 makes each one when a request asks.
	Ahead int `json:"ahead"`
	// Fallback names the provider that answers until the key is
	// registered ("dc", or "dev" for the simulator).
	Fallback string `json:"fallback"`
	// Counters count what the provider has done since it started.
	Counters AppAttestCounters `json:"counters"`
	// LastCheck is when the server last answered about the key, and
	// NextAttempt when the provider next asks (a retry after a failure,
	// or the periodic check).
	LastCheck   *time.Time `json:"lastCheck,omitempty"`
	NextAttempt *time.Time `json:"nextAttempt,omitempty"`
	// LastError is the last failure of the background work (start,
	// Keychain, key, registration) or of an assertion.
	LastError *PoolFailure `json:"lastError,omitempty"`
}

// The states of AppAttestStatus.
const (
	// AppAttestStarting: the service, the key or its status is not known
	// yet.
	AppAttestStarting = "starting"
	// AppAttestRegistering: a key exists and is being registered.
	AppAttestRegistering = "registering"
	// AppAttestRegistered: the key is registered; requests get
	// assertions.
	AppAttestRegistered = "registered"
	// AppAttestFailing: the last attempt failed; another follows after a
	// backoff.
	AppAttestFailing = "failing"
	// AppAttestUnsupported: App Attest cannot work here (isSupported is
	// false, or another OS); the fallback answers for good.
	AppAttestUnsupported = "unsupported"
)

// AppAttestCounters count what the App Attest provider has done.
type AppAttestCounters struct {
	// KeysMade counts the keys generated.
	KeysMade uint64 `json:"keysMade"`
	// Registrations counts the keys registered.
	Registrations uint64 `json:"registrations"`
	// Checks counts the answers of the key-status endpoint.
	Checks uint64 `json:"checks"`
	// Assertions counts the assertions made, and AssertionFailures the
	// assertions that failed (their requests got the fallback's answer).
	Assertions        uint64 `json:"assertions"`
	AssertionFailures uint64 `json:"assertionFailures"`
	// Fallbacks counts the answers the fallback made.
	Fallbacks uint64 `json:"fallbacks"`
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
