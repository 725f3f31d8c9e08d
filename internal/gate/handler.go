package gate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestd/attestd/verify"
)

// mainHandler is what the main listener serves: the mounts, then, in
// proxy mode, the check and the proxy for every other path; in
// forward-auth mode the check at AuthPath and, with health, the health
// paths; 404 for the rest.
func (g *Gate) mainHandler(health bool) http.Handler {
	auth := g.instrument(routeAuth, g.forwardAuth())
	proxied := g.instrument(routeProxy, g.checked)
	notFound := g.instrument(routeNotFound, http.HandlerFunc(notFound))
	healthPaths := g.healthHandler()
	mounted := make([]mount, len(g.mounts))
	for i, m := range g.mounts {
		mounted[i] = mount{m.pattern, g.instrument(routeMount, m.h)}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		for _, m := range mounted {
			if matches(m.pattern, path) {
				m.h.ServeHTTP(w, r)
				return
			}
		}
		switch {
		case g.cfg.Upstream != nil:
			proxied.ServeHTTP(w, r)
		case path == AuthPath || strings.HasPrefix(path, AuthPath+"/"):
			auth.ServeHTTP(w, r)
		case health && isHealthPath(path):
			healthPaths.ServeHTTP(w, r)
		default:
			notFound.ServeHTTP(w, r)
		}
	})
}

// adminHandler is what the admin listener serves: the health paths.
func (g *Gate) adminHandler() http.Handler {
	h := g.healthHandler()
	notFound := g.instrument(routeNotFound, http.HandlerFunc(notFound))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isHealthPath(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		notFound.ServeHTTP(w, r)
	})
}

func isHealthPath(p string) bool { return p == HealthzPath || p == ReadyzPath || p == MetricsPath }

// forwardAuth is the check at AuthPath. The request's body is never read:
// a request that has one is answered with Connection: close, and its
// connection stops reading at once, so a client cannot hold it open by
// sending a body slowly.
func (g *Gate) forwardAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			w.Header().Set("Connection", "close")
			http.NewResponseController(w).SetReadDeadline(time.Now())
		}
		g.checked.ServeHTTP(w, r)
	})
}

// admit answers a forward-auth request the middleware let through: 200
// with the result headers, no body.
func admit(w http.ResponseWriter, r *http.Request) {
	res, _ := verify.FromContext(r.Context())
	h := w.Header()
	setResult(h, res)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found"})
}

// healthHandler serves HealthzPath, ReadyzPath and MetricsPath.
func (g *Gate) healthHandler() http.Handler {
	metrics := g.instrument(routeMetrics, promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{}))
	healthz := g.instrument(routeHealthz, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"alive": true})
	}))
	readyz := g.instrument(routeReadyz, http.HandlerFunc(g.readyz))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case HealthzPath:
			healthz.ServeHTTP(w, r)
		case ReadyzPath:
			readyz.ServeHTTP(w, r)
		default:
			metrics.ServeHTTP(w, r)
		}
	})
}

// readyz answers 200 {"ready":true} when every Ready check passes and the
// gate is not draining, else 503 with the reason (and Retry-After).
func (g *Gate) readyz(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	for _, c := range g.cfg.Ready {
		if err := c.Check(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = errors.New("no answer within " + readyTimeout.String())
			}
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": c.Name, "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
