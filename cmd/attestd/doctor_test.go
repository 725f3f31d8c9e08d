package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/diag"
)

// offMac is this system seen as one without Apple's frameworks, so that
// doctor runs only its portable checks (socket, daemon, log) on any OS.
type offMac struct{ diag.Env }

func (offMac) Native() bool { return false }

// runDoctorJSON runs "attestd doctor --json" in-process with its checks
// asking env, and returns the exit code and the report.
func runDoctorJSON(t *testing.T, env diag.Env, getenv map[string]string, args ...string) (int, diag.Report) {
	t.Helper()
	return runDoctorJSONFrom(t, "", env, getenv, args...)
}

// runDoctorJSONFrom is runDoctorJSON for an attestd whose executable is
// exe ("" for this test binary).
func runDoctorJSONFrom(t *testing.T, exe string, env diag.Env, getenv map[string]string, args ...string) (int, diag.Report) {
	t.Helper()
	var out, errb bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errb, getenv: func(k string) string { return getenv[k] }}
	if exe != "" {
		s.executable = func() (string, error) { return exe, nil }
	}
	code := runCommand(context.Background(), s, newDoctorCommand(env), append([]string{"--json"}, args...))
	if errb.Len() > 0 {
		t.Errorf("stderr: %s", errb.String())
	}
	var r diag.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("doctor --json printed %q: %v", out.String(), err)
	}
	return code, r
}

// find returns the check named name, or a zero Check.
func find(r diag.Report, name string) diag.Check {
	c, _ := r.Find(name)
	return c
}

func TestDoctorUsage(t *testing.T) {
	t.Parallel()
	if code, _, _ := runCLI(t, nil, "", "doctor", "extra"); code != 2 {
		t.Errorf("doctor extra: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, nil, "", "doctor", "--bogus"); code != 2 {
		t.Errorf("doctor --bogus: exit %d, want 2", code)
	}
}

func TestDoctorAgainstRealDaemon(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	// A short path: macOS limits socket paths to 104 bytes, and its
	// t.TempDir paths are long.
	dir, err := os.MkdirTemp("", "doc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "attestd.sock")
	startDaemon(t, sock)
	// The dev daemon is what this test can start, on any OS.
	code, r := runDoctorJSON(t, offMac{diag.System()}, map[string]string{"ATTESTD_SOCKET": sock})
	if code != 0 {
		t.Errorf("exit %d: %+v", code, r)
	}
	if c := find(r, "socket"); c.Status != diag.Pass {
		t.Errorf("socket: %s %q", c.Status, c.Detail)
	}
	if c := find(r, "daemon"); c.Status != diag.Pass || !strings.Contains(c.Detail, "provider dev") {
		t.Errorf("daemon: %s %q", c.Status, c.Detail)
	}
}

// TestDoctorLog: doctor says where the agent's log is, named after the
// label it is given or the one its bundle ships with. (That a refused
// token names the App ID DeviceCheck requires is internal/diag's
// TestDoctor.)
func TestDoctorLog(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	logs := filepath.Join(home, "Library", "Logs")
	os.MkdirAll(logs, 0o755)
	os.WriteFile(filepath.Join(logs, "com.example.Host.attestd.log"), []byte("time=… msg=\"attestd serving\"\n"), 0o600)

	env := offMac{diag.System()}
	sock := map[string]string{"ATTESTD_SOCKET": filepath.Join(t.TempDir(), "absent.sock")}
	for _, tc := range []struct {
		args   []string
		status diag.Status
		detail string
	}{
		{[]string{"--agent", "com.example.Host.attestd"}, diag.Pass, filepath.Join(logs, "com.example.Host.attestd.log") + " ("},
		{nil, diag.Skipped, "no log yet at " + filepath.Join(logs, "dev.attestd.agent.log")},
		{[]string{"--agent", "ATTESTD_SOCKET_x"}, diag.Skipped, "socket key"},
	} {
		_, r := runDoctorJSON(t, env, sock, tc.args...)
		if c := find(r, "log"); c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("%q: log %s %q, want %s with %q", tc.args, c.Status, c.Detail, tc.status, tc.detail)
		}
	}
	// The crash file is named after the log.
	_, r := runDoctorJSON(t, env, sock, "--agent", "com.example.Host.attestd")
	if c := find(r, "log"); !strings.Contains(c.Detail, "fatal crashes to "+filepath.Join(logs, "com.example.Host.attestd.crash.log")) {
		t.Errorf("log %q, want the crash file beside it", c.Detail)
	}

	// The attestd inside a host's bundle knows its own agent.
	exe := helperBundleFor(t, filepath.Join(t.TempDir(), "Host.app", "Contents", "Helpers"), "com.example.Host.attestd")
	_, r = runDoctorJSONFrom(t, exe, env, sock)
	if c := find(r, "log"); c.Status != diag.Pass || !strings.Contains(c.Detail, "com.example.Host.attestd.log") {
		t.Errorf("from the bundle: log %s %q", c.Status, c.Detail)
	}

	code, _, errOut := runCLI(t, sock, "", "doctor", "--agent", "not..a.label")
	if code != 1 || !strings.Contains(errOut, "hint: name the helper") {
		t.Errorf("bad --agent: exit %d\n%s", code, errOut)
	}
}
