package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
)

func TestExpandHome(t *testing.T) {
	home := func() (string, error) { return "/Users/me", nil }
	for _, tc := range []struct{ in, want, err string }{
		{in: "~/Library/Logs/a.log", want: "/Users/me/Library/Logs/a.log"},
		{in: "~", want: "/Users/me"},
		{in: "/var/log/a.log", want: "/var/log/a.log"},
		{in: "rel/a.log", want: "rel/a.log"},
		{in: "~other/a.log", err: "only ~/"},
	} {
		got, err := expandHome(tc.in, home)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandHome(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expandHome(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := expandHome("~/x", func() (string, error) { return "", errors.New("no HOME") }); err == nil {
		t.Error("expandHome without a home directory succeeded")
	}
	if got := crashPath("/L/com.example.attestd.log"); got != "/L/com.example.attestd.crash.log" {
		t.Errorf("crashPath = %q", got)
	}
}

// logFiles lists the log file and its rotated copies in dir.
func logFiles(t *testing.T, dir, stem string) []os.FileInfo {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []os.FileInfo
	for _, e := range ents {
		if e.Name() == stem+".log" || (strings.HasPrefix(e.Name(), stem+"-") && strings.HasSuffix(e.Name(), ".log")) {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fi)
		}
	}
	return out
}

// TestLogFileRotationCap writes five times the size cap through the tee
// and checks that no file exceeds the cap and that at most the configured
// number of rotated files stays beside the log.
func TestLogFileRotationCap(t *testing.T) {
	oldMax, oldBackups := logFileMaxMB, logFileBackups
	t.Cleanup(func() { logFileMaxMB, logFileBackups = oldMax, oldBackups })
	logFileMaxMB, logFileBackups = 1, 2

	dir := t.TempDir()
	path := filepath.Join(dir, "Logs", "cap.log") // the directory is created
	var stderr bytes.Buffer
	s := &stdio{err: &stderr}
	detach, err := attachLogFile(s, path)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range 5 << 10 { // 5 MiB in 1 KiB lines
		s.err.Write(line)
	}
	detach(nil)
	if s.err != &stderr {
		t.Error("detach did not restore stderr")
	}
	if stderr.Len() != 5<<20 {
		t.Errorf("stderr got %d bytes, want every one of %d", stderr.Len(), 5<<20)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
	// lumberjack removes old copies in its own goroutine after a rotation:
	// wait for that, boundedly.
	deadline := time.Now().Add(20 * time.Second)
	for {
		files := logFiles(t, filepath.Dir(path), "cap")
		for _, f := range files {
			if f.Size() > 1<<20 {
				t.Fatalf("%s is %d bytes, over the 1 MiB cap", f.Name(), f.Size())
			}
		}
		if len(files) <= 1+2 {
			if len(files) < 2 {
				t.Fatalf("%d files: the log never rotated", len(files))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log files still there, want at most 3 (the log and 2 rotated)", len(files))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLogFileErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	for _, tc := range []struct{ path, want string }{
		{"~nobody/x.log", "only ~/"},
		{filepath.Join(notDir, "x.log"), "--log-file"},
	} {
		s := &stdio{err: &bytes.Buffer{}}
		if _, err := attachLogFile(s, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("attachLogFile(%q) = %v, want an error with %q", tc.path, err, tc.want)
		}
	}
}

// TestServeLogFileRecordsFailure: a daemon that cannot start leaves the
// reason in its log file, where launchd would have dropped it.
func TestServeLogFileRecordsFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fail.log")
	code, _, errOut := runCLI(t, nil, "", "serve", "--provider", "dev", "--log-file", path, "--listen-fd", "97")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "attestd: error: ") || !strings.Contains(string(data), "fd 97") {
		t.Errorf("log file does not say why serve failed:\n%s", data)
	}
}

// TestServeLogFile runs the real daemon as a LaunchAgent would: with
// --log-file under "~" and a HOME of its own. The log lands in that home,
// says what a user needs, and carries token fingerprints, never tokens.
func TestServeLogFile(t *testing.T) {
	home := t.TempDir()
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	cmd := exec.Command(attestdBinary(t), "serve", "--provider", "dev", "--log-level", "debug", "--socket", sock,
		"--log-file", "~/Library/Logs/com.example.Host.attestd.log")
	cmd.Env = append(os.Environ(), "HOME="+home)
	d := runDaemon(t, cmd, sock)

	cl := client.New(sock)
	defer cl.Close()
	var tokens []string
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tok, err := tokenWithRetry(ctx, cl)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log())
	}

	logPath := filepath.Join(home, "Library", "Logs", "com.example.Host.attestd.log")
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("no log at %s: %v\nstderr:\n%s", logPath, err, d.log())
	}
	text := string(data)
	for _, want := range []string{"attestd serving", "attestd stopped"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	for _, tok := range tokens {
		v, err := header.Decode(tok)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, tok) || strings.Contains(text, tok[len(header.Prefix):len(header.Prefix)+16]) {
			t.Fatal("a token appears in the log file")
		}
		if bytes.Contains(data, v.Token) {
			t.Fatal("raw token bytes appear in the log file")
		}
		if !strings.Contains(text, header.Fingerprint(tok)) {
			t.Errorf("log lacks the fingerprint %s of a token served", header.Fingerprint(tok))
		}
	}
	if _, err := os.Stat(filepath.Join(home, "Library", "Logs", "com.example.Host.attestd.crash.log")); err != nil {
		t.Errorf("no crash file: %v", err)
	}
}
