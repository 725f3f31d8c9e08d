// Package inspect is the engine behind "attestd decode" and "attestd
// verify": it reads one attestation header value as a person pastes it,
// shows what is inside as JSON, and checks it the way a server would
// (locally, then with Apple and a replay store when asked), with an
// outcome, an exit status and a hint for every way a check can end.
//
// The reports never hold a token, only its fingerprint (decode shows the
// token itself on purpose: it is the person's own value, printed to their
// terminal, never logged).
package inspect
