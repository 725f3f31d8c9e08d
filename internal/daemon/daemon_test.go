package daemon

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience bounds every wait for something that must happen.
const patience = 10 * time.Second

// running is a Run in progress.
type running struct {
	stop context.CancelFunc
	done chan error // what Run returned
}

// start runs the daemon with cfg on listeners until the test stops it;
// at cleanup it is stopped if still running.
func start(t *testing.T, cfg Config, listeners ...net.Listener) *running {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	r := &running{stop: stop, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg, listeners) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-r.done:
		case <-time.After(patience):
			t.Errorf("Run did not return after its context ended")
		}
	})
	return r
}

// result waits for what Run returns.
func (r *running) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for cleanup
		return err
	case <-time.After(patience):
		t.Fatalf("Run did not return within %v", patience)
		return nil
	}
}

// stillRunning fails the test if Run has returned.
func (r *running) stillRunning(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		t.Fatalf("Run returned %v while it should serve", err)
	default:
	}
}

// listen makes the daemon's own socket in a temporary directory.
func listen(t *testing.T) (*socket.Listener, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attestd.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

// launchdSocket is a listening socket held, as launchd holds one, by the
// test: each daemon gets its own copy with inherit, as with --listen-fd,
// and a connection made while no daemon runs waits in its queue.
type launchdSocket struct {
	path string
	l    *socket.Listener
}

func newLaunchdSocket(t *testing.T) *launchdSocket {
	t.Helper()
	l, path := listen(t)
	t.Cleanup(func() { l.Close() })
	return &launchdSocket{path: path, l: l}
}

// inherit returns the listener a daemon started on this socket gets.
func (s *launchdSocket) inherit(t *testing.T) net.Listener {
	t.Helper()
	f, err := s.l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	l, err := socket.ListenFD(fd) // takes fd over
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// devConfig is a daemon with the development provider and the given
// pool windows.
func devConfig() Config {
	return Config{Pool: pool.Config{Provider: provider.Dev{}}, Server: server.Config{Version: "test"}}
}

// token asks the daemon on path for a token and checks that one came.
func token(t *testing.T, cl *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	tok, err := cl.Token(ctx)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if _, err := header.Decode(tok); err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
}

// tokenAsync asks for a token in the background; the channel gets its
// error. The client waits longer than patience, so an error that comes
// within patience is the daemon's.
func tokenAsync(path string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		cl := client.New(path)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
		defer cancel()
		_, err := cl.Token(ctx)
		errc <- err
	}()
	return errc
}

func receive[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(patience):
		t.Fatalf("timed out after %v waiting for %s", patience, what)
		var zero T
		return zero
	}
}

// gatedProvider makes a development token only once released; started
// gets a value each time a generation begins.
type gatedProvider struct {
	started chan struct{}
	release chan struct{}
}

func newGatedProvider() *gatedProvider {
	return &gatedProvider{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (p *gatedProvider) Name() string { return header.KindDev }

func (p *gatedProvider) Generate(ctx context.Context) (provider.Answer, error) {
	p.started <- struct{}{}
	select {
	case <-p.release:
		return provider.Dev{}.Generate(ctx)
	case <-ctx.Done():
		return provider.Answer{}, ctx.Err()
	}
}

// notifyingListener says when the daemon closes it: the moment it stops
// accepting.
type notifyingListener struct {
	net.Listener
	closed chan struct{}
}

func (l *notifyingListener) Close() error {
	select {
	case l.closed <- struct{}{}:
	default:
	}
	return l.Listener.Close()
}

func notifying(l net.Listener) *notifyingListener {
	return &notifyingListener{Listener: l, closed: make(chan struct{}, 1)}
}

// A request already read when the daemon is told to stop is answered
// with its token, and then Run returns nil.
func TestRunDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	inner, path := listen(t)
	l := notifying(inner)
	prov := newGatedProvider()
	cfg := devConfig()
	cfg.Pool.Provider = prov
	cfg.Server.Deadline = time.Minute
	r := start(t, cfg, l)

	answer := tokenAsync(path)
	receive(t, "the request to reach the provider", prov.started)
	r.stop()
	receive(t, "the daemon to stop accepting", l.closed)
	close(prov.release)
	if err := receive(t, "the answer", answer); err != nil {
		t.Fatalf("the request in flight got %v, want its token", err)
	}
	if err := r.result(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A drain that outlasts ShutdownGrace is cut short: the connection of a
// request still waiting is closed, although its deadline is far off, and
// Run returns nil.
func TestRunShutdownGraceBoundsTheDrain(t *testing.T) {
	t.Parallel()
	l, path := listen(t)
	prov := newGatedProvider()
	cfg := devConfig()
	cfg.Pool.Provider = prov
	cfg.Server.Deadline = time.Minute
	cfg.ShutdownGrace = 50 * time.Millisecond
	r := start(t, cfg, l)

	answer := tokenAsync(path)
	receive(t, "the request to reach the provider", prov.started)
	r.stop()
	if err := receive(t, "the connection to be closed", answer); err == nil {
		t.Fatal("a request still waiting after the grace got a token")
	}
	close(prov.release) // the request ends; the server stops waiting for it
	if err := r.result(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A socket-activated daemon stays while a connection is open, exits with
// nil by itself once the pool's busy and warm windows are over and no
// connection has been open for ExitIdle, and a connection made meanwhile
// waits in the socket for the next daemon, which answers it.
func TestRunExitsWhenIdle(t *testing.T) {
	t.Parallel()
	sock := newLaunchdSocket(t)
	const windows, exitIdle = 20 * time.Millisecond, 50 * time.Millisecond
	cfg := devConfig()
	cfg.Pool.BusyWindow, cfg.Pool.WarmWindow, cfg.ExitIdle = windows, windows, exitIdle
	r := start(t, cfg, sock.inherit(t))

	cl := client.New(sock.path)
	token(t, cl)
	// An open connection keeps the daemon well past the windows and the
	// idle time. (Waiting proves only an absence here, so a slow machine
	// can only make this pass, not fail.)
	time.Sleep(10 * (windows + exitIdle))
	r.stillRunning(t)
	cl.Close()
	if err := r.result(t); err != nil {
		t.Fatalf("idle exit: Run = %v, want nil", err)
	}

	// The next client connects while no daemon runs; launchd would start
	// one for it, and that one answers.
	next, err := net.Dial("unix", sock.path)
	if err != nil {
		t.Fatalf("the socket must outlive the daemon, as launchd's does: %v", err)
	}
	defer next.Close()
	io.WriteString(next, `{"id":2,"method":"attestation/generate"}`+"\n")
	start(t, devConfig(), sock.inherit(t))
	next.SetReadDeadline(time.Now().Add(patience))
	if line, err := bufio.NewReader(next).ReadString('\n'); err != nil || !strings.Contains(line, `"id":2`) || !strings.Contains(line, `"token":"v1.`) {
		t.Fatalf("the next daemon's answer %q: %v", line, err)
	}
}

// Without ExitIdle a daemon never exits on its own, however idle.
func TestRunWithoutExitIdleStays(t *testing.T) {
	t.Parallel()
	sock := newLaunchdSocket(t)
	cfg := devConfig()
	cfg.Pool.BusyWindow, cfg.Pool.WarmWindow = time.Millisecond, time.Millisecond
	r := start(t, cfg, sock.inherit(t))
	cl := client.New(sock.path)
	token(t, cl)
	cl.Close()                         // the daemon is idle from now on
	time.Sleep(200 * time.Millisecond) // an absence, as above
	r.stillRunning(t)
}

// gatedListener hands over each accepted connection only once the test
// opens gate: the moment between the kernel's accept and the server
// registering the connection, held open.
type gatedListener struct {
	*notifyingListener
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

// A connection the listener accepted just before the daemon stopped
// accepting, whether told to stop or exiting idle, is served: a client
// that dials and writes as the daemon stops gets its answer, not a
// closed connection.
func TestRunServesAConnectionAcceptedJustBeforeShutdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		exitIdle bool
	}{
		{"told to stop", false},
		{"exiting idle", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner, path := listen(t)
			l := &gatedListener{notifyingListener: notifying(inner), accepted: make(chan struct{}, 1), gate: make(chan struct{})}
			// The client is in the socket's queue before the daemon runs,
			// so the daemon cannot exit idle before the kernel accepts it.
			nc, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			io.WriteString(nc, `{"id":1,"method":"attestation/generate"}`+"\n")
			cfg := devConfig()
			if tc.exitIdle {
				cfg.Pool.BusyWindow, cfg.Pool.WarmWindow, cfg.ExitIdle = time.Millisecond, time.Millisecond, 20*time.Millisecond
			}
			r := start(t, cfg, l)

			receive(t, "the kernel to accept the connection", l.accepted)
			if !tc.exitIdle {
				r.stop()
			}
			receive(t, "the daemon to stop accepting", l.closed)
			close(l.gate)
			nc.SetReadDeadline(time.Now().Add(patience))
			if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || !strings.Contains(line, `"token":"v1.`) {
				t.Fatalf("the connection accepted as the daemon stopped got %q, %v; want a token", line, err)
			}
			if err := r.result(t); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
		})
	}
}

// A provider that cannot start does not stop the daemon: every request
// gets the reason and hint at once, and status shows the reason as the
// pool's last error before any request has run into it.
func TestRunServesAProviderThatCannotStart(t *testing.T) {
	t.Parallel()
	const advice = "use --provider dev for development"
	for _, tc := range []struct {
		name     string
		provider func() provider.Provider
		hint     string
	}{
		{"a start that fails", func() provider.Provider {
			return provider.NewLazy(provider.LazyConfig{Kind: header.KindDeviceCheck, Start: func() (provider.Provider, error) {
				return nil, &provider.Error{Reason: provider.ReasonUnsupported, Msg: "not here", HintText: advice}
			}})
		}, advice},
		{"DeviceCheck off a Mac", func() provider.Provider { return DeviceCheck(nil) }, "--provider dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "DeviceCheck off a Mac" && runtime.GOOS == "darwin" {
				t.Skip("DeviceCheck may start here")
			}
			l, path := listen(t)
			cfg := devConfig()
			cfg.Pool.Provider = tc.provider()
			r := start(t, cfg, l)
			cl := client.New(path)
			defer cl.Close()

			waitStatus(t, cl, func(st protocol.StatusResult) bool {
				return st.Pool.LastError != nil && st.Pool.LastError.Reason == provider.ReasonUnsupported && st.Pool.ConsecutiveFailures >= 1
			})
			for range 3 { // each is answered, none starts anything
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				_, err := cl.Token(ctx)
				cancel()
				if provider.ReasonOf(err) != provider.ReasonUnsupported || !strings.Contains(hint.Of(err), tc.hint) {
					t.Fatalf("generate: %v (reason %q, hint %q), want reason unsupported and hint %q", err, provider.ReasonOf(err), hint.Of(err), tc.hint)
				}
			}
			r.stillRunning(t)
		})
	}
}

// waitStatus polls attestation/status until cond holds.
func waitStatus(t *testing.T, cl *client.Client, cond func(protocol.StatusResult) bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		st, err := cl.Status(ctx)
		cancel()
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never came to the state wanted; last: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

// A signal on Stop stops the daemon as the end of its context does, and
// Serving is called once it serves.
func TestRunStopsOnASignal(t *testing.T) {
	t.Parallel()
	l, path := listen(t)
	stop := make(chan os.Signal, 1)
	serving := make(chan struct{})
	cfg := devConfig()
	cfg.Stop, cfg.Serving = stop, func() { close(serving) }
	r := start(t, cfg, l)
	receive(t, "Serving to be called", serving)
	cl := client.New(path)
	token(t, cl)
	cl.Close()
	stop <- syscall.SIGHUP
	if err := r.result(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("a stopped daemon still accepts")
	}
}

// failingListener fails at once, as a listener whose socket was lost.
type failingListener struct{ net.Listener }

var errLost = errors.New("listener lost")

func (failingListener) Accept() (net.Conn, error) { return nil, errLost }

// A listener that fails stops the daemon, and Run returns its error.
func TestRunReturnsAListenerFailure(t *testing.T) {
	t.Parallel()
	l, _ := listen(t)
	r := start(t, devConfig(), failingListener{l})
	if err := r.result(t); !errors.Is(err, errLost) {
		t.Fatalf("Run = %v, want the listener's error", err)
	}
}

func TestRunNeedsAListenerAndAProvider(t *testing.T) {
	t.Parallel()
	l, _ := listen(t)
	defer l.Close()
	if err := Run(context.Background(), devConfig(), nil); err == nil {
		t.Error("Run with no listener returned nil")
	}
	if err := Run(context.Background(), Config{}, []net.Listener{l}); err == nil {
		t.Error("Run with no provider returned nil")
	}
}
