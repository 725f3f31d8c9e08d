// Package verify checks attestd attestations on the server that receives
// them: it parses the x-oai-attestation header and asks Apple's DeviceCheck
// server API whether the token is genuine.
//
// A request from codex app-server carries
//
//	x-oai-attestation: {"v":1,"s":0,"t":"v1.…"}
//
// (or, from other clients, the bare "v1.…" value). To check it, create one
// Client with your DeviceCheck key and one Verifier, then wrap your handler:
//
//	key, err := verify.LoadPrivateKey("AuthKey_ABC123DEFG.p8")
//	if err != nil { … }
//	apple, err := verify.NewClient(verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key})
//	if err != nil { … }
//	v := &verify.Verifier{Client: apple, MaxAge: 2 * time.Minute, Replays: verify.NewMemoryReplayCache()}
//	http.Handle("/api/", verify.Middleware(api, verify.MiddlewareOptions{Verifier: v}))
//
// With the default policy, Reject, only requests with a valid attestation
// reach api; the others get 401, 403 or 503 with a JSON body naming the
// reason. With Annotate every request reaches api, which reads the outcome
// with FromContext. Without the middleware, call Verifier.Verify with the
// header's value.
//
// DeviceCheck tokens from development builds of an app validate only
// against Apple's Development environment (Config.BaseURL). Tokens of kind
// "dev", from attestd's development provider, prove nothing and are
// refused unless Verifier.AllowDev is set.
//
// Tokens are secrets: this package never puts token bytes in errors or
// logs; use Attestation.Fingerprint to name a token. Package
// devicechecktest provides a fake Apple server for tests.
package verify
