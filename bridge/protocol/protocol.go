package protocol

import "time"

// Version is the protocol version initialize reports.
const Version = 1

// Methods served on the socket.
const (
	// MethodGenerate asks for one header value; params are ignored and
	// the result is a GenerateResult. It is also the method the
	// app-server sends its client, so the stdio bridge answers it too.
	MethodGenerate = "attestation/generate"
	// MethodInitialize names the client (optional, never required before
	// other calls); the result is an InitializeResult.
	MethodInitialize = "initialize"
	// MethodStatus asks for a StatusResult.
	MethodStatus = "attestation/status"
	// MethodWarm hints that tokens are needed soon, and with WarmParams
	// signals turns and waits for a ready token; the result is a
	// WarmResult.
	MethodWarm = "attestation/warm"
)

// GenerateDeadline is how long an answer to attestation/generate may
// take. codex app-server gives up after about 100 ms and then drops the
// answer, recording a timeout; an error sent before that is recorded as a
// client error, which tells the backend more.
const GenerateDeadline = 80 * time.Millisecond

// GenerateResult is the result of attestation/generate, the same shape as
// the app-server's AttestationGenerateResponse, so a client can forward it
// verbatim.
type GenerateResult struct {
	// Token is one "v1." header value.
	Token string `json:"token"`
}

// InitializeResult is the result of initialize.
type InitializeResult struct {
	// ServerInfo names the daemon and its version.
	ServerInfo ServerInfo `json:"serverInfo"`
	// Provider is the kind of tokens served: "devicecheck" or "dev".
	Provider string `json:"provider"`
	// ProtocolVersion is Version.
	ProtocolVersion int `json:"protocolVersion"`
}

// ServerInfo names the server.
type ServerInfo struct {
	// Name is "attestd".
	Name string `json:"name"`
	// Version is the daemon's build version.
	Version string `json:"version"`
}

// ErrorData is the data member of an error the daemon sends: always for
// an attestation failure (code -32000), and for a connection it refuses.
type ErrorData struct {
	// Reason is the machine-readable failure class (see provider's
	// Reason constants), or the reason a connection was refused.
	Reason string `json:"reason"`
	// DCErrorCode is Apple's DCError code, when Apple gave one.
	DCErrorCode *int `json:"dcErrorCode,omitempty"`
	// Hint says what a person can do about the failure, when there is
	// advice to give.
	Hint string `json:"hint,omitempty"`
}
