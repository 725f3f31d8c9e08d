package appattestsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/bridge/stdio"
	"github.com/attestd/attestd/internal/appattestsim"
	"github.com/attestd/attestd/internal/appattestsim/regtest"
	"github.com/attestd/attestd/internal/daemon"
)

const patience = 20 * time.Second

// kindOf returns a header value's kind.
func kindOf(t *testing.T, value string) string {
	t.Helper()
	k := regtest.Kind(value)
	if k == "" {
		t.Fatalf("value %q is neither a known kind nor aa", value)
	}
	return k
}

// runDaemon runs the daemon with p on a fresh socket until the test ends,
// and returns the socket's path.
func runDaemon(t *testing.T, p provider.Provider) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aasim") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "attestd.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{Pool: pool.Config{Provider: p, BundleID: "dev.attestd.sim", TeamID: "ABCDE12345"},
			Server: server.Config{Version: "test", Deadline: 10 * time.Second}}, []net.Listener{l})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(patience):
			t.Error("the daemon did not stop")
		}
	})
	return path
}

func token(t *testing.T, cl *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	v, err := cl.Token(ctx)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return v
}

// TestThroughTheDaemonSocket: the daemon serves development tokens while
// the registration server is down, then, once the simulated key is
// registered, App Attest values that verify against it, concurrently
// requested and checked in the opposite order; status says so.
func TestThroughTheDaemonSocket(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	srv.SetDown(true)
	s, w := newSim(t, srv, nil)
	path := runDaemon(t, s)
	cl := client.New(path)
	defer cl.Close()

	if k := kindOf(t, token(t, cl)); k != header.KindDev {
		t.Fatalf("while the server is down: kind %q", k)
	}
	st, err := cl.Status(context.Background())
	if err != nil || st.Provider != appattestsim.Name || st.Pool.AppAttest == nil || st.Pool.AppAttest.Registered {
		t.Fatalf("status %+v, %v", st, err)
	}
	srv.SetDown(false)
	w.Wait(t, logRegistered, 20*time.Second)

	// Development tokens made ahead may still be ready: they come first.
	var values []string
	for len(values) < 4 {
		v := token(t, cl)
		if kindOf(t, v) == header.KindAppAttest {
			values = append(values, v)
		} else if len(values) > 0 {
			t.Fatal("a development token after an App Attest value")
		}
	}
	var wg sync.WaitGroup
	more := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			c := client.New(path)
			defer c.Close()
			more <- token(t, c)
		})
	}
	wg.Wait()
	close(more)
	for v := range more {
		values = append(values, v)
	}
	slices.Reverse(values)
	for i, v := range values {
		if _, err := srv.Check(v); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	st, err = cl.Status(context.Background())
	if err != nil || !st.Pool.AppAttest.Registered || st.Pool.LastKind != "aa" || st.Pool.ServedByKind["aa"] != 8 || st.Pool.ServedByKind["dev"] < 1 {
		t.Fatalf("status after: %+v, %v", st.Pool, err)
	}
}

// TestOnDemandAndReady: by default an assertion is made per request and
// none ahead; with Ready, that many are kept made ahead. Both modes with a
// simulated latency.
func TestOnDemandAndReady(t *testing.T) {
	t.Parallel()
	for _, ready := range []int{0, 2} {
		t.Run(fmt.Sprintf("ready %d", ready), func(t *testing.T) {
			t.Parallel()
			srv := regtest.New(t, appID)
			s, w := newSim(t, srv, func(c *appattestsim.Config) { c.Latency, c.Ready = 15*time.Millisecond, ready })
			s.Start()
			w.Wait(t, logRegistered, 20*time.Second)
			p := pool.New(pool.Config{Provider: s, Size: 3})
			defer p.Close()
			p.Warm()
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if err := p.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			if st := p.Status(); st.Target != ready {
				t.Fatalf("target %d, want %d", st.Target, ready)
			}
			if ready == 0 {
				if st := p.Status(); st.Ready != 0 || st.Counters.Generated != 0 {
					t.Fatalf("on demand, yet %d ready, %d made", st.Ready, st.Counters.Generated)
				}
				v, err := p.Token(ctx)
				if err != nil || kindOf(t, v) != header.KindAppAttest {
					t.Fatalf("Token = %q, %v", v, err)
				}
				if _, err := srv.Check(v); err != nil {
					t.Fatal(err)
				}
				return
			}
			v, ok := p.TryToken() // one is ready: no wait, no generation
			if !ok || kindOf(t, v) != header.KindAppAttest {
				t.Fatalf("TryToken = %q, %v", v, ok)
			}
			if _, err := srv.Check(v); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// childPipe is the fake app-server's stdin: it collects the lines the
// bridge writes to it.
type childPipe struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (c *childPipe) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := slices.Index(c.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.lines <- string(c.buf[:i])
		c.buf = c.buf[i+1:]
	}
}

func (c *childPipe) Close() error { return nil }

// TestThroughTheBridge: the stdio bridge in front of a fake app-server
// answers its attestation/generate requests with App Attest values from an
// in-process pool over the simulator, each verifying against the
// registered key in any order.
func TestThroughTheBridge(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	s, w := newSim(t, srv, nil)
	s.Start()
	w.Wait(t, logRegistered, 20*time.Second)
	p := pool.New(pool.Config{Provider: s})
	defer p.Close()

	clientR, clientW := io.Pipe()
	childOutR, childOutW := io.Pipe()
	child := &childPipe{lines: make(chan string, 64)}
	served := make(chan error, 1)
	b := &stdio.Bridge{Source: p, Deadline: 5 * time.Second}
	go func() { served <- b.Serve(clientR, io.Discard, child, childOutR) }()

	io.WriteString(clientW, `{"id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	const n = 5
	go func() {
		for i := range n {
			fmt.Fprintf(childOutW, `{"id":%d,"method":"attestation/generate","params":{}}`+"\n", 100+i)
		}
	}()
	var values []string
	timeout := time.After(patience)
	for len(values) < n {
		select {
		case line := <-child.lines:
			var ans struct {
				ID     int                     `json:"id"`
				Result protocol.GenerateResult `json:"result"`
			}
			if json.Unmarshal([]byte(line), &ans) == nil && ans.Result.Token != "" {
				values = append(values, ans.Result.Token)
			}
		case <-timeout:
			t.Fatalf("%d of %d answers", len(values), n)
		}
	}
	slices.Reverse(values)
	for i, v := range values {
		if _, err := srv.Check(v); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	clientW.Close()
	childOutW.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(patience):
		t.Fatal("the bridge did not stop")
	}
}
