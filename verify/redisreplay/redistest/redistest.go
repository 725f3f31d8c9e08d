// Package redistest runs a private redis-server for tests: its own
// process, listening only on a Unix socket in a temporary directory (Start)
// or on a free port on 127.0.0.1 (StartWith), stopped when the test ends.
// StartCluster runs a three-node Redis Cluster the same way. It never
// touches a system Redis.
//
// Tests that need it fail, rather than skip, when redis-server is not
// installed: "make test" installs the Debian package redis-server when it
// is missing (and Homebrew's redis on a Mac), so CI always runs them.
package redistest

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	// Socket is the path of the server's Unix socket.
	Socket string
	// Addr is the server's 127.0.0.1:port when it listens on TCP
	// (StartWith with TCP, StartCluster); "" when it does not.
	Addr string

	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited
	stopOnce sync.Once

	mu  sync.Mutex
	log bytes.Buffer // the server's output, for failure messages
}

// readyTimeout bounds the wait for a server that neither says it is ready
// nor exits; it only turns a hang into a failure.
const readyTimeout = time.Minute

// Start starts redis-server on a private Unix socket and returns once it
// accepts connections. The server stops when the test ends, or earlier
// with Stop. If redis-server cannot be found ($REDIS_SERVER, else PATH) or
// does not start, the test fails with a hint saying how to install it.
// config holds extra configuration lines, e.g. "maxmemory-policy
// allkeys-lru" (StartWith's Options.Config).
func Start(tb testing.TB, config ...string) *Server {
	tb.Helper()
	return StartWith(tb, Options{Config: config})
}

// URL returns the server's address in the form go-redis's ParseURL and
// "attestd verify --replay-redis" take: unix:///path/to/redis.sock, or
// redis://127.0.0.1:port for a server on TCP.
func (s *Server) URL() string {
	if s.Addr != "" {
		return "redis://" + s.Addr
	}
	return "unix://" + s.Socket
}

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
func (s *Server) String() string {
	if s.Addr != "" {
		return "redis-server at " + s.Addr
	}
	return fmt.Sprintf("redis-server at %s", s.Socket)
}
