// Package appattest is the helper's App Attest provider: a key made once
// and registered with a server in the background, then an assertion of
// that key for every request, with a fallback provider (DeviceCheck)
// answering whenever no registered key can. It is portable: App Attest
// itself (darwin.AppAttestService, or the simulator) and the key id's
// store (darwin's Keychain item) come in through the Service and KeyStore
// interfaces, so the whole flow is tested on any OS.
//
// # The background work
//
// Start runs it; nothing in a request's path waits for it. Each round:
//
//   - starts the service once (darwin.NewAppAttest, which checks the GUI
//     session and isSupported); a start refused with reason unsupported
//     is final, any other failure is retried; a start that has not
//     returned after CallTimeout fails the round and is waited for again
//     (never begun twice), so it holds up neither requests nor Close;
//   - reads the key id from the store once; none (or a value that is not
//     a key id) makes a new key, whose id is stored at once (a store that
//     refuses it is tried again every round; the key works meanwhile);
//   - asks the server about a key it did not just register (at start,
//     every CheckEvery, ±10%, and when an assertion failed): active keeps
//     it, unknown (404: a server that lost its store) registers the same
//     key again, revoked makes a new key;
//   - registers a key: POST {server}/appattest/challenge, AttestKey with
//     clientDataHash = SHA-256 of the challenge's bytes, POST
//     {server}/appattest/register.
//
// A failed round waits BackoffMin·2ⁿ⁻¹ (capped at BackoffMax), with equal
// jitter, or the server's Retry-After when longer. App Attest's invalidKey
// (from attestKey or an assertion) makes a new key; serverUnavailable and
// timeouts retry the same key; any other attestKey refusal makes a new key
// next round, since Apple attests a key again only until its first
// assertion.
//
// # Requests
//
// While the key is registered, Generate makes an assertion for the
// request: a fresh 16-byte nonce, g the current time to the millisecond,
// and GenerateAssertion(key id, SHA-256("attestd-aa-v1" ‖ key id ‖ g ‖
// nonce)), bounded by AssertTimeout. The answer carries the key id and
// nonce (header kind "aa"). Before that, while a round fails, and for a
// request whose assertion failed, the fallback answers (kind "dc"; the
// simulator's fallback: "dev"). A failed assertion makes the following
// requests use the fallback for a backoff and has the key checked; an
// invalid key is replaced.
//
// By default assertions are made on demand (they take milliseconds, in
// the Secure Enclave, without the network); Config.Ready keeps that many
// made ahead through the pool (provider.Ahead), for a Mac where
// attestd probe shows them too slow. The fallback's tokens are made ahead
// as the pool always does.
//
// The key id is not a secret (a hash of the public key): logs carry its
// fingerprint; assertions are logged by the pool as fingerprints only.
package appattest
