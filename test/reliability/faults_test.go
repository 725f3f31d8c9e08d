package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"github.com/attestd/attestd/bridge/server"
	"go.uber.org/goleak"
)

// proc is a running attestd binary.
type proc struct {
	cmd    *exec.Cmd
	path   string
	stderr *lockedBuffer
	exited chan struct{}
	err    error // cmd.Wait's result; read after exited
}

// startProc runs "attestd serve" on path with the development provider and
// debug logs, and returns once it says it is serving.
func startProc(t testing.TB, path string, extra ...string) *proc {
	t.Helper()
	p := startProcNoWait(t, path, extra...)
	p.waitLog(t, "attestd serving")
	return p
}

// waitLog waits until the daemon's log contains want, failing the test if
// it exits first or 20 s pass.
func (p *proc) waitLog(t testing.TB, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		select {
		case <-p.exited:
			if !strings.Contains(p.stderr.String(), want) {
				t.Fatalf("attestd exited (%v) before logging %q:\n%s", p.err, want, p.stderr.String())
			}
		case <-deadline:
			t.Fatalf("attestd did not log %q:\n%s", want, p.stderr.String())
		case <-p.stderr.grew:
		}
	}
}

func startProcNoWait(t testing.TB, path string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--socket", path, "--provider", "dev", "--log-format", "json", "--log-level", "debug"}, extra...)
	return startCmd(t, path, exec.Command(attestdBin(t), args...))
}

// startCmd starts cmd, an attestd daemon on path (or a wrapper that execs
// one), capturing its stderr unless cmd.Stderr is already set. It is
// killed at cleanup if still running.
func startCmd(t testing.TB, path string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{path: path, stderr: &lockedBuffer{grew: make(chan struct{}, 1)}, exited: make(chan struct{})}
	p.cmd = cmd
	if p.cmd.Stderr == nil {
		p.cmd.Stderr = p.stderr
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// wait returns the exit code, failing the test if the process runs longer
// than d.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("attestd still running after %s:\n%s", d, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestSIGTERMUnderLoad checks the drain: every connection being served
// when SIGTERM comes gets only whole answers, each once, and the daemon
// exits 0 with its socket removed. The signal is sent only once every
// connection has had an answer, so none of them is still dialling (a dial
// after the drain began is rightly refused, and proves nothing).
func TestSIGTERMUnderLoad(t *testing.T) {
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	p := startProc(t, path)
	assertPrivate(t, path)

	const conns = 8
	perConn := 20_000
	if testing.Short() || raceEnabled {
		perConn = 5_000
	}
	ncs := make([]net.Conn, conns)
	for c := range conns {
		nc, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", c, err)
		}
		ncs[c] = nc
	}
	var answered atomic.Int64
	halfway := make(chan struct{})
	var served sync.WaitGroup // each connection's first answer
	served.Add(conns)
	results := make([][]answer, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			first := true
			results[c], errs[c] = untilClosed(ncs[c], c, perConn, func() {
				if answered.Add(1) == 500 {
					close(halfway)
				}
				if first {
					first = false
					served.Done()
				}
			})
			if first {
				served.Done() // closed before any answer: the check below reports it
			}
		})
	}
	allServed := make(chan struct{})
	go func() { served.Wait(); close(allServed) }()
	timeout := time.After(30 * time.Second)
	for _, ch := range []chan struct{}{allServed, halfway} {
		select {
		case <-ch:
		case <-p.exited:
			t.Fatalf("attestd exited under load: %v\n%s", p.err, p.stderr.String())
		case <-timeout:
			t.Fatalf("within 30 s, not every connection had an answer or fewer than 500 requests were answered")
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
	wg.Wait()

	var tokens []string
	seen := map[string]bool{}
	total := 0
	for c := range conns {
		if errs[c] != nil {
			t.Errorf("connection %d: %v", c, errs[c])
		}
		for _, a := range results[c] {
			total++
			if a.Err != nil {
				if a.Err.Code != jsonrpc.CodeAttestation {
					t.Errorf("connection %d: unexpected error %s", c, a.Line)
				}
				continue
			}
			tok := a.token()
			if seen[tok] {
				t.Fatalf("token handed out twice")
			}
			seen[tok] = true
			tokens = append(tokens, tok)
		}
	}
	t.Logf("%d requests answered before the drain ended (%d tokens); the rest were never read", total, len(tokens))
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file still there after exit: %v", err)
	}
	logs := p.stderr.bytes()
	if !bytes.Contains(logs, []byte("draining")) {
		t.Fatalf("no drain in the logs:\n%s", logs)
	}
	assertNoTokensIn(t, logs, tokens)
}

// untilClosed pipelines n generate calls on the connection nc and reads
// answers until the daemon closes it. Each answer must be whole, for an
// id that was sent, and the only one for its id.
func untilClosed(nc net.Conn, c, n int, onAnswer func()) ([]answer, error) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	go func() {
		bw := bufio.NewWriter(nc)
		for i := range n {
			fmt.Fprintf(bw, `{"id":%s,"method":"attestation/generate"}`+"\n", loadID(c, i))
		}
		bw.Flush() // fails once the daemon stops reading and closes
	}()
	var out []answer
	ids := map[string]bool{}
	br := bufio.NewReader(nc)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if len(line) > 0 {
				return out, fmt.Errorf("a partial answer before the close: %.200q", line)
			}
			if !isCleanClose(err) {
				return out, fmt.Errorf("after %d answers: %w", len(out), err)
			}
			return out, nil
		}
		a, err := parseAnswer(line)
		if err != nil {
			return out, err
		}
		if ids[a.ID] {
			return out, fmt.Errorf("two answers for id %s", a.ID)
		}
		ids[a.ID] = true
		out = append(out, a)
		onAnswer()
	}
}

func TestShutdownAnswersRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	d := startDaemon(t, daemonOpts{
		script: func(int) providertest.Step { return providertest.Step{Release: release} },
		pool:   pool.Config{Size: 1},
		server: server.Config{Deadline: 10 * time.Second},
	})
	rc := dialRaw(t, d.path, true)
	const n = 20
	for i := range n {
		fmt.Fprintf(rc.nc, `{"id":%d,"method":"attestation/generate"}`+"\n", i)
	}
	waitFor(t, "20 requests waiting for a token", func() bool { return d.pool.Status().Waiting == n })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- d.srv.Shutdown(ctx)
	}()
	// Shutdown stops new connections at once; in-flight ones wait.
	waitFor(t, "the listener to close", func() bool {
		nc, err := net.Dial("unix", d.path)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	close(release)
	deadline := time.Now().Add(20 * time.Second)
	got := 0
	for got < n {
		line, err := rc.next(t, deadline)
		if line == nil {
			t.Fatalf("connection closed after %d of %d answers: %v", got, n, err)
		}
		a, err := parseAnswer(line)
		if err != nil || a.Err != nil {
			t.Fatalf("in-flight request not served during the drain: %s %v", line, err)
		}
		got++
	}
	if line, err := rc.next(t, deadline); line != nil || !isCleanClose(err) {
		t.Fatalf("want a close after the drain, got %q %v", line, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// waitFor polls an observable condition that has no event of its own,
// failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	dir := filepath.Join(tempDir(t), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "attestd.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // a daemon that died without cleaning up
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket file to test with: %v", err)
	}

	p := startProc(t, path)
	mustToken(t, path)
	assertPrivate(t, path)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, p.stderr.String())
	}
}

func TestSecondDaemonRefuses(t *testing.T) {
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	first := startProc(t, path)
	mustToken(t, path)

	second := startProcNoWait(t, path)
	if code := second.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("second daemon: exit status %d, want 1:\n%s", code, second.stderr.String())
	}
	msg := second.stderr.String()
	for _, want := range []string{"attestd: error:", "already listening", path, "attestd: hint:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("second daemon's message lacks %q:\n%s", want, msg)
		}
	}
	// The first one is untouched: its socket is still there and answers.
	mustToken(t, path)
	first.cmd.Process.Signal(syscall.SIGTERM)
	if code := first.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("first daemon: exit status %d", code)
	}
}

func TestProviderPanicIsAnError(t *testing.T) {
	d := startDaemon(t, daemonOpts{
		script: func(n int) providertest.Step {
			if n == 0 {
				return providertest.Step{Panic: "scripted panic"}
			}
			return providertest.Step{}
		},
		pool: pool.Config{Size: 1},
	})
	cl := client.New(d.path)
	defer cl.Close()
	_, err := cl.Token(context.Background())
	if err == nil || provider.ReasonOf(err) != provider.ReasonProviderError || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("first call: %v, want a provider_error that says the provider panicked", err)
	}
	mustToken(t, d.path)
	if le := d.pool.Status().LastError; le == nil || !strings.Contains(le.Message, "panicked") {
		t.Fatalf("status does not report the panic: %+v", le)
	}
}

func TestClientDisconnectsMidRequest(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after the daemon stops
	release := make(chan struct{})
	defer close(release)
	d := startDaemon(t, daemonOpts{
		script: func(int) providertest.Step { return providertest.Step{Release: release} },
		pool:   pool.Config{Size: 1},
	})
	base := runtime.NumGoroutine()
	for i := range 10 {
		nc, err := net.Dial("unix", d.path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, `{"id":1,"method":"attestation/generate"}`+"\n")
		// The request counter, not Waiting == 1: the request waits only
		// for the 80 ms deadline, and a loaded machine's poll could miss
		// that window and then wait for ever (1 run in 20, cores busy).
		waitFor(t, "the request to reach the pool", func() bool { return d.pool.Status().Counters.Requests == uint64(i+1) })
		nc.Close()
		waitFor(t, "the request to give up", func() bool { return d.pool.Status().Waiting == 0 })
	}
	waitFor(t, "the connections' goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

func (b *lockedBuffer) String() string { return string(b.bytes()) }

// assertPrivate checks the socket is 0600 in a 0700 directory.
func assertPrivate(t testing.TB, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: mode %v, want a socket with 0600", path, fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: mode %v, want 0700", di.Mode().Perm())
	}
}
