package gate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/attestd/attestd/verify"
)

// proxy returns the reverse proxy to the upstream, for requests the
// middleware let through (it has removed the attestation header). The
// upstream sees the gate's result headers and never a client's own
// X-Attestd-*, and an X-Forwarded-For that extends the client's only when
// the peer is a trusted proxy. Websocket upgrades pass through, checked
// on the handshake; streamed answers are flushed as they come.
func (g *Gate) proxy() http.Handler {
	target := g.cfg.Upstream
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			if peer, ok := parseHost(pr.In.RemoteAddr); ok && inRanges(peer, g.cfg.TrustedProxies) {
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetXForwarded()
			dropClientResults(pr.Out.Header)
			res, _ := verify.FromContext(pr.In.Context())
			setResult(pr.Out.Header, res)
		},
		Transport: g.cfg.Transport,
		ErrorLog:  slog.NewLogLogger(g.logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away: nobody to answer
			}
			g.logger.Warn("gate: upstream failed", "method", r.Method, "path", r.URL.Path, "err", err)
			code, reason := http.StatusBadGateway, "upstream_unavailable"
			if errors.Is(err, context.DeadlineExceeded) {
				code, reason = http.StatusGatewayTimeout, "upstream_timeout"
			}
			writeJSON(w, code, map[string]any{"error": reason})
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: g.cfg.BodyReadTimeout}
		}
		rp.ServeHTTP(w, r)
	})
}

// idleBody bounds each read of a request body: a client that stops
// sending its body for timeout is cut off (the deadline stays passed, so
// the server reads nothing more from it and closes the connection). Once
// the whole body is read the deadline is lifted, so a long answer is not
// cut.
type idleBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
