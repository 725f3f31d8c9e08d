package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/socket"
)

// daemonProc is a running "attestd serve".
type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	exited chan error
	stderr *strings.Builder
	mu     *sync.Mutex
	grew   chan struct{} // buffered 1: a line was added to stderr
}

// startDaemon runs attestd serve with args and returns once it logs that
// it is serving. It is killed at cleanup if still running.
func startDaemon(t *testing.T, sock string, extra ...string) *daemonProc {
	t.Helper()
	args := append([]string{"serve", "--provider", "dev", "--log-level", "debug"}, extra...)
	if sock != "" {
		args = append(args, "--socket", sock)
	}
	cmd := exec.Command(attestdBinary(t), args...)
	return runDaemon(t, cmd, sock)
}

func runDaemon(t *testing.T, cmd *exec.Cmd, sock string) *daemonProc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, socket: sock, exited: make(chan error, 1), stderr: &strings.Builder{}, mu: &sync.Mutex{},
		grew: make(chan struct{}, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			d.mu.Lock()
			d.stderr.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.grew <- struct{}{}:
			default:
			}
			if strings.Contains(sc.Text(), "attestd serving") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, stderr)
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-ready // never blocks past exit: closed below if it never became ready
	})
	select {
	case <-ready:
	case err := <-d.exited:
		close(ready)
		t.Fatalf("daemon exited before serving: %v\n%s", err, d.log())
	case <-time.After(30 * time.Second):
		close(ready)
		t.Fatalf("daemon did not start:\n%s", d.log())
	}
	return d
}

func (d *daemonProc) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// waitLog waits until the daemon's stderr contains want, failing the test
// if the daemon exits first or 30 s pass.
func (d *daemonProc) waitLog(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !strings.Contains(d.log(), want) {
		select {
		case <-d.grew:
		case err := <-d.exited:
			d.exited <- err // for wait
			if !strings.Contains(d.log(), want) {
				t.Fatalf("daemon exited (%v) before logging %q:\n%s", err, want, d.log())
			}
		case <-timeout:
			t.Fatalf("daemon did not log %q:\n%s", want, d.log())
		}
	}
}

func (d *daemonProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.exited:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit:\n%s", d.log())
		return nil
	}
}

// TestDaemonServesDistinctDevTokens is the end-to-end check: the
// real binary, a temp socket, 200 header values from several goroutines.
func TestDaemonServesDistinctDevTokens(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	d := startDaemon(t, sock, "--deadline", "2s")

	const workers, each = 8, 25
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := client.New(sock)
			defer cl.Close()
			for range each {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				tok, err := cl.Token(ctx)
				cancel()
				if err != nil {
					errs <- err
					continue
				}
				v, err := header.Decode(tok)
				if err != nil {
					errs <- err
					continue
				}
				if v.Kind != header.KindDev {
					errs <- errors.New("kind " + v.Kind)
				}
				mu.Lock()
				if seen[tok] {
					errs <- errors.New("a token was handed out twice")
				}
				seen[tok] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct tokens, want %d", len(seen), workers*each)
	}

	// No token reaches the log: only fingerprints.
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log())
	}
	logText := d.log()
	for tok := range seen {
		if strings.Contains(logText, tok) || strings.Contains(logText, tok[len(header.Prefix):len(header.Prefix)+20]) {
			t.Fatal("a token appears in the daemon's log")
		}
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after SIGTERM: %v", err)
	}
}

func TestTokenAndStatusCommands(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	startDaemon(t, sock)
	out, err := exec.Command(attestdBinary(t), "token", "--socket", sock).Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := header.Decode(strings.TrimSpace(string(out))); err != nil {
		t.Fatalf("token printed %q: %v", out, err)
	}
	// The socket is found through $ATTESTD_SOCKET, as launchd exports it.
	cmd := exec.Command(attestdBinary(t), "status")
	cmd.Env = append(os.Environ(), socket.EnvVar+"="+sock)
	out, err = cmd.Output()
	if err != nil || !strings.Contains(string(out), `"provider": "dev"`) {
		t.Fatalf("status: %v\n%s", err, out)
	}
}

func TestTokenWithoutDaemonSaysWhatToDo(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, nil, "", "token", "--socket", filepath.Join(t.TempDir(), "none.sock"), "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "unreachable") || !strings.Contains(errOut, "attestd: hint: start it with") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

func TestSecondDaemonRefuses(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	startDaemon(t, sock)
	cmd := exec.Command(attestdBinary(t), "serve", "--provider", "dev", "--socket", sock)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "already listening") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}
}

func TestServeInheritedFD(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	l, err := socket.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(attestdBinary(t), "serve", "--provider", "dev", "--listen-fd", "3")
	cmd.ExtraFiles = []*os.File{f}
	runDaemon(t, cmd, sock)
	f.Close()
	cl := client.New(sock)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.WaitToken(ctx); err != nil {
		t.Fatal(err)
	}
}

// inheritedSocket is a listening socket made the way launchd makes one: the
// test holds it, and each daemon started with serveOnFD gets it as fd 3.
// Connections made while no daemon runs wait in its backlog.
type inheritedSocket struct {
	path string
	l    *socket.Listener
}

func newInheritedSocket(t *testing.T) *inheritedSocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "attestd.sock") // run/ is made 0700
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &inheritedSocket{path: path, l: l}
}

// serve starts "attestd serve --listen-fd 3" with args on the socket and
// returns once it logs that it is serving.
func (s *inheritedSocket) serve(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	f, err := s.l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(attestdBinary(t), append([]string{"serve", "--listen-fd", "3", "--log-level", "debug"}, args...)...)
	cmd.ExtraFiles = []*os.File{f}
	return runDaemon(t, cmd, s.path)
}

// TestSocketActivatedDaemonExitsWhenIdle is issue 10's idle exit through
// the real binary and its flags: a daemon on an inherited socket
// (--listen-fd with --exit-idle) exits 0 by itself once idle, and the next
// connection, queued on the socket meanwhile, is served by the next
// daemon, as launchd would start it. It makes no request before the exit,
// which would keep the pool busy for its 10 s busy window; what keeps a
// daemon (an open connection, the pool's busy and warm windows) is
// internal/daemon's TestRunExitsWhenIdle, with short windows.
func TestSocketActivatedDaemonExitsWhenIdle(t *testing.T) {
	t.Parallel()
	sock := newInheritedSocket(t)
	d := sock.serve(t, "--provider", "dev", "--exit-idle", "200ms")
	if err := d.wait(t); err != nil {
		t.Fatalf("idle exit: %v, want exit status 0\n%s", err, d.log())
	}
	if !strings.Contains(d.log(), "exiting: idle") {
		t.Fatalf("no idle-exit line in the log:\n%s", d.log())
	}

	// The next client connects while no daemon runs; launchd would start
	// one for it, and that one answers.
	next, err := net.Dial("unix", sock.path)
	if err != nil {
		t.Fatalf("the socket must outlive the daemon, as launchd's does: %v", err)
	}
	defer next.Close()
	io.WriteString(next, `{"id":2,"method":"attestation/generate"}`+"\n")
	d2 := sock.serve(t, "--provider", "dev")
	next.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(next).ReadString('\n'); err != nil || !strings.Contains(line, `"id":2`) {
		t.Fatalf("the restarted daemon's answer %q: %v\n%s", line, err, d2.log())
	}
	d2.cmd.Process.Signal(syscall.SIGTERM)
	if err := d2.wait(t); err != nil {
		t.Fatal(err)
	}
}
