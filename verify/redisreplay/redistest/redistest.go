// Package redistest runs a private redis-server for tests: its own
// process, listening only on a Unix socket in a temporary directory,
// stopped when the test ends. It never touches a system Redis.
//
// Tests that need it fail, rather than skip, when redis-server is not
// installed: "make test" installs the Debian package redis-server when it
// is missing, so CI always runs them.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	// Socket is the path of the server's Unix socket.
	Socket string

	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited
	stopOnce sync.Once

	mu  sync.Mutex
	log bytes.Buffer // the server's output, for failure messages
}

// readyTimeout bounds the wait for a server that neither says it is ready
// nor exits; it only turns a hang into a failure.
const readyTimeout = time.Minute

// Start starts redis-server and returns once it accepts connections. The
// server stops when the test ends, or earlier with Stop. If redis-server
// cannot be found ($REDIS_SERVER, else PATH) or does not start, the test
// fails with a hint saying how to install it. config is more of
// redis-server's command line, e.g. "--maxmemory-policy", "allkeys-lru".
func Start(tb testing.TB, config ...string) *Server {
	tb.Helper()
	return start(tb, append([]string{"--port", "0"}, config...)) // no TCP listener at all
}

func start(tb testing.TB, config []string) *Server {
	tb.Helper()
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			tb.Fatalf("redis-server not found on PATH, and the replay-store tests need a real one.\n" +
				"Run `make test` (it installs the Debian package redis-server when missing), " +
				"or `sudo apt-get install redis-server`, or set REDIS_SERVER to a redis-server (or valkey-server) binary.")
		}
	}
	// A short directory: a Unix socket path must fit in 104–108 bytes.
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Socket: filepath.Join(dir, "redis.sock"), done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	s.cmd = exec.Command(bin, append([]string{
		"--unixsocket", s.Socket, "--unixsocketperm", "700",
		"--dir", dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", "", "--loglevel", "notice"}, config...)...)
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		tb.Fatalf("start %s: %v", bin, err)
	}
	pw.Close() // the child holds the only write end: EOF means it exited

	ready := make(chan struct{})
	go s.readLog(pr, ready)
	tb.Cleanup(s.Stop)

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return s
	case <-s.done:
		tb.Fatalf("redis-server exited before it was ready:\n%s", s.Log())
	case <-timer.C:
		s.Stop()
		tb.Fatalf("redis-server not ready after %v:\n%s", readyTimeout, s.Log())
	}
	return nil
}

// readLog keeps what the server prints, closes ready once it says it
// accepts connections, and done once it has exited.
func (s *Server) readLog(pr *os.File, ready chan struct{}) {
	sc := bufio.NewScanner(pr)
	signaled := false
	for sc.Scan() {
		s.mu.Lock()
		if s.log.Len() < 64<<10 {
			s.log.WriteString(sc.Text() + "\n")
		}
		s.mu.Unlock()
		// "Ready to accept connections" (Redis 7.2+, Valkey) or "The
		// server is now ready to accept connections at PATH" (7.0 with
		// a Unix socket alone): said once the socket listens.
		if !signaled && strings.Contains(strings.ToLower(sc.Text()), "ready to accept connections") {
			signaled = true
			close(ready)
		}
	}
	pr.Close()
	s.cmd.Wait()
	close(s.done)
}

// URL returns the server's address in the form go-redis's ParseURL and
// "attestd verify --replay-redis" take: unix:///path/to/redis.sock.
func (s *Server) URL() string { return "unix://" + s.Socket }

// Stop stops the server (SIGTERM, then SIGKILL if it lingers) and waits
// for it to exit. Later connections fail. It is safe to call more than
// once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// Log returns what the server has printed so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// String describes the server for test messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server at %s", s.Socket) }
