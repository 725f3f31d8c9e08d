package server

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/socket"
)

// gatedListener hands over each accepted connection only once the test
// opens gate: the moment between the kernel's accept and the server
// registering the connection, held open.
type gatedListener struct {
	net.Listener
	accepted chan struct{}
	gate     chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted <- struct{}{}
	<-l.gate
	return nc, nil
}

// startBare runs a server with the dev provider on l and leaves its
// shutdown to the test; served receives what Serve returns.
func startBare(t *testing.T, l net.Listener) (srv *Server, served <-chan error) {
	t.Helper()
	p := pool.New(pool.Config{Provider: provider.Dev{}})
	t.Cleanup(p.Close)
	srv = New(Config{Tokens: p, Deadline: time.Minute})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	return srv, done
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attestd.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

// waitStopsOrdered returns once every connection of srv has been told
// to stop reading, at once or at a set time.
func waitStopsOrdered(t *testing.T, srv *Server) {
	t.Helper()
	poll.Until(t, "Shutdown to stop the connections", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.conns) == 0 {
			return false
		}
		for c := range srv.conns {
			if !c.isStopping() {
				return false
			}
		}
		return true
	})
}

func expectToken(t *testing.T, c *rawConn) {
	t.Helper()
	c.send(`{"id":7,"method":"attestation/generate"}` + "\n")
	if m := c.recv(); m["result"] == nil {
		t.Fatalf("request not answered with a token: %v", m)
	}
}

// A client that dials and writes just as Shutdown begins (the daemon's
// idle exit, SIGTERM) gets its requests answered, not a closed
// connection, even when its first line is a notification.
func TestShutdownAnswersAJustAcceptedConnection(t *testing.T) {
	l, path := listen(t)
	srv, served := startBare(t, l)
	c := (&testServer{path: path}).dial(t)
	poll.Until(t, "the connection to be registered", func() bool { return srv.Conns() == 1 })

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	waitStopsOrdered(t, srv) // the lines below are written after Shutdown stopped reading
	c.send(`{"method":"attestation/warm"}` + "\n")
	expectToken(t, c)
	c.expectClosed()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
}

// A connection is stopped at once, or read on until the time it is given
// when that is still ahead.
func TestStopReadingAt(t *testing.T) {
	tests := []struct {
		name        string
		sentALine   bool
		ahead       time.Duration // until - now
		wantStopNow bool
	}{
		{"time ahead", false, time.Minute, false},
		{"time ahead, has sent a line", true, time.Minute, false},
		{"time passed", false, -time.Second, true},
		{"time passed, has sent a line", true, -time.Second, true},
		{"time is now", false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path := listen(t)
			srv, served := startBare(t, l)
			client := (&testServer{path: path}).dial(t)
			if tt.sentALine {
				expectToken(t, client)
			}
			poll.Until(t, "the connection to be registered", func() bool { return srv.Conns() == 1 })
			now := time.Now()
			srv.mu.Lock()
			for c := range srv.conns {
				c.stopReadingAt(now.Add(tt.ahead), now)
				c.rmu.Lock()
				stopNow, lingering := c.stopping, c.lingering
				c.rmu.Unlock()
				if stopNow != tt.wantStopNow || lingering == tt.wantStopNow {
					t.Errorf("stopping %v, lingering %v; want stopping %v", stopNow, lingering, tt.wantStopNow)
				}
			}
			srv.mu.Unlock()
			if tt.wantStopNow {
				client.expectClosed()
			} else {
				expectToken(t, client) // still read and answered
				expectToken(t, client)
				client.nc.Close()
			}
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-served
		})
	}
}

// ShutdownIfIdle leaves a server with an open connection serving, and
// shuts down one with none.
func TestShutdownIfIdle(t *testing.T) {
	l, path := listen(t)
	srv, served := startBare(t, l)
	ts := &testServer{path: path}
	c := ts.dial(t)
	expectToken(t, c)
	if idle, err := srv.ShutdownIfIdle(context.Background()); idle || err != nil {
		t.Fatalf("ShutdownIfIdle with a connection open = %v, %v; want false, nil", idle, err)
	}
	other := ts.dial(t) // still accepting
	expectToken(t, other)

	c.nc.Close()
	other.nc.Close()
	poll.Until(t, "every connection to end", func() bool { return srv.Conns() == 0 })
	if idle, err := srv.ShutdownIfIdle(context.Background()); !idle || err != nil {
		t.Fatalf("ShutdownIfIdle with no connection = %v, %v; want true, nil", idle, err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("a server shut down when idle still accepts")
	}
}

// A connection the listener accepted just before ShutdownIfIdle found no
// connection open, but handed over just after, is served: the daemon
// exits idle without closing a connection it has taken from launchd.
func TestShutdownIfIdleServesAConnectionHandedOverLate(t *testing.T) {
	inner, path := listen(t)
	l := &gatedListener{Listener: inner, accepted: make(chan struct{}, 1), gate: make(chan struct{})}
	srv, served := startBare(t, l)
	c := (&testServer{path: path}).dial(t)
	<-l.accepted // accepted by the kernel, not yet by the server
	if n := srv.Conns(); n != 0 {
		t.Fatalf("%d connections registered before the gate opened", n)
	}

	type result struct {
		idle bool
		err  error
	}
	shut := make(chan result, 1)
	go func() {
		idle, err := srv.ShutdownIfIdle(context.Background())
		shut <- result{idle, err}
	}()
	poll.Until(t, "ShutdownIfIdle to begin", srv.isClosing)
	close(l.gate)
	expectToken(t, c)
	c.expectClosed()
	if r := <-shut; !r.idle || r.err != nil {
		t.Fatalf("ShutdownIfIdle = %v, %v; want true, nil", r.idle, r.err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
}
