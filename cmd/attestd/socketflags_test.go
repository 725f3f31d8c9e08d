package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/header"
)

// TestClientsFindTheirOwnHost runs two real daemons, one per host, and
// the token and status commands in-process: each finds its own host's
// daemon by --agent, by the variable launchd exports, or (run from the
// host's Attestd.app) by its Info.plist with no flag at all, and never
// the other host's through $ATTESTD_SOCKET.
func TestClientsFindTheirOwnHost(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "hosts") // short: macOS caps socket paths at 104 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	mine, other := filepath.Join(dir, "mine.sock"), filepath.Join(dir, "other.sock")
	// Told apart by their pool capacity in attestation/status.
	startDaemon(t, mine, "--prefetch", "3")
	startDaemon(t, other, "--prefetch", "5")
	// exe is the attestd that runs status and token: "" for this test binary.
	exe := ""
	run := func(env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		return runCLIFrom(t, exe, env, "", args...)
	}
	capacity := func(env map[string]string, args ...string) float64 {
		t.Helper()
		code, out, errOut := run(env, append([]string{"status"}, args...)...)
		if code != 0 {
			t.Fatalf("status %q: exit %d\n%s", args, code, errOut)
		}
		var st struct {
			Pool struct{ Capacity float64 } `json:"pool"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		return st.Pool.Capacity
	}
	if c := capacity(nil, "--socket", mine); c != 3 {
		t.Fatalf("my daemon's capacity %v, want 3", c)
	}

	env := map[string]string{
		"ATTESTD_SOCKET_com_example_Host_attestd": mine, // exported by launchd for my agent
		"ATTESTD_SOCKET": other, // another host's legacy variable
	}
	for _, args := range [][]string{
		{"--agent", "com.example.Host.attestd"},
		{"--agent", "ATTESTD_SOCKET_com_example_Host_attestd"},
	} {
		code, out, errOut := runCLI(t, env, "", append([]string{"token"}, args...)...)
		if code != 0 {
			t.Fatalf("token %q: exit %d\n%s", args, code, errOut)
		}
		if _, err := header.Decode(strings.TrimSpace(out)); err != nil {
			t.Errorf("token %q printed %q: %v", args, out, err)
		}
	}

	// No flag: outside a bundle $ATTESTD_SOCKET is the manual override …
	if c := capacity(env); c != 5 {
		t.Errorf("status with no agent named reached capacity %v, not $ATTESTD_SOCKET's daemon (5)", c)
	}
	// … but the attestd inside my host's bundle asks my daemon only.
	exe = helperBundleFor(t, filepath.Join(dir, "Host.app", "Contents", "Helpers"), "com.example.Host.attestd")
	if c := capacity(env); c != 3 {
		t.Errorf("status from the bundle reached the daemon of capacity %v, not mine (3)", c)
	}
	if c := capacity(env, "--agent", "com.example.Host.attestd"); c != 3 {
		t.Errorf("status --agent reached the daemon of capacity %v, not mine (3)", c)
	}
	// With my variable unset and no launchd here, the bundle's attestd
	// falls to the default path, never to $ATTESTD_SOCKET.
	delete(env, "ATTESTD_SOCKET_com_example_Host_attestd")
	env["XDG_RUNTIME_DIR"] = filepath.Join(dir, "nothing")
	code, _, errOut := run(env, "token", "--timeout", "1s")
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "nothing", "attestd", "attestd.sock")) {
		t.Errorf("token from the bundle without its variable: exit %d\n%s", code, errOut)
	}
}
