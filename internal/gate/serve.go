package gate

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve answers on ln until ctx ends, then drains and returns nil; it
// returns a listener's error if one fails first. The health paths are
// served on admin when it is not nil, else on ln in forward-auth mode
// (in proxy mode they would shadow the upstream's paths, so without
// admin there are none).
//
// The drain: /readyz answers 503 from the moment ctx ends; the listeners
// close; requests in flight (checks, proxied streams) and websockets get
// ShutdownGrace to finish, and what is still open then is closed. The
// admin listener closes last, so /readyz says 503 throughout.
func (g *Gate) Serve(ctx context.Context, ln, admin net.Listener) error {
	main := g.server(g.mainHandler(admin == nil && g.cfg.Upstream == nil))
	errc := make(chan error, 2)
	go func() { errc <- main.Serve(ln) }()
	var adminSrv *http.Server
	if admin != nil {
		adminSrv = g.server(g.adminHandler())
		go func() { errc <- adminSrv.Serve(admin) }()
	}
	attrs := []any{"addr", ln.Addr().String(), "mode", "forward-auth"}
	if g.cfg.Upstream != nil {
		attrs[3] = "proxy"
	}
	if admin != nil {
		attrs = append(attrs, "admin", admin.Addr().String())
	}
	g.logger.Info("gate: serving", attrs...)
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		g.logger.Error("gate: a listener failed; draining", "err", failed)
	}
	g.drain(main, adminSrv)
	return failed
}

// server returns an http.Server for h with the gate's limits.
func (g *Gate) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.logger.Handler(), slog.LevelDebug),
	}
}

// drain stops main and its streams within ShutdownGrace, then admin.
func (g *Gate) drain(main, admin *http.Server) {
	g.draining.Store(true)
	g.logger.Info("gate: draining", "grace", g.cfg.ShutdownGrace, "streams", g.streams.open())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownGrace)
	defer cancel()
	streamsDone := make(chan int, 1)
	go func() {
		if g.streams.wait(ctx) {
			streamsDone <- 0
			return
		}
		streamsDone <- g.streams.closeAll()
	}()
	cut := 0
	if err := main.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		main.Close() // the grace is over: close what is still open
		cut = 1
	}
	streamsCut := <-streamsDone
	if admin != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		if admin.Shutdown(actx) != nil {
			admin.Close()
		}
		acancel()
	}
	if t, ok := g.cfg.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	g.logger.Info("gate: stopped", "after", time.Since(start).Round(time.Millisecond),
		"requests_cut", cut > 0, "streams_cut", streamsCut)
}
