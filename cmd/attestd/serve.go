package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/darwin"
)

// shutdownGrace bounds the drain after SIGTERM.
const shutdownGrace = 5 * time.Second

func init() {
	c := &command{
		name:    "serve",
		summary: "Run the daemon: answer attestation/generate on a Unix socket.",
		usage:   "serve [--socket PATH | --listen-fd N | --launchd NAME] [--provider " + providerNames + "] [flags]",
	}
	c.run = func(ctx context.Context, s *stdio, args []string) error { return runServe(ctx, s, c, args) }
	register(c)
}

func runServe(ctx context.Context, s *stdio, c *command, args []string) (err error) {
	// Before anything that must be undone on the way out (the socket).
	hup, hupIgnored, stopSignals := serveSignals()
	defer stopSignals()

	fs := newFlagSet(s, c)
	sockPath := fs.String("socket", "", "listen on this Unix socket path (default $ATTESTD_SOCKET or the per-user runtime path)")
	listenFD := fs.Int("listen-fd", -1, "serve an inherited listening Unix socket on this file descriptor")
	launchd := fs.String("launchd", "", "serve the launchd socket of this name from the LaunchAgent's Sockets (macOS; usually \"Listeners\")")
	provFlags := addProviderFlags(fs, "auto", "token provider: "+providerNames)
	prefetch := fs.Int("prefetch", pool.DefaultSize, "tokens kept ready while a turn runs")
	maxAge := fs.Duration("max-age", pool.DefaultMaxAge, "discard a ready token older than this")
	deadline := fs.Duration("deadline", server.DefaultDeadline, "longest wait for a token per request (keep under the app-server's 100ms)")
	warmWindow := fs.Duration("warm-window", pool.DefaultWarmWindow, "keep one token ready (two from a 60s max age) for this long after the last turn, request or hint")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a connection idle for this long")
	exitIdle := fs.Duration("exit-idle", defaultExitIdle, "exit 0 once the warm window is over and no connection has been open for this long (0: never); default 1m with --launchd, off with --listen-fd unless given (a parent that is not launchd may not start the daemon again)")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "most open connections")
	peerReq := fs.String("peer-requirement", "", "admit only peers whose code signature satisfies this requirement (macOS), e.g. 'anchor apple generic and certificate leaf[subject.OU] = \"TEAMID\"'")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFile := fs.String("log-file", "", "also write the log to this file, size-capped with rotation; a leading ~/ is this user's home (launchd expands neither ~ nor variables)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	detachLog, err := attachLogFile(s, *logFile)
	if err != nil {
		return err
	}
	defer func() { detachLog(err) }()
	sources := 0
	for _, set := range []bool{*sockPath != "", *listenFD >= 0, *launchd != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return usagef("give only one of --socket, --listen-fd and --launchd")
	}
	if *prefetch < 1 || *maxAge <= 0 || *deadline <= 0 || *warmWindow <= 0 || *idle <= 0 || *maxConns < 1 || *exitIdle < 0 {
		return usagef("--prefetch and --max-conns must be at least 1, durations positive, and --exit-idle not negative")
	}
	socketActivated := *listenFD >= 0 || *launchd != ""
	*exitIdle = exitIdleFor(*launchd != "", *exitIdle, flagSet(fs, "exit-idle"))
	if !socketActivated && flagSet(fs, "exit-idle") && *exitIdle > 0 {
		return usagef("--exit-idle needs --launchd or --listen-fd: nothing would start a daemon that made its own socket again")
	}
	logger, err := newLogger(s.err, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	prov, lazy, err := provFlags.serveProvider(s, logger)
	if err != nil {
		return err
	}
	var checkPeer func(*net.UnixConn) error
	if *peerReq != "" {
		chk, err := darwin.NewPeerRequirement(*peerReq)
		if err != nil {
			return withHint(fmt.Errorf("--peer-requirement: %w", err), "check the requirement with: codesign -v -R '%s' /path/to/client.app", *peerReq)
		}
		checkPeer = chk
	}
	var id darwin.Identity
	if runtime.GOOS == "darwin" {
		if id, err = darwin.SelfIdentity(); err != nil {
			logger.Warn("cannot read own signing identity; header b and m stay empty", "err", err)
		}
	}

	// The socket first, then the provider: a provider that cannot start is
	// reported on the socket, not by an exit that launchd answers with a
	// restart on the next connection.
	listeners, where, err := listen(s, *sockPath, *listenFD, *launchd)
	if err != nil {
		return err
	}
	if lazy != nil {
		lazy.Start()
	}

	serveProcs(s.getenv)
	p := pool.New(pool.Config{
		Provider: prov, BundleID: id.BundleID, TeamID: id.TeamID,
		Size: *prefetch, MaxAge: *maxAge, WarmWindow: *warmWindow, Logger: logger,
	})
	defer p.Close()
	tokens := serveTokens{Pool: p, lazy: lazy}
	srv := server.New(server.Config{
		Tokens: tokens, Version: version, Deadline: *deadline, IdleTimeout: *idle,
		MaxConns: *maxConns, CheckPeer: checkPeer, Logger: logger,
	})

	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- srv.Serve(l) }()
	}
	logger.Info("attestd serving", "version", version, "socket", where, "provider", prov.Kind(),
		"bundleId", id.BundleID, "teamId", id.TeamID, "pid", os.Getpid())
	if hupIgnored {
		logger.Info("SIGHUP is ignored (nohup): a hangup will not stop the daemon")
	}
	var idleExit <-chan struct{}
	watch := func() {}
	if socketActivated && *exitIdle > 0 {
		wctx, stopWatch := context.WithCancel(context.Background())
		defer stopWatch()
		watch = func() {
			idleExit = watchIdle(wctx, *exitIdle, func() bool { return srv.Conns() > 0 || p.Status().Warm })
		}
		watch()
	}

	withGrace := func(drain func(context.Context) error) error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		return drain(sctx)
	}
	var serveErr, drainErr error
wait:
	for {
		select {
		case <-ctx.Done():
			logger.Info("stopping: draining requests in flight")
		case sig := <-hup:
			logger.Info("stopping on "+sig.String()+": draining requests in flight", "signal", sig.String())
		case serveErr = <-errc:
			logger.Error("listener failed", "err", serveErr)
		case <-idleExit:
			// Whether a connection is open and the end of accepting are
			// decided in one step, so a client that connects now is
			// served, here or by the next instance launchd starts.
			var idle bool
			drainErr = withGrace(func(ctx context.Context) (err error) {
				idle, err = srv.ShutdownIfIdle(ctx)
				return err
			})
			if !idle {
				logger.Debug("staying: a connection came in as the daemon was about to exit")
				watch()
				continue
			}
			logger.Info("exiting: idle, no connection and the warm window over", "for", exitIdle.String())
			break wait
		}
		drainErr = withGrace(srv.Shutdown)
		break
	}
	if drainErr != nil {
		logger.Warn("drain did not finish; closed remaining connections", "err", drainErr)
	}
	closeListeners(listeners, logger)
	logger.Info("attestd stopped")
	if serveErr != nil && !errors.Is(serveErr, server.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// closeListeners closes the listeners (Shutdown already did, and ignored
// the result) and says when the socket file was not removed because it is
// no longer the one this daemon bound.
func closeListeners(listeners []net.Listener, logger *slog.Logger) {
	for _, l := range listeners {
		err := l.Close()
		if sl, ok := l.(*socket.Listener); ok && errors.Is(err, socket.ErrReplaced) {
			logger.Warn("left the socket path alone: it no longer names this daemon's socket", "socket", sl.Path(), "err", err)
		}
	}
}

// flagSet reports whether the flag called name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// listen opens the listeners chosen by the flags and says where they are.
func listen(s *stdio, path string, fd int, launchdName string) ([]net.Listener, string, error) {
	switch {
	case fd >= 0:
		l, err := socket.ListenFD(fd)
		if err != nil {
			return nil, "", withHint(err, "--listen-fd must name a listening Unix socket inherited from the parent process")
		}
		return []net.Listener{l}, l.Addr().String(), nil
	case launchdName != "":
		ls, err := darwin.ActivateSocket(launchdName)
		var ae *darwin.ActivateError
		if err != nil && !errors.As(err, &ae) { // an *ActivateError has its own hint
			err = withHint(err, "--launchd works only when launchd started attestd from a LaunchAgent whose Sockets has the key %q", launchdName)
		}
		if err != nil {
			return nil, "", err
		}
		return ls, "launchd:" + launchdName, nil
	}
	if path == "" {
		path = socket.DefaultPath(s.getenv)
	}
	l, err := socket.Listen(path)
	if errors.Is(err, socket.ErrAlreadyRunning) {
		return nil, "", withHint(err, "stop the other daemon first, or check it with: attestd status --socket %s", path)
	}
	if err != nil {
		return nil, "", err // a *socket.PathError carries its own hint
	}
	return []net.Listener{l}, path, nil
}
