package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
)

func TestLogFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	// A link to where nothing can be made: not even root can open it.
	dangling := filepath.Join(dir, "dangling.log")
	if err := os.Symlink(filepath.Join(dir, "missing", "x.log"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want, hint string }{
		{"~nobody/x.log", "only ~/", "give an absolute path or one starting with ~/"},
		{filepath.Join(notDir, "x.log"), "--log-file", ""},
		{dangling, "--log-file " + dangling + ": ", "choose a file this user can write, e.g. ~/Library/Logs/LABEL.log"},
	} {
		s := &streams{err: &bytes.Buffer{}}
		_, err := attachLogFile(s, tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("attachLogFile(%q) = %v, want an error with %q", tc.path, err, tc.want)
		}
		if got := hint.Of(err); got != tc.hint {
			t.Errorf("attachLogFile(%q): hint %q, want %q", tc.path, got, tc.hint)
		}
	}
}

// TestAttachLogFileDetach: the log file gets what stderr gets, detach
// restores stderr, and a failure is the file's last line, with its hint.
func TestAttachLogFileDetach(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		last string
	}{
		{nil, ""},
		{exitCode(3), ""},
		{withHint(errors.New("fd 97 is not a socket"), "check the plist"), "attestd: error: fd 97 is not a socket\nattestd: hint: check the plist\n"},
	} {
		path := filepath.Join(t.TempDir(), "Logs", "a.log")
		var stderr bytes.Buffer
		s := &streams{err: &stderr}
		detach, err := attachLogFile(s, path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(s.err, "attestd serving\n")
		detach(tc.err)
		if s.err != &stderr {
			t.Error("detach did not restore stderr")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "attestd serving\n"+tc.last || stderr.String() != "attestd serving\n" {
			t.Errorf("detach(%v): the file holds %q, stderr %q", tc.err, data, stderr.String())
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
		tok, err := cl.WaitToken(ctx)
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
