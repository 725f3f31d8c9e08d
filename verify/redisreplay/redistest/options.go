package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Options say how StartWith runs a server.
type Options struct {
	// TCP makes the server listen on a free port on 127.0.0.1 (its Addr)
	// instead of a Unix socket; URL then returns redis://127.0.0.1:port.
	TCP bool
	// Config holds extra redis-server configuration lines, one directive
	// each, such as "maxmemory-policy allkeys-lru". They come after the
	// package's own lines in the server's configuration file, so they win.
	Config []string
}

// StartWith is Start with options: a server on a loopback TCP port, and
// extra configuration lines. Its output is shown when the test fails.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := serverBinary(tb)
	if opts.TCP {
		return startTCP(tb, bin, tb.TempDir(), 1, nil, opts.Config)
	}
	// A short directory: a Unix socket path must fit in 104–108 bytes.
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "redis.sock")
	conf := append([]string{"port 0", "unixsocket " + socket, "unixsocketperm 700"}, opts.Config...)
	s, err := launch(bin, dir, conf)
	if err != nil {
		tb.Fatal(err)
	}
	s.Socket = socket
	stopWithTest(tb, s)
	return s
}

// portAttempts bounds the retries of a server whose free port was taken
// by another process between the choice and the server's bind.
const portAttempts = 3

// startTCP starts redis-server in dir on a free loopback port, with
// nports-1 more free ports handed to extra (a cluster node's bus port),
// choosing new ports when one was taken meanwhile.
func startTCP(tb testing.TB, bin, dir string, nports int, extra func(ports []int) []string, config []string, args ...string) *Server {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(nports)
		if err != nil {
			tb.Fatal(err)
		}
		conf := []string{"port " + strconv.Itoa(ports[0]), "bind 127.0.0.1"}
		if extra != nil {
			conf = append(conf, extra(ports)...)
		}
		s, err := launch(bin, dir, append(conf, config...), args...)
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		stopWithTest(tb, s)
		return s
	}
}

// stopWithTest stops s when the test ends and then, if the test failed,
// logs what the server printed.
func stopWithTest(tb testing.TB, s *Server) {
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s printed:\n%s", s, s.Log())
		}
	})
	tb.Cleanup(s.Stop)
}

// errPortTaken says a server could not listen on a port it was given.
var errPortTaken = errors.New("port taken")

// launch writes the package's configuration lines and then conf to
// dir/redis.conf, starts redis-server with it and args, and returns once
// the server says it accepts connections (a Sentinel: that it watches its
// master), or an error (wrapping errPortTaken when a port was in use)
// with what it printed.
func launch(bin, dir string, conf []string, args ...string) (*Server, error) {
	lines := append([]string{
		"dir " + dir, `save ""`, "appendonly no",
		"daemonize no", `logfile ""`, "loglevel notice",
	}, conf...)
	path := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	s := &Server{done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, append([]string{path}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pw.Close() // the child holds the only write end: EOF means it exited
	ready := make(chan struct{})
	go s.read(pr, ready)

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return s, nil
	case <-s.done:
		if strings.Contains(s.Log(), "Address already in use") {
			return nil, fmt.Errorf("%w: redis-server exited:\n%s", errPortTaken, s.Log())
		}
		return nil, fmt.Errorf("redis-server exited before it was ready:\n%s", s.Log())
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("redis-server not ready after %v:\n%s", readyTimeout, s.Log())
	}
}

// read keeps the server's output (up to 64 KiB), closes ready once the
// server says it accepts connections (or, a Sentinel, that it monitors
// its master), and closes s.done once it exited.
func (s *Server) read(pr *os.File, ready chan struct{}) {
	sc := bufio.NewScanner(pr)
	signaled := false
	for sc.Scan() {
		s.mu.Lock()
		if s.log.Len() < 64<<10 {
			s.log.WriteString(sc.Text() + "\n")
		}
		s.mu.Unlock()
		if line := strings.ToLower(sc.Text()); !signaled && (strings.Contains(line, "ready to accept connections") || strings.Contains(line, "+monitor master")) {
			signaled = true
			close(ready)
		}
	}
	pr.Close()
	s.cmd.Wait()
	close(s.done)
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. Another process may take one before the server binds it, which is
// why startTCP retries.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		defer ln.Close() // held until all are chosen, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serverBinary returns $REDIS_SERVER, else redis-server from PATH, and
// fails the test with a hint when there is none.
func serverBinary(tb testing.TB) string {
	tb.Helper()
	return binary(tb, "REDIS_SERVER", "redis-server", "these tests need a real one",
		"Debian's redis-server, or Homebrew's redis on a Mac", "a redis-server (or valkey-server)")
}

// binary returns $env, else name from PATH; without either it fails the
// test, saying why it needs the program and how to install it.
func binary(tb testing.TB, env, name, why, packages, alternative string) string {
	tb.Helper()
	if bin := os.Getenv(env); bin != "" {
		return bin
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s not found on PATH, and %s.\n"+
			"Run `make test` or `make redis-server` (they install %s, when missing), "+
			"or set %s to %s binary.", name, why, packages, env, alternative)
	}
	return bin
}
