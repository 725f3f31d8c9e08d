package client

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// daemon runs a server at path until the returned stop is called.
func daemon(t *testing.T, path string, prov provider.Provider) (stop func()) {
	t.Helper()
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(pool.Config{Provider: prov})
	srv := server.New(server.Config{Tokens: p, Deadline: 2 * time.Second})
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Shutdown(context.Background())
			<-done
			p.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestTokenAndStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	daemon(t, path, provider.Dev{})
	c := New(path)
	defer c.Close()
	c.Warm()
	tok, err := c.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := header.Decode(tok); err != nil || v.Kind != header.KindDev {
		t.Fatalf("token %q: %v", tok, err)
	}
	st, err := c.Status(context.Background())
	if err != nil || st.Provider != "dev" || st.Pool.Counters.Served < 1 {
		t.Fatalf("status = %+v, %v", st, err)
	}
}

func TestUnreachableDaemon(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "missing.sock"))
	defer c.Close()
	_, err := c.Token(context.Background())
	if provider.ReasonOf(err) != provider.ReasonDaemonUnreachable || hint.Of(err) == "" {
		t.Fatalf("err = %v (reason %s)", err, provider.ReasonOf(err))
	}
}

func TestRemoteErrorKeepsReasonAndAppleCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	dc := &provider.Error{Reason: provider.ReasonUnsupported, Msg: "featureUnsupported", DCCode: 1, HasDCCode: true}
	daemon(t, path, &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Err: dc} }})
	c := New(path)
	defer c.Close()
	_, err := c.Token(context.Background())
	code, ok := provider.DCErrorCodeOf(err)
	if provider.ReasonOf(err) != provider.ReasonUnsupported || !ok || code != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestRedialsAfterDaemonRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	stop := daemon(t, path, provider.Dev{})
	c := New(path)
	defer c.Close()
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := c.Token(context.Background()); err == nil {
		t.Fatal("token from a stopped daemon")
	}
	daemon(t, path, provider.Dev{})
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestConcurrentCallsShareOneConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	daemon(t, path, provider.Dev{})
	c := New(path)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Token(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallsAfterCloseFail(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "s.sock"))
	c.Close()
	if _, err := c.Token(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}
