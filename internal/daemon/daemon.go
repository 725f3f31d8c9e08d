// Package daemon runs attestd's daemon on listeners it is given: a token
// pool behind the socket server, a provider started lazily once the
// listeners are taken, an exit when idle for a socket-activated daemon,
// and a bounded drain when it stops.
//
// Opening the listeners, signals, GOMAXPROCS and exit codes belong to the
// command (cmd/attestd serve); Run is the rest of the daemon's life, from
// open listeners to its exit.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
)

// DefaultShutdownGrace bounds the drain when the daemon stops. A request
// already read is answered within the server's deadline, and a connection
// accepted just before is read for server.StartGrace, both far shorter;
// so the grace cuts short only a drain that is stuck (a client that does
// not read its answers), and launchd or a terminal never waits long on
// one.
const DefaultShutdownGrace = 5 * time.Second

// Config configures a daemon. Only Pool.Provider is required.
type Config struct {
	// Pool configures the token pool; Pool.Provider is required, and
	// Pool.BusyWindow is how long after a request the pool counts as busy
	// (and so the daemon as not idle). A provider with work of its own
	// (provider.Starter: provider.Lazy, App Attest's) is started once Run
	// has its listeners, and closed (io.Closer) when it returns; until a
	// Lazy provider (or the App Attest provider's fallback) has started,
	// attestation/status shows why not as the pool's lastError.
	Pool pool.Config
	// Server configures the socket server; Run sets its Tokens, and its
	// Version is the one the daemon logs.
	Server server.Config
	// Where names the listeners in the log line that says the daemon
	// serves (a socket path, "launchd:Listeners").
	Where string
	// ExitIdle, when positive, ends Run with nil once the pool's warm
	// window is over and no connection has been open for this long. Set
	// it only for listeners whose owner starts the daemon again on the
	// next connection (launchd, a parent handing down --listen-fd): a
	// connection made meanwhile waits in the socket's queue for the next
	// daemon. Zero: never.
	ExitIdle time.Duration
	// ShutdownGrace bounds the drain; zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Stop delivers signals that stop the daemon as the end of ctx does,
	// each logged by name ("stopping on hangup: …"). Nil: only ctx stops
	// it.
	Stop <-chan os.Signal
	// Serving, when set, is called once the daemon serves, right after the
	// log line that says so.
	Serving func()
	// Logger gets the daemon's own lines, and the pool's and the server's
	// when theirs are nil. Nil discards.
	Logger *slog.Logger
}

// Run serves cfg's token pool on listeners until ctx ends, a signal comes
// on cfg.Stop, a listener fails, or (with cfg.ExitIdle) the daemon has
// been idle long enough. Stopping, it stops accepting, answers every
// request already read (closing the connections still open after
// cfg.ShutdownGrace), and closes the listeners, which removes a socket
// file the daemon bound itself. It returns nil after a stop or an idle
// exit, and the error of a listener that failed.
func Run(ctx context.Context, cfg Config, listeners []net.Listener) error {
	if len(listeners) == 0 {
		return errors.New("daemon: no listener to serve")
	}
	if cfg.Pool.Provider == nil {
		return errors.New("daemon: no token provider")
	}
	cfg.setDefaults()
	prov := cfg.Pool.Provider
	if s, ok := prov.(provider.Starter); ok {
		s.Start()
	}
	if c, ok := prov.(io.Closer); ok {
		defer c.Close()
	}
	p := pool.New(cfg.Pool)
	defer p.Close()
	scfg := cfg.Server
	scfg.Tokens = tokens{Pool: p, lazy: lazyOf(prov)}
	d := &daemon{cfg: cfg, pool: p, srv: server.New(scfg), served: make(chan error, len(listeners))}
	for _, l := range listeners {
		go func() { d.served <- d.srv.Serve(l) }()
	}
	cfg.Logger.Info("attestd serving", "version", cfg.Server.Version, "socket", cfg.Where, "provider", cfg.Pool.Provider.Name(),
		"bundleId", cfg.Pool.BundleID, "teamId", cfg.Pool.TeamID, "pid", os.Getpid())
	if cfg.Serving != nil {
		cfg.Serving()
	}
	serveErr, drainErr := d.wait(ctx)
	if drainErr != nil {
		cfg.Logger.Warn("drain did not finish; closed remaining connections", "err", drainErr)
	} else {
		d.awaitServeLoops(len(listeners), serveErr)
	}
	closeListeners(listeners, cfg.Logger)
	cfg.Logger.Info("attestd stopped")
	if serveErr != nil && !errors.Is(serveErr, server.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Pool.Logger == nil {
		c.Pool.Logger = c.Logger
	}
	if c.Server.Logger == nil {
		c.Server.Logger = c.Logger
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
}

// daemon is one Run's state.
type daemon struct {
	cfg    Config
	pool   *pool.Pool
	srv    *server.Server
	served chan error // what each listener's Serve returned
}

// wait serves until the daemon stops, drains, and returns the error of a
// listener that failed (nil otherwise) and the drain's.
func (d *daemon) wait(ctx context.Context) (serveErr, drainErr error) {
	log := d.cfg.Logger
	var idleExit <-chan struct{}
	watch := func() {}
	if d.cfg.ExitIdle > 0 {
		wctx, stopWatch := context.WithCancel(context.Background())
		defer stopWatch()
		watch = func() { idleExit = watchIdle(wctx, d.cfg.ExitIdle, d.busy) }
		watch()
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: draining requests in flight")
		case sig := <-d.cfg.Stop:
			log.Info("stopping on "+sig.String()+": draining requests in flight", "signal", sig.String())
		case serveErr = <-d.served:
			log.Error("listener failed", "err", serveErr)
		case <-idleExit:
			// Whether a connection is open and the end of accepting are
			// decided in one step, so a client that connects now is
			// served, here or by the next instance launchd starts.
			idle, err := d.shutdownIfIdle()
			if !idle {
				log.Debug("staying: a connection came in as the daemon was about to exit")
				watch()
				continue
			}
			log.Info("exiting: idle, no connection and the warm window over", "for", d.cfg.ExitIdle.String())
			return nil, err
		}
		return serveErr, d.withGrace(d.srv.Shutdown)
	}
}

// busy reports whether the daemon must not exit for being idle: a
// connection is open, or the pool is in its busy or warm window.
func (d *daemon) busy() bool {
	return d.srv.Conns() > 0 || d.pool.Status().Warm
}

func (d *daemon) shutdownIfIdle() (idle bool, err error) {
	err = d.withGrace(func(ctx context.Context) (err error) {
		idle, err = d.srv.ShutdownIfIdle(ctx)
		return err
	})
	return idle, err
}

// withGrace runs drain with a context that ends after ShutdownGrace.
func (d *daemon) withGrace(drain func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownGrace)
	defer cancel()
	return drain(ctx)
}

// awaitServeLoops waits for the Serve loops that have not yet returned,
// after a drain that finished: they all have, or are about to.
func (d *daemon) awaitServeLoops(n int, received error) {
	if received != nil {
		n--
	}
	for range n {
		<-d.served
	}
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
