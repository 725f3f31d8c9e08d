// Package server answers attestation requests on attestd's socket: one
// newline-delimited JSON-RPC message per line, requests pipelined and
// answered as they finish, each exactly once.
//
// Methods: attestation/generate ({"token":"v1.…"}), initialize,
// attestation/status, and attestation/warm (a hint to have tokens ready,
// also implied by initialize; with params it also signals a turn's start
// and end, and waits until a token is ready); package protocol holds
// their params and results. Every
// connection's peer must run as the server's own user, and pass
// Config.CheckPeer when set.
//
// Waiting requests are served fairly: each connection has its own queue
// in the pool, served round robin. A ready token is answered on the
// connection's reader goroutine; the common line
// {"id":N,"method":"attestation/generate"} is recognised without being
// decoded in full, and read and write deadlines are re-armed only when
// they pass.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
)

// Defaults for the zero fields of Config.
const (
	DefaultDeadline     = protocol.GenerateDeadline
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultMaxConns     = 256
	DefaultMaxInFlight  = 64
	DefaultWriteTimeout = 10 * time.Second
)

// Tokens is what the server needs from the token pool.
type Tokens interface {
	// TokenIn waits for a token; requests of one queue (one connection)
	// are served round robin with the other queues'.
	TokenIn(ctx context.Context, q *pool.Queue) (string, error)
	Warm()
	// WaitReady returns once a token is ready, without taking it.
	WaitReady(ctx context.Context) error
	BeginTurn() *pool.Turn
	Status() protocol.PoolStatus
}

var _ Tokens = (*pool.Pool)(nil)

// Config configures a Server. Only Tokens is required.
type Config struct {
	Tokens Tokens
	// Version is reported by initialize.
	Version string
	// Deadline bounds the wait for a token in attestation/generate; it stays
	// under the app-server's ~100 ms.
	Deadline time.Duration
	// MaxLine is the longest request line accepted; longer ones are answered
	// with an error and the connection is closed.
	MaxLine int
	// IdleTimeout closes a connection with no complete line and nothing in
	// flight for that long.
	IdleTimeout time.Duration
	// MaxConns caps open connections; at the cap the longest-idle one is
	// closed to make room, or the new one is refused when none is idle.
	MaxConns int
	// MaxInFlight caps unanswered requests per connection; reading pauses
	// at the cap.
	MaxInFlight int
	// WriteTimeout closes a connection whose peer does not read its answers.
	WriteTimeout time.Duration
	// UID is the only peer uid admitted; nil means the server's own.
	UID *int
	// CheckPeer, when set, must admit a peer before it is served (macOS
	// code-signing requirement).
	CheckPeer func(*net.UnixConn) error
	// Logger gets connection and request events; tokens appear only as
	// fingerprints. Nil discards.
	Logger *slog.Logger
}

// Server serves attestation requests on any number of listeners.
type Server struct {
	cfg     Config
	uid     int
	started time.Time

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	forced    bool           // Shutdown's context ended: close, do not serve
	serving   sync.WaitGroup // Serve loops
	wg        sync.WaitGroup // connection goroutines

	draining context.Context // canceled by Shutdown: waits answer at once
	drainNow context.CancelFunc

	stats stats
}

type stats struct {
	accepted, refused, evicted, active atomic.Int64
	requests, tokens, errors           atomic.Int64
}

// New returns a server; call Serve for each listener and Shutdown to stop.
func New(cfg Config) *Server {
	if cfg.Tokens == nil {
		panic("server: Config.Tokens is nil")
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = jsonrpc.DefaultMaxLine
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	uid := os.Getuid()
	if cfg.UID != nil {
		uid = *cfg.UID
	}
	draining, drainNow := context.WithCancel(context.Background())
	return &Server{cfg: cfg, uid: uid, started: time.Now(),
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{},
		draining: draining, drainNow: drainNow}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server closed")

// Serve accepts connections on l until Shutdown, and then returns
// ErrServerClosed. Only Unix-socket connections are served.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		s.serving.Done()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: wait a little and keep serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.draining.Done(): // Shutdown waits for this loop
				}
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) accept(nc net.Conn) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		s.stats.refused.Add(1)
		s.cfg.Logger.Warn("refused a non-Unix connection", "remote", nc.RemoteAddr())
		nc.Close()
		return
	}
	c := newConn(s, uc)
	s.mu.Lock()
	if s.forced {
		s.mu.Unlock()
		uc.Close()
		return
	}
	// A connection the listener handed over after Shutdown began is
	// registered all the same: Shutdown waits for the Serve loops before
	// it stops the connections, so this one is read for StartGrace after
	// its accept (see stopConnsLocked) instead of closed unanswered.
	if len(s.conns) >= s.cfg.MaxConns {
		victim := s.longestIdleLocked()
		if victim == nil {
			s.mu.Unlock()
			s.stats.refused.Add(1)
			s.cfg.Logger.Warn("refused a connection: all connections busy", "max", s.cfg.MaxConns)
			c.refuse(errTooManyConns)
			return
		}
		delete(s.conns, victim)
		s.stats.evicted.Add(1)
		victim.evict()
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.stats.active.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.stats.active.Add(-1)
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// longestIdleLocked picks the connection to close at the cap: one that has
// never sent a line (the oldest such), else the one idle longest; never one
// with a request in flight.
func (s *Server) longestIdleLocked() *conn {
	var victim *conn
	for c := range s.conns {
		if c.inFlight.Load() > 0 {
			continue
		}
		if victim == nil || idleBefore(c, victim) {
			victim = c
		}
	}
	return victim
}

// idleBefore reports whether a should be evicted before b.
func idleBefore(a, b *conn) bool {
	aa, ba := a.lastActive.Load(), b.lastActive.Load()
	switch {
	case aa == 0 && ba == 0:
		return a.acceptedAt < b.acceptedAt
	case aa == 0 || ba == 0:
		return aa == 0
	}
	return aa < ba
}

// StartGrace is how long after its accept a connection is still read once
// Shutdown has begun. A client that dials and writes at once (attestd
// token, bridge/client, a hint and then a call) and meets a shutdown in
// between gets its requests answered, not a closed connection; a
// connection accepted earlier stops at once, and a silent new one delays
// Shutdown by StartGrace at most.
const StartGrace = time.Second

// Shutdown stops accepting, stops reading new requests, waits until every
// request already read has been answered (each is bounded by the
// deadline), then closes all connections. A connection accepted less than
// StartGrace ago is read until StartGrace after its accept, and what it
// sends by then is answered. If ctx ends first, the remaining connections
// are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.beginShutdownLocked()
	s.mu.Unlock()
	return s.finishShutdown(ctx)
}

// ShutdownIfIdle shuts the server down, as Shutdown does, only if no
// connection is open, and reports whether it did. The check and the end
// of accepting are one step, so a daemon that exits when idle never
// closes a connection it has just accepted: one that the listener handed
// over in between is served for StartGrace after its accept, and under
// launchd every connection not yet accepted waits in launchd's socket for
// the next instance.
func (s *Server) ShutdownIfIdle(ctx context.Context) (bool, error) {
	s.mu.Lock()
	if s.closing || len(s.conns) > 0 {
		s.mu.Unlock()
		return false, nil
	}
	s.beginShutdownLocked()
	s.mu.Unlock()
	return true, s.finishShutdown(ctx)
}

func (s *Server) beginShutdownLocked() {
	s.closing = true
	s.drainNow()
	for l := range s.listeners {
		l.Close()
	}
	s.stopConnsLocked(time.Now())
}

func (s *Server) finishShutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		// A Serve loop may still hand over a connection it had accepted
		// before its listener closed; once the loops have returned no more
		// come, the set stopped here is the whole set, and wg.Wait does
		// not race an Add.
		s.serving.Wait()
		s.mu.Lock()
		s.stopConnsLocked(time.Now())
		s.mu.Unlock()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.forced = true
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// stopConnsLocked makes every connection stop reading: at once, or, for
// one accepted less than StartGrace before now, at StartGrace after its
// accept.
func (s *Server) stopConnsLocked(now time.Time) {
	for c := range s.conns {
		if s.forced {
			c.nc.Close()
			continue
		}
		c.stopReadingAt(time.Unix(0, c.acceptedAt).Add(StartGrace), now)
	}
}
