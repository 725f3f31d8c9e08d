package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
)

// Defaults of a Config's zero fields.
const (
	// DefaultShutdownGrace is how long, after the context ends, requests
	// in flight, proxied streams and websockets get before they are cut.
	DefaultShutdownGrace = 10 * time.Second
	// DefaultReadHeaderTimeout bounds the wait for a request's headers,
	// so a client that sends them slowly is cut off.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultIdleTimeout is how long a kept-alive connection may wait for
	// its next request.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultBodyReadTimeout bounds, in proxy mode, the wait for each
	// read of a request body (as nginx's client_body_timeout does), so a
	// client that stops sending it is cut off.
	DefaultBodyReadTimeout = time.Minute
	// DefaultMaxHeaderBytes bounds a request's line and headers: eight
	// times the largest valid attestation header (header.MaxEnvelopeLen),
	// room for the other headers a client and its proxies send, and a
	// sixteenth of Go's 1 MiB default. Larger requests get 431.
	DefaultMaxHeaderBytes = 64 << 10
	// readyTimeout bounds one /readyz's checks.
	readyTimeout = 2 * time.Second
)

// Paths the gate serves itself.
const (
	// AuthPath is the forward-auth check; every path below it too, since
	// Envoy's ext_authz appends the original path.
	AuthPath = "/auth"
	// HealthzPath answers 200 while the process serves.
	HealthzPath = "/healthz"
	// ReadyzPath answers 200 while the gate can check (its Ready checks
	// pass) and is not draining, else 503.
	ReadyzPath = "/readyz"
	// MetricsPath serves the Prometheus metrics.
	MetricsPath = "/metrics"
)

// Config configures a gate.
type Config struct {
	// Verifier checks each attestation; it is used as is (its Client, its
	// replay store, its policy). Required.
	Verifier *verify.Verifier
	// Upstream, when set, makes a reverse proxy of the gate: every
	// request not for a Mount is checked and, if valid, forwarded there.
	// Nil: forward-auth mode, checks at AuthPath only.
	Upstream *url.URL
	// Header names the request header holding the attestation; empty
	// means verify.HeaderName.
	Header string
	// AllowWhenDown admits a request whose token passed every local check
	// while Apple counts as down (verify.AllowWhenDown).
	AllowWhenDown bool
	// ClientKey names each request's client, so that calls to Apple are
	// shared in turn between clients; nil names them by their address
	// (ClientKeyFunc("remote-addr", nil)).
	ClientKey verify.ClientKey
	// TrustedProxies are the peers whose X-Forwarded-For the proxy mode
	// extends rather than replaces.
	TrustedProxies []netip.Prefix
	// Mount serves more handlers under the gate's own URL, with no
	// attestation check: each key is a path ("/x", that path alone) or a
	// prefix ending in "/" ("/appattest/", everything below it); the
	// longest match wins. A handler sees the whole path (wrap it in
	// http.StripPrefix for less). In proxy mode these paths are not
	// forwarded. Keys must not cover AuthPath or, in forward-auth mode,
	// the health paths.
	Mount map[string]http.Handler
	// Ready are the checks /readyz runs (the replay store's health, …).
	Ready []ReadyCheck
	// Registry receives the gate's metrics and is what /metrics serves;
	// nil means a new one with the Go runtime's and the process's
	// collectors. Register the Verifier's verifyprom collector in it.
	Registry *prometheus.Registry
	// Logger receives the gate's log: failed checks (with the token's
	// fingerprint, never the token), upstream errors, the drain. Nil
	// means slog.Default().
	Logger *slog.Logger
	// ShutdownGrace: zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// ReadHeaderTimeout, IdleTimeout and BodyReadTimeout: zero means
	// their defaults.
	ReadHeaderTimeout, IdleTimeout, BodyReadTimeout time.Duration
	// MaxHeaderBytes: zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Transport sends proxied requests; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// ReadyCheck is one check /readyz runs: nil from Check means ready.
type ReadyCheck struct {
	// Name says what is checked, in /readyz's answer.
	Name  string
	Check func(ctx context.Context) error
}

// Gate is an attestation check over HTTP. Make one with New.
type Gate struct {
	cfg      Config
	logger   *slog.Logger
	checked  http.Handler // the Verifier's middleware around the route's own handler
	mounts   []mount
	registry *prometheus.Registry
	metrics  *httpMetrics
	streams  *streams
	draining atomic.Bool
}

type mount struct {
	pattern string
	h       http.Handler
}

// New checks cfg and returns a gate, its metrics registered. It fails on a
// Verifier Middleware would refuse, or on a bad Mount.
func New(cfg Config) (g *Gate, err error) {
	if cfg.Verifier == nil {
		return nil, errors.New("gate: Config.Verifier is nil")
	}
	if cfg.Header == "" {
		cfg.Header = verify.HeaderName
	}
	cfg.ShutdownGrace = orDefault(cfg.ShutdownGrace, DefaultShutdownGrace)
	cfg.ReadHeaderTimeout = orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.BodyReadTimeout = orDefault(cfg.BodyReadTimeout, DefaultBodyReadTimeout)
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Upstream != nil && cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if cfg.ClientKey == nil {
		cfg.ClientKey, _ = ClientKeyFunc("remote-addr", nil)
	}
	g = &Gate{cfg: cfg, logger: cfg.Logger, registry: cfg.Registry, streams: newStreams()}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	if g.registry == nil {
		g.registry = newRegistry()
	}
	if g.mounts, err = mounts(cfg.Mount, cfg.Upstream == nil); err != nil {
		return nil, err
	}
	if g.metrics, err = newHTTPMetrics(g.registry, g.streams); err != nil {
		return nil, fmt.Errorf("gate: register metrics: %w", err)
	}
	if g.checked, err = g.checker(); err != nil {
		return nil, err
	}
	return g, nil
}

// checker returns the Verifier's middleware around what follows a valid
// check: the forward-auth answer or the proxy.
func (g *Gate) checker() (h http.Handler, err error) {
	next := http.HandlerFunc(admit)
	if g.cfg.Upstream != nil {
		next = g.proxy().ServeHTTP
	}
	opts := verify.MiddlewareOptions{
		Verifier: g.cfg.Verifier, Header: g.cfg.Header, Logger: g.logger, Client: g.cfg.ClientKey,
	}
	if g.cfg.AllowWhenDown {
		opts.WhenAppleDown = verify.AllowWhenDown
	}
	defer func() {
		if p := recover(); p != nil { // Middleware refuses a Verifier that can only fail
			err = fmt.Errorf("gate: %v", p)
		}
	}()
	return verify.Middleware(next, opts), nil
}

// mounts checks and sorts Config.Mount, longest pattern first.
func mounts(m map[string]http.Handler, forwardAuth bool) ([]mount, error) {
	var out []mount
	for pattern, h := range m {
		if !strings.HasPrefix(pattern, "/") || h == nil {
			return nil, fmt.Errorf("gate: mount %q: want a path starting with / and a handler", pattern)
		}
		reserved := []string{AuthPath}
		if forwardAuth {
			reserved = append(reserved, HealthzPath, ReadyzPath, MetricsPath)
		}
		for _, p := range reserved {
			if matches(pattern, p) || matches(pattern, p+"/") || strings.HasPrefix(pattern, p+"/") {
				return nil, fmt.Errorf("gate: mount %q covers the gate's own %s", pattern, p)
			}
		}
		out = append(out, mount{pattern, h})
	}
	// Longest first, so the most specific pattern wins.
	slices.SortFunc(out, func(a, b mount) int { return len(b.pattern) - len(a.pattern) })
	return out, nil
}

// matches reports whether path falls under pattern (Config.Mount's rule).
func matches(pattern, path string) bool {
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(path, pattern)
	}
	return path == pattern
}

// Run serves cfg's gate on ln (and its health endpoints on admin, when
// not nil) until ctx ends, then drains; see Gate.Serve.
func Run(ctx context.Context, cfg Config, ln, admin net.Listener) error {
	g, err := New(cfg)
	if err != nil {
		ln.Close()
		if admin != nil {
			admin.Close()
		}
		return err
	}
	return g.Serve(ctx, ln, admin)
}

// Registry returns the registry the gate's metrics are in.
func (g *Gate) Registry() *prometheus.Registry { return g.registry }

// The header limit stays well above the largest valid attestation header:
// this fails to compile if header.MaxEnvelopeLen grows past a quarter of it.
const _ = uint(DefaultMaxHeaderBytes - 4*header.MaxEnvelopeLen)

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
