// Package gatetest runs "attestd gate" as a process of its own for tests:
// on a free loopback port, with its JSON log kept for failure messages,
// killed when the test ends.
package gatetest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Process is one running "attestd gate".
type Process struct {
	// Addr is where it serves (host:port).
	Addr string
	// Cmd is the process, for a test that signals it.
	Cmd *exec.Cmd
	// Done is closed once the process has exited (Cmd.ProcessState is
	// then set).
	Done chan struct{}

	mu  sync.Mutex
	log strings.Builder
}

// Start runs binary (an attestd) as "gate --listen 127.0.0.1:0
// --log-format json" with args, in an environment of PATH, a temporary
// HOME and env, and returns once it logs where it serves, failing the
// test when it exits first or patience passes. It is killed (SIGKILL)
// when the test ends, if it still runs.
func Start(t testing.TB, binary string, patience time.Duration, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Done: make(chan struct{})}
	p.Cmd = exec.Command(binary, append([]string{"gate", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	p.Cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	stderr, err := p.Cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "gate: serving" {
				select {
				case serving <- rec.Addr:
				default:
				}
			}
		}
		p.Cmd.Wait()
		close(p.Done)
	}()
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		<-p.Done
		if t.Failed() {
			t.Logf("gate %d (%s) printed:\n%s", p.Cmd.Process.Pid, p.Addr, p.Output())
		}
	})
	select {
	case p.Addr = <-serving:
		return p
	case <-p.Done:
		t.Fatalf("attestd gate exited before serving:\n%s", p.Output())
	case <-time.After(patience):
		t.Fatalf("attestd gate not serving after %v:\n%s", patience, p.Output())
	}
	return nil
}

// URL is the gate's base URL.
func (p *Process) URL() string { return "http://" + p.Addr }

// Output is what the gate has logged so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}
