package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/darwin"
)

// TestSelftestBinaryOnMac runs the real "attestd selftest --json" on this
// Mac. Over SSH or in a headless job it must skip the DeviceCheck checks
// and never trap; the binary runs the main run loop, so the main queue is
// serviced.
func TestSelftestBinaryOnMac(t *testing.T) {
	if testing.Short() {
		t.Skip("builds attestd; skipped with -short")
	}
	cmd := exec.Command(attestdBinary(t), "selftest", "--json", "--timeout", "30s")
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		// Some check failed; the report says which.
	default:
		t.Fatalf("selftest died: %v (a trap or signal is the bug this guards against)\n%s", err, out)
	}
	var r selftestReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	t.Logf("selftest report:\n%s", out)
	got := stStatuses(r)
	for _, name := range []string{"platform", "socket-roundtrip", "macos", "main-run-loop", "identity"} {
		if got[name] != statusPass {
			t.Errorf("%s = %s: %s", name, got[name], stFind(t, r, name).Detail)
		}
	}
	if gui, _ := darwin.GUISession(); !gui {
		for _, name := range []string{"gui-session", "devicecheck-supported", "devicecheck-token", "completion-queue"} {
			if got[name] != statusSkip {
				t.Errorf("without a GUI session %s = %s, want skipped", name, got[name])
			}
		}
	}
}

// In the test binary nobody runs the main run loop, and the selftest must
// say so, naming the consequence.
func TestSelftestInProcessDetectsNoMainLoop(t *testing.T) {
	env := systemSelftestEnv()
	c := mainLoopCheck(t.Context(), env)
	if c.Status != statusFail || !strings.Contains(c.Detail, "would never run") {
		t.Errorf("main-run-loop in a test binary = %s %q, want a failure naming the main queue", c.Status, c.Detail)
	}
	if c.Millis == nil || time.Duration(*c.Millis*float64(time.Millisecond)) < time.Second {
		t.Errorf("gave up after %v ms, want the 2 s bound", c.Millis)
	}
}
