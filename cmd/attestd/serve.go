package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/daemon"
	"github.com/attestd/attestd/internal/providers"
)

func init() {
	c := &command{
		name:    "serve",
		summary: "Run the daemon: answer attestation/generate on a Unix socket.",
		usage:   "serve [--socket PATH | --listen-fd N | --launchd NAME] [--provider " + providers.Names + "] [flags]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runServe(ctx, s, c, args) }
	register(c)
}

// runServe turns the flags into a daemon.Config, opens the listeners and
// runs the daemon on them. Signals and GOMAXPROCS are set here, for the
// whole process.
func runServe(ctx context.Context, s *streams, c *command, args []string) (err error) {
	// Before anything that must be undone on the way out (the socket).
	hup, hupIgnored, stopSignals := serveSignals()
	defer stopSignals()

	fs := newFlagSet(s, c)
	f := addServeFlags(fs)
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	detachLog, err := attachLogFile(s, *f.logFile)
	if err != nil {
		return err
	}
	defer func() { detachLog(err) }()
	exitIdle, err := f.exitIdle(fs)
	if err != nil {
		return err
	}
	logger, err := f.log.logger(s)
	if err != nil {
		return err
	}
	cfg, err := f.daemonConfig(s, logger)
	if err != nil {
		return err
	}
	cfg.ExitIdle, cfg.Stop = exitIdle, hup
	if hupIgnored {
		cfg.Serving = func() { logger.Info("SIGHUP is ignored (nohup): a hangup will not stop the daemon") }
	}

	// The socket first, then the provider (daemon.Run starts it): a
	// provider that cannot start is reported on the socket, not by an exit
	// that launchd answers with a restart on the next connection.
	listeners, where, err := listen(s, *f.socket, *f.listenFD, *f.launchd)
	if err != nil {
		return err
	}
	cfg.Where = where
	setGOMAXPROCS(s.getenv)
	return daemon.Run(ctx, cfg, listeners)
}

// serveFlags are the flags of "attestd serve".
type serveFlags struct {
	socket, launchd, peerRequirement, logFile *string
	listenFD, maxConns                        *int
	idleTimeout, exitIdleAfter                *time.Duration
	provider                                  providerFlags
	pool                                      poolFlags
	log                                       logFlags
}

func addServeFlags(fs *flag.FlagSet) *serveFlags {
	return &serveFlags{
		socket:   fs.String("socket", "", "listen on this Unix socket path (default $ATTESTD_SOCKET or the per-user runtime path)"),
		listenFD: fs.Int("listen-fd", -1, "serve an inherited listening Unix socket on this file descriptor"),
		launchd:  fs.String("launchd", "", "serve the launchd socket of this name from the LaunchAgent's Sockets (macOS; usually \"Listeners\")"),
		provider: addProviderFlags(fs, "auto", "token provider: "+providers.Names),
		pool: addPoolFlags(fs, server.DefaultDeadline, poolFlagUsage{
			prefetch:   "tokens kept ready while a turn runs",
			maxAge:     "discard a ready token older than this",
			deadline:   "longest wait for a token per request (keep under the app-server's 100ms)",
			warmWindow: "keep one token ready (two from a 60s max age) for this long after the last turn, request or hint",
		}),
		idleTimeout:     fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a connection idle for this long"),
		exitIdleAfter:   fs.Duration("exit-idle", daemon.DefaultExitIdle, "exit 0 once the warm window is over and no connection has been open for this long (0: never); default 1m with --launchd, off with --listen-fd unless given (a parent that is not launchd may not start the daemon again)"),
		maxConns:        fs.Int("max-conns", server.DefaultMaxConns, "most open connections"),
		peerRequirement: fs.String("peer-requirement", "", "admit only peers whose code signature satisfies this requirement (macOS), e.g. 'anchor apple generic and certificate leaf[subject.OU] = \"TEAMID\"'"),
		log:             addLogFlags(fs, "info"),
		logFile:         fs.String("log-file", "", "also write the log to this file, size-capped with rotation; a leading ~/ is this user's home (launchd expands neither ~ nor variables)"),
	}
}

// exitIdle checks that the flags go together and returns the idle exit in
// force (see exitIdleFor).
func (f *serveFlags) exitIdle(fs *flag.FlagSet) (time.Duration, error) {
	sources := 0
	for _, set := range []bool{*f.socket != "", *f.listenFD >= 0, *f.launchd != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return 0, usagef("give only one of --socket, --listen-fd and --launchd")
	}
	if !f.pool.valid() || *f.idleTimeout <= 0 || *f.maxConns < 1 || *f.exitIdleAfter < 0 {
		return 0, usagef("--prefetch and --max-conns must be at least 1, durations positive, and --exit-idle not negative")
	}
	socketActivated := *f.listenFD >= 0 || *f.launchd != ""
	exitIdle := exitIdleFor(*f.launchd != "", *f.exitIdleAfter, flagGiven(fs, "exit-idle"))
	if !socketActivated && flagGiven(fs, "exit-idle") && exitIdle > 0 {
		return 0, usagef("--exit-idle needs --launchd or --listen-fd: nothing would start a daemon that made its own socket again")
	}
	return exitIdle, nil
}

// exitIdleFor returns the idle exit in force: the --exit-idle value when
// given, else daemon.DefaultExitIdle under launchd and 0 (never)
// otherwise, since a parent other than launchd may not start the daemon
// again.
func exitIdleFor(launchd bool, value time.Duration, given bool) time.Duration {
	if given || launchd {
		return value
	}
	return 0
}

// daemonConfig returns the daemon the flags describe, but for where it
// listens, when it exits idle and what stops it.
func (f *serveFlags) daemonConfig(s *streams, logger *slog.Logger) (daemon.Config, error) {
	prov, err := providers.ForDaemon(f.provider.spec(s), logger, warner(s))
	if err != nil {
		return daemon.Config{}, err
	}
	checkPeer, err := peerRequirement(*f.peerRequirement)
	if err != nil {
		return daemon.Config{}, err
	}
	id := providers.SelfIdentity(logger)
	pc := f.pool.poolConfig(prov, logger)
	pc.BundleID, pc.TeamID = id.BundleID, id.TeamID
	return daemon.Config{
		Pool: pc,
		Server: server.Config{Version: version, Deadline: *f.pool.deadline, IdleTimeout: *f.idleTimeout,
			MaxConns: *f.maxConns, CheckPeer: checkPeer, Logger: logger},
		Logger: logger,
	}, nil
}

// peerRequirement returns the check of --peer-requirement, or nil when
// none is given.
func peerRequirement(req string) (func(*net.UnixConn) error, error) {
	if req == "" {
		return nil, nil
	}
	chk, err := darwin.NewPeerRequirement(req)
	if err != nil {
		return nil, withHint(fmt.Errorf("--peer-requirement: %w", err), "check the requirement with: codesign -v -R '%s' /path/to/client.app", req)
	}
	return chk, nil
}
