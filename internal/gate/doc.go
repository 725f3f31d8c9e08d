// Package gate is the engine of "attestd gate": verify's checks as an HTTP
// server beside any backend, whatever its language.
//
// In forward-auth mode (Config.Upstream nil) a proxy (nginx auth_request,
// Caddy forward_auth, Traefik ForwardAuth, Envoy ext_authz, ingress-nginx
// auth-url) sends the original request's headers to AuthPath, or any
// path below it, with any method, and the gate answers through
// verify.Middleware: 200 with the result headers (ResultHeaders, every one
// present, empty when there is nothing to say) when the attestation is
// valid; 401 with WWW-Authenticate when it is missing, malformed, or the
// app-server reports it got none; 403 when it is refused (forged,
// replayed, too old, a development token without AllowDev); 503 with
// Retry-After when it could not be checked. Refusals carry the
// middleware's short JSON body. A request's body is never read.
//
// In proxy mode (Config.Upstream set) every request is checked the same
// way and, when valid, forwarded to the upstream by httputil.ReverseProxy
// without the attestation header, with the result headers, and without
// any X-Attestd-* header the client sent. Websocket upgrades pass
// through, checked on the handshake; streamed answers flow as they come.
//
// App Attest (kind "aa"): Settings with App IDs give the Verifier a key
// store (appattestredis on the replay store's Redis connection, so that
// every gate shares keys, counter windows and challenges; this process's
// memory without Redis) and mount registration.Handler at
// RegistrationPath, rate-limited per client by the gate's ClientKey. An
// app registers its key there, then sends an assertion per request; the
// check is local (the key registered and active, its signature, its
// counter new within the window), never a call to Apple, and a valid one
// carries the key id in X-Attestd-Key-Id (base64url, no padding, as the
// registration's key paths name it). /readyz reads the key store too.
//
// Decisions the issue left open:
//
//   - The per-client share of calls to Apple names a client by its
//     address (an IPv6 client by its /64, so that one host does not get a
//     turn per address), or by a forwarding header only from a trusted
//     proxy (ClientKeyFunc).
//   - The health paths (/healthz, /readyz, /metrics) are on the admin
//     listener when there is one, else on the main one in forward-auth
//     mode only: in proxy mode they would shadow the upstream's paths and
//     be public.
//   - Config.Mount's handlers (App Attest's registration) are served by
//     the gate itself, unchecked: a client registers before it has an
//     attestation to send. In proxy mode they are never forwarded; in
//     front of forward-auth, the proxy sends /appattest/ to the gate
//     itself (the README's nginx and Caddy configurations do).
//   - The kinds accepted (Settings.Kinds) default to every kind that is
//     set up: aa with App IDs, dc with the DeviceCheck key, dev with
//     AllowDev. A gate for App Attest alone needs no DeviceCheck key, and
//     a command line from before App Attest keeps its meaning. A kind
//     named in Kinds must be set up. A kind not accepted is refused
//     outright (403 kind_not_accepted): the gate will never check it, so
//     a retry is no use.
//   - --appattest-root takes a PEM file or the PEM text itself, so that
//     $ATTESTD_APPATTEST_ROOT_FILE (which hands over a file's content)
//     works too; roots are named as "attestd appattest --root" names
//     them. Keys from any root but Apple's pass only under AllowDev, so a
//     root without AllowDev is a setting error: its registrations would
//     only fill the store (and the development root's key is public).
//   - For App Attest the team and bundle ids in the result headers are
//     the attested App ID's, never the header's b and m. Otherwise they
//     are the client's claims: bytes outside visible ASCII are
//     percent-encoded, so a claim cannot smuggle control characters into
//     headers a proxy copies.
//   - A forward-auth request with a body is answered with Connection:
//     close and its body is left unread, so a client cannot hold the
//     connection by sending one slowly; in proxy mode each read of a body
//     waits at most BodyReadTimeout.
//   - At the end (the context of Serve ends: SIGTERM or SIGINT for the
//     command) /readyz turns 503, the listeners close, requests in flight,
//     proxied streams and websockets get ShutdownGrace, and are then
//     closed. Websockets are closed without a close frame: past the
//     handshake the gate carries bytes it does not parse.
package gate
