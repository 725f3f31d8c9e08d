// Package verify checks attestd attestations on the server that receives
// them: it parses the x-oai-attestation header and asks Apple's DeviceCheck
// server API whether the token is genuine.
//
// A request from codex app-server carries
//
//	x-oai-attestation: {"v":1,"s":0,"t":"v1.…"}
//
// (or, from other clients, the bare "v1." value). To check it, create one
// Client with your DeviceCheck key and one Verifier, then wrap your handler:
//
//	key, err := verify.LoadPrivateKey("AuthKey_ABC123DEFG.p8")
//	if err != nil { … }
//	apple, err := verify.NewClient(verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key})
//	if err != nil { … }
//	v := &verify.Verifier{Client: apple}
//	http.Handle("/api/", verify.Middleware(api, verify.MiddlewareOptions{Verifier: v}))
//
// With the default policy, Reject, only requests with a valid attestation
// reach api; the others get 401, 403 or 503 with a JSON body naming the
// reason. With Annotate every request reaches api, which reads the outcome
// with FromContext. Without the middleware, call Verifier.Verify with the
// header's value.
//
// # Fail closed
//
// Only Apple's real "yes", a 200 with an empty body, makes a token valid.
// Every other answer — a redirect (never followed), a 200 with a page from
// a proxy or captive portal, a timeout, Apple's 429 or 5xx, Apple refusing
// our own key, a certificate that does not verify — means "could not
// check" (503), never "valid". The zero Verifier is the safe one: it
// refuses tokens older than DefaultMaxAge, and records every token before
// asking Apple, keeping a valid one for DefaultReplayWindow (before
// answering) and one Apple refused for DefaultRefusedWindow, to refuse it
// a second time; turning either off takes an explicit field. One check
// takes at most DefaultTimeout in all, and a Client sends Apple at most
// DefaultRateLimit requests a second, DefaultMaxConcurrent at once, so a
// flood of forged tokens cannot spend the team's quota; that room is
// shared in turn between clients (MiddlewareOptions.Client, WithClient),
// so a flood from one client does not crowd out the others. Apple counts
// as down (for AllowWhenDown) only when a breaker over recent attempts
// says so (BreakerConfig), never from one request.
//
// The header's g (generation time), b (bundle id) and m (team id) are
// claims made by the client; Apple's answer covers the token alone.
// Replay windows therefore run on the server's clock, from when it first
// saw the token.
//
// # Several instances
//
// The replay cache must be shared by every instance behind a load
// balancer, or a header replayed to another instance passes: package
// redisreplay keeps it in Redis. Package verifyprom exports metrics.
//
// # App Attest
//
// A value of kind "aa" carries an App Attest assertion by a key the app
// registered (package appattest/registration); with Verifier.Keys set it
// is checked locally, with no call to Apple: the key registered and
// active, the assertion's signature over header.AppAttestClientDataHash
// of the value, then its counter within the key's window (the replay
// protection of "aa"). Verifier.Kinds chooses the kinds a server accepts.
//
// DeviceCheck tokens from development builds of an app validate only
// against Apple's Development environment (Config.BaseURL). Tokens of kind
// "dev", from attestd's development provider, prove nothing and are
// refused unless Verifier.AllowDev is set.
//
// Tokens are secrets: this package never puts token bytes in errors or
// logs, and a Result or Attestation prints, logs and marshals with the
// token's fingerprint only. Package devicechecktest provides a fake Apple
// server for tests.
package verify
