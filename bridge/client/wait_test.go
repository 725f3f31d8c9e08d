package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
)

// daemonWithPool runs a server over a pool of prov and returns the pool,
// so a test can watch what the client's calls did to it.
func daemonWithPool(t *testing.T, prov provider.Provider) (string, *pool.Pool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(pool.Config{Provider: prov, MaxAge: time.Hour})
	srv := server.New(server.Config{Tokens: p})
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-done
		p.Close()
	})
	return path, p
}

func TestWaitReadyWaitsForTheDaemonsToken(t *testing.T) {
	release := make(chan struct{})
	prov := &providertest.Scripted{Script: func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Release: release}
		}
		return providertest.Step{}
	}, Started: make(chan int, 10)}
	path, p := daemonWithPool(t, prov)
	c := New(path)
	defer c.Close()
	got := make(chan error, 1)
	go func() { got <- c.WaitReady(context.Background()) }()
	<-prov.Started // the wait warmed the daemon's pool
	poll.Until(t, "the wait to reach the pool", func() bool { return p.Status().WaitingReady == 1 })
	close(release)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.Ready < 1 || st.Counters.Served != 0 {
		t.Fatalf("after WaitReady the daemon's pool is %+v; want a token ready and none taken", st)
	}
}

func TestWaitReadyEndsWithContext(t *testing.T) {
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Hang: true} }}
	path, _ := daemonWithPool(t, prov)
	c := New(path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ctx's error", err)
	}
}

func TestWaitReadyReportsAFailingProvider(t *testing.T) {
	dc := &provider.Error{Reason: provider.ReasonNoGUISession, Msg: "no GUI session"}
	path, _ := daemonWithPool(t, &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Err: dc} }})
	c := New(path)
	defer c.Close()
	for i := range 2 { // the failure, then the backoff
		err := c.WaitReady(context.Background())
		if provider.ReasonOf(err) != provider.ReasonNoGUISession {
			t.Fatalf("call %d: err = %v (reason %s), want no_gui_session", i, err, provider.ReasonOf(err))
		}
	}
}

func TestWaitReadyUnreachable(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "missing.sock"))
	defer c.Close()
	if err := c.WaitReady(context.Background()); provider.ReasonOf(err) != provider.ReasonDaemonUnreachable {
		t.Fatalf("err = %v", err)
	}
}

// A daemon from before the wait answers attestation/warm with {} at
// once; WaitReady then has nothing to wait on and returns.
func TestWaitReadyAgainstAnOlderDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			msg, id, err := jsonrpc.Decode(sc.Bytes())
			if err != nil || msg.(*jsonrpc.Request).Method != protocol.MethodWarm {
				return
			}
			line, _ := jsonrpc.EncodeResult(id, struct{}{})
			nc.Write(line)
		}
	}()
	c := New(path)
	defer c.Close()
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Turn hints reach the daemon in order (a completion before its start
// would be ignored, leaving 3), and the daemon ends the connection's
// turns when the client goes away.
func TestTurnHints(t *testing.T) {
	path, p := daemonWithPool(t, provider.Dev{})
	c := New(path)
	c.TurnStarted()
	c.TurnCompleted()
	c.TurnStarted()
	c.TurnStarted()
	c.flushHints()
	// The daemon reads one connection's lines in order: once this call
	// is answered, the hints written before it have been acted on.
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.Status().Turns; got != 2 {
		t.Fatalf("turns = %d, want 2", got)
	}
	c.Close()
	poll.Until(t, "the closed connection's turns to end", func() bool { return p.Status().Turns == 0 })
}

// A call whose deadline has passed before it is sent fails alone: it
// neither writes nor ends the connection that the other calls (here a
// hold waiting for a token) share.
func TestExpiredCallLeavesTheConnectionAlone(t *testing.T) {
	path, p := daemonWithPool(t, &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Hang: true} }})
	c := New(path)
	defer c.Close()
	waited := make(chan error, 1)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { waited <- c.WaitReady(wctx) }()
	poll.Until(t, "the wait to reach the pool", func() bool { return p.Status().WaitingReady == 1 })
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()

	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancelExpired()
	if _, err := c.Token(expired); provider.ReasonOf(err) != provider.ReasonTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired call: err = %v (reason %s), want a timeout", err, provider.ReasonOf(err))
	}
	if s.dead() {
		t.Fatalf("the expired call ended the shared connection: %v", s.cause())
	}
	select {
	case err := <-waited:
		t.Fatalf("the wait on the shared connection ended with the expired call: %v", err)
	default:
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v, want its own cancellation", err)
	}
}

// TestWaitTokenOutlastsAColdPool: the first generation is held until the
// daemon has answered "timeout" at least once; WaitToken asks again and
// gets the token, where a single Token call fails.
func TestWaitTokenOutlastsAColdPool(t *testing.T) {
	release := make(chan struct{})
	prov := &providertest.Scripted{Script: func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Release: release}
		}
		return providertest.Step{}
	}}
	path, p := daemonWithPool(t, prov)
	c := New(path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Token(ctx); provider.ReasonOf(err) != provider.ReasonTimeout {
		t.Fatalf("Token on a cold pool = %v, want reason timeout", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := c.WaitToken(ctx)
		got <- err
	}()
	// Let the held generation go only once WaitToken has itself been
	// told "timeout", so that only a retry can bring its token.
	poll.Until(t, "WaitToken to hear timeout", func() bool { return p.Status().Counters.Timeouts >= 2 })
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("WaitToken = %v, want a token", err)
	}
}
