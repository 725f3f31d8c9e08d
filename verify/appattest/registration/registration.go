// Package registration serves App Attest key registration over HTTP, one
// protocol for attestd gate and any Go server that mounts the Handler:
//
//	POST {prefix}/appattest/challenge
//	  → 200 {"challenge":"<base64url, no padding, of 32 random bytes>","expiresInMs":300000}
//	POST {prefix}/appattest/register
//	  {"keyId":"<standard base64 of the 32-byte key id>","attestation":"<standard base64>","challenge":"<as given>"}
//	  → 201 {"keyId":…,"environment":"development|production","status":"active"}  registered
//	  → 200 the same                                       the same key registered again
//	GET  {prefix}/appattest/keys/{keyId as base64url, no padding}
//	  → 200 {"keyId":…,"status":"active|revoked","environment":…}, or 404
//
// The app attests its key (DCAppAttestService.attestKey) with
// clientDataHash = SHA-256 of the challenge's 32 decoded bytes. A
// challenge is single-use and lives Config.ChallengeTTL (5 minutes),
// kept in the ChallengeStore so that any instance sharing it can take
// the registration; it is spent when a well-formed registration names
// it, whatever the outcome (a 400 leaves it). Errors are JSON {"error":…,"reason":…}: 400 malformed
// (bad_json, bad_key_id, bad_attestation, bad_challenge, too_large),
// 403 refused (unknown_challenge, a reason of package appattest such as
// bad_nonce or bad_chain, revoked_key: the app must make a new key,
// key_conflict), 404 unknown path or key, 405 wrong method (with Allow),
// 429 over the client's rate (with Retry-After), 503 a store failed or
// is full (with Retry-After): a ChallengeStore holds a bounded number of
// unexpired challenges (appattest.DefaultMaxChallenges by default), so
// that clients from many addresses cannot fill it.
//
// Every request takes a token from its client's bucket (Config.Client
// names the client, as verify.MiddlewareOptions.Client does: by default
// the remote address), so one client cannot flood the stores.
//
//	h, err := registration.NewHandler(registration.Config{
//		Keys: keys, Challenges: keys, // appattestredis.Store is both
//		AppIDs: []string{"TEAMID1234.com.example.app"},
//	})
//	mux.Handle("/appattest/", h)
package registration

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
)

// Defaults of a Config's zero fields.
const (
	// DefaultRate and DefaultBurst are each client's bucket: registering
	// takes a challenge and a registration, and a helper asks its key's
	// status at start and after failures.
	DefaultRate  rate.Limit = 1
	DefaultBurst            = 10
	// DefaultMaxClients bounds the clients with a bucket of their own.
	DefaultMaxClients = 4096
	// DefaultTimeout bounds a request's work with the stores.
	DefaultTimeout = 5 * time.Second
)

// MaxBodySize bounds a registration's JSON: an attestation of
// appattest.MaxAttestationSize in base64, and room for the rest.
const MaxBodySize = appattest.MaxAttestationSize*4/3 + 4<<10

// Config configures a Handler.
type Config struct {
	// Keys stores the registered keys. Required.
	Keys appattest.KeyStore
	// Challenges keeps the challenges issued. Required; share it between
	// instances (appattestredis) so any can take a registration.
	Challenges appattest.ChallengeStore
	// AppIDs are the accepted App IDs ("TEAMID.bundle.id"). Required.
	AppIDs []string
	// Environments are the accepted App Attest environments; empty
	// means production only.
	Environments []appattest.Environment
	// Roots are the roots an attestation may chain to; nil means Apple's
	// only. Add devattest.Root() to register development keys (stored as
	// such: a Verifier refuses their assertions unless AllowDev).
	Roots []*appattest.Root
	// Prefix is the path the endpoints live under ("" or "/base", no
	// trailing slash): the Handler serves {Prefix}/appattest/….
	Prefix string
	// ChallengeTTL is how long a challenge stays good; zero means
	// appattest.DefaultChallengeTTL.
	ChallengeTTL time.Duration
	// Client names the client of a request for its rate limit; nil means
	// the host of the request's RemoteAddr.
	Client verify.ClientKey
	// Rate and Burst are each client's bucket; zero means DefaultRate and
	// DefaultBurst.
	Rate  rate.Limit
	Burst int
	// MaxClients bounds the clients with a bucket of their own (the rest
	// share one); zero means DefaultMaxClients.
	MaxClients int
	// Timeout bounds a request's work with the stores; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger gets a line per registration and per refusal; nil means
	// none.
	Logger *slog.Logger
	// Now returns the current time (the attestation's chain is verified
	// at it); nil means time.Now.
	Now func() time.Time
}

// Handler serves the registration endpoints. Make it with NewHandler; it
// is safe for concurrent use.
type Handler struct {
	cfg     Config
	limiter *clientLimiter
}

var _ http.Handler = (*Handler)(nil)

// NewHandler checks cfg and returns the Handler it describes.
func NewHandler(cfg Config) (*Handler, error) {
	switch {
	case cfg.Keys == nil || cfg.Challenges == nil:
		return nil, errors.New("registration: Config.Keys and Config.Challenges are required")
	case len(cfg.AppIDs) == 0:
		return nil, errors.New("registration: no App ID accepted: set Config.AppIDs (\"TEAMID.bundle.id\")")
	case strings.HasSuffix(cfg.Prefix, "/") || (cfg.Prefix != "" && !strings.HasPrefix(cfg.Prefix, "/")):
		return nil, fmt.Errorf("registration: Config.Prefix %q: want \"\" or a path like \"/base\", without a trailing slash", cfg.Prefix)
	case cfg.Rate < 0 || cfg.Burst < 0 || cfg.ChallengeTTL < 0 || cfg.Timeout < 0:
		return nil, errors.New("registration: Rate, Burst, ChallengeTTL and Timeout must not be negative")
	}
	for _, e := range cfg.Environments {
		if e != appattest.Development && e != appattest.Production {
			return nil, fmt.Errorf("registration: unknown environment %q: want %q or %q", e, appattest.Development, appattest.Production)
		}
	}
	for _, r := range cfg.Roots {
		if r == nil || r.Certificate == nil || r.Name == "" {
			return nil, errors.New("registration: a root has no certificate or no name (use appattest.AppleRoot, devattest.Root or appattest.ParseRoot)")
		}
	}
	cfg.ChallengeTTL = orDefault(cfg.ChallengeTTL, appattest.DefaultChallengeTTL)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.Rate = orDefault(cfg.Rate, DefaultRate)
	cfg.Burst = orDefault(cfg.Burst, DefaultBurst)
	cfg.MaxClients = orDefault(cfg.MaxClients, DefaultMaxClients)
	if cfg.Client == nil {
		cfg.Client = remoteHost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, limiter: newClientLimiter(cfg.Rate, cfg.Burst, cfg.MaxClients)}, nil
}

func orDefault[T ~int | ~int64 | ~float64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// remoteHost names a client by the host of its RemoteAddr.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// ServeHTTP routes a request to its endpoint, after the client's rate
// limit.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.cfg.Prefix+"/appattest/")
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no_such_endpoint")
		return
	}
	var serve func(http.ResponseWriter, *http.Request)
	method := http.MethodPost
	switch {
	case rest == "challenge":
		serve = h.challenge
	case rest == "register":
		serve = h.register
	case strings.HasPrefix(rest, "keys/") && !strings.Contains(rest[len("keys/"):], "/"):
		method, serve = http.MethodGet, h.key
	default:
		writeError(w, http.StatusNotFound, "not_found", "no_such_endpoint")
		return
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use_"+strings.ToLower(method))
		return
	}
	if ok, wait := h.limiter.allow(h.cfg.Client(r), h.cfg.Now()); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(max(1, int((wait+time.Second-1)/time.Second))))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "rate_limited")
		return
	}
	serve(w, r)
}
