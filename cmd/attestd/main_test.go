package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The attestd binary, built once per test run by attestdBinary.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// attestdBinary builds cmd/attestd once and returns its path. Tests that
// need the real process (signals, exit codes, fds) use it.
func attestdBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "attestd-test-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "attestd")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatalf("build attestd: %v", binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// runCLI runs attestd in-process with args, stdin and env, and returns
// the exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runIn(env, nil, stdin, func(s *streams) int { return runMain(context.Background(), s, args) })
}

// runCLIFrom is runCLI for an attestd whose executable is exe, as one
// inside a host's bundle; "" is this test binary.
func runCLIFrom(t *testing.T, exe string, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var executable func() (string, error)
	if exe != "" {
		executable = func() (string, error) { return exe, nil }
	}
	return runIn(env, executable, stdin, func(s *streams) int { return runMain(context.Background(), s, args) })
}

// runCommandCLI runs the command c (one made with test seams) in-process
// as runCLI runs "attestd NAME args...".
func runCommandCLI(t *testing.T, c *command, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runIn(nil, nil, stdin, func(s *streams) int { return runCommand(context.Background(), s, c, args) })
}

func runIn(env map[string]string, executable func() (string, error), stdin string, run func(*streams) int) (int, string, string) {
	var out, errb bytes.Buffer
	s := &streams{in: strings.NewReader(stdin), out: &out, err: &errb, getenv: func(k string) string { return env[k] }, executable: executable}
	code := run(s)
	return code, out.String(), errb.String()
}
