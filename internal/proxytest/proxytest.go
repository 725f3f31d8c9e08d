// Package proxytest runs the real nginx and Caddy for tests: each its own
// process of the test, in the foreground, listening on a free port on
// 127.0.0.1, with every file it writes (configuration, pid file, temporary
// files, logs, Caddy's storage and autosave) in a directory under
// t.TempDir(). A proxy is ready once its pid file names it and a
// connection to its port succeeds; it stops (SIGTERM, then SIGKILL) when
// the test ends, and its configuration and output are shown when the test
// fails. Nothing listens on a privileged or fixed port: nginx's
// configuration is the caller's http block wrapped in a main context this
// package writes, and Caddy runs with the admin endpoint and automatic
// HTTPS off.
//
// nginx runs as one process (master_process off): it then never changes
// user, so it reads its files whether the test runs as root (CI) or as a
// normal user (a Mac), and it dies with the test binary, where a worker
// process would outlive a killed master. Request handling, auth_request
// and proxying included, is the same as with workers.
//
// Tests that need a proxy fail, rather than skip, when its binary is
// missing: "make test" installs Debian's nginx and caddy packages (or
// Homebrew's on a Mac) when they are missing, so CI always runs them.
// $NGINX and $CADDY name other binaries.
//
// testdata/nginx-auth-request.conf and testdata/caddy-forward-auth.Caddyfile
// are configurations for an auth server such as "attestd gate", run by
// this package's tests and, filled in by NginxAuthRequest and
// CaddyForwardAuth, by internal/gate's with the real gate (the README
// shows them): the nginx one passes the auth server's 503 and Retry-After
// through to the client, which nginx's auth_request alone turns into a
// 500.
package proxytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is the part of testing.TB the package uses: a test's *testing.T or
// *testing.B, or a program's own (a benchmark run outside "go test").
type TB interface {
	Helper()
	TempDir() string
	Fatal(args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Env is what a configuration is written for.
type Env struct {
	// Addr is the address the proxy must listen on, 127.0.0.1:port, free a
	// moment before the proxy starts; the proxy is ready once it accepts
	// connections there.
	Addr string
	// Port is Addr's port.
	Port int
	// Dir is the proxy's own directory, for any further file the
	// configuration names.
	Dir string
}

// Proxy is one running nginx or Caddy.
type Proxy struct {
	// Name is "nginx" or "caddy".
	Name string
	// Addr is the address the proxy listens on, 127.0.0.1:port.
	Addr string
	// Dir is the proxy's directory: its configuration, pid file, logs and
	// temporary files.
	Dir string
	// Config is the whole configuration file the proxy runs with.
	Config string

	cmd      *exec.Cmd
	pidFile  string
	logFiles []string // shown after the output in Log
	done     chan struct{}
	stopOnce sync.Once

	mu  sync.Mutex
	out bytes.Buffer
}

// URL returns the proxy's base URL, http://127.0.0.1:port.
func (p *Proxy) URL() string { return "http://" + p.Addr }

// String describes the proxy for test messages.
func (p *Proxy) String() string { return p.Name + " at " + p.Addr }

// Log returns what the proxy has printed so far, followed by its log
// files (nginx's access log).
func (p *Proxy) Log() string {
	p.mu.Lock()
	s := p.out.String()
	p.mu.Unlock()
	for _, f := range p.logFiles {
		b, err := os.ReadFile(f)
		if err == nil && len(b) > 0 {
			s += "--- " + filepath.Base(f) + "\n" + string(b)
		}
	}
	return s
}

// Stop stops the proxy (SIGTERM, then SIGKILL if it lingers) and waits for
// it to exit. It is safe to call more than once.
func (p *Proxy) Stop() {
	p.stopOnce.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}

const (
	// readyTimeout bounds the wait for a proxy that neither becomes ready
	// nor exits; it only turns a hang into a failure.
	readyTimeout = time.Minute
	// stopTimeout bounds a graceful stop before SIGKILL.
	stopTimeout = 10 * time.Second
	// portAttempts bounds the retries of a proxy whose free port was taken
	// by another process between the choice and the proxy's bind.
	portAttempts = 3
	// maxOutput bounds the output kept for failure messages.
	maxOutput = 256 << 10
)

// launch says how to run one kind of proxy.
type launch struct {
	name    string
	bin     string
	file    string                            // the configuration file's name in the proxy's directory
	render  func(env Env) string              // the whole configuration file
	args    func(dir, config string) []string // the command line after the binary
	environ func(dir string) []string         // added to the test's environment
	pidFile string                            // name in the directory
	logs    []string                          // names in the directory, shown in Log
	port    func() (int, error)               // a free port; freePort unless a test says otherwise
}

// start runs l in a new directory under tb.TempDir() and returns it ready,
// stopped when the test ends; the test fails if it cannot start.
func start(tb TB, l launch) *Proxy {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), l.name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		p, err := l.run(dir)
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			tb.Logf("%v; trying another port", err)
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("%s configuration:\n%s\n%s printed:\n%s", p, p.Config, p, p.Log())
			}
		})
		tb.Cleanup(p.Stop) // runs first: the output is complete when shown
		return p
	}
}

// errPortTaken says a proxy could not listen on the port it was given.
var errPortTaken = errors.New("port taken")

// run starts the proxy once on a fresh free port and waits until it is
// ready or has exited.
func (l launch) run(dir string) (*Proxy, error) {
	port, err := l.port()
	if err != nil {
		return nil, err
	}
	env := Env{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir}
	p := &Proxy{
		Name: l.name, Addr: env.Addr, Dir: dir, Config: l.render(env),
		pidFile: filepath.Join(dir, l.pidFile), done: make(chan struct{}),
	}
	for _, f := range l.logs {
		p.logFiles = append(p.logFiles, filepath.Join(dir, f))
	}
	config := filepath.Join(dir, l.file)
	if err := os.WriteFile(config, []byte(p.Config), 0o600); err != nil {
		return nil, err
	}
	os.Remove(p.pidFile) // a previous attempt's
	p.cmd = exec.Command(l.bin, l.args(dir, config)...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), l.environ(dir)...)
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.startProcess(); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.bin, err)
	}
	return p, p.waitReady()
}

// startProcess starts the command with its output captured.
func (p *Proxy) startProcess() error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pw.Close() // the child holds the only write end: EOF means it exited
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			if p.out.Len() < maxOutput {
				p.out.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
		}
		pr.Close()
		p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// waitReady polls, with a bound, until the pid file names the process
// (both proxies write it once every listener is open) and a connection
// to its address succeeds, or until it exits.
func (p *Proxy) waitReady() error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		if p.ready() {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(strings.ToLower(p.Log()), "address already in use") {
				return fmt.Errorf("%w: %s exited:\n%s", errPortTaken, p, p.Log())
			}
			return fmt.Errorf("%s exited before it was ready.\nConfiguration:\n%s\nOutput:\n%s", p, p.Config, p.Log())
		case <-deadline.C:
			p.Stop()
			return fmt.Errorf("%s not ready after %v.\nConfiguration:\n%s\nOutput:\n%s", p, readyTimeout, p.Config, p.Log())
		case <-tick.C:
		}
	}
}

// ready reports whether the pid file names the process and its address
// accepts a connection.
func (p *Proxy) ready() bool {
	b, err := os.ReadFile(p.pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.cmd.Process.Pid) {
		return false
	}
	conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
// Another process may take it before the proxy binds it, which is why
// start retries.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// binary returns $envVar, else name from PATH or one of dirs, else the
// error a test fails with, saying how to install it.
func binary(name, envVar string, dirs ...string) (string, error) {
	if bin := os.Getenv(envVar); bin != "" {
		return bin, nil
	}
	if bin, err := exec.LookPath(name); err == nil {
		return bin, nil
	}
	for _, d := range dirs {
		if bin := filepath.Join(d, name); isExecutable(bin) {
			return bin, nil
		}
	}
	where := "on PATH"
	if len(dirs) > 0 {
		where += " or in " + strings.Join(dirs, ", ")
	}
	return "", fmt.Errorf("%s not found %s, and these tests need the real one.\n"+
		"Run `make test` or `make %s` (they install Debian's %s package, or Homebrew's on a Mac, when missing), "+
		"or set %s to a %s binary.", name, where, name, name, envVar, name)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
