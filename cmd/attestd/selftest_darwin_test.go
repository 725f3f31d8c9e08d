package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/diag"
)

// TestSelftestBinaryOnMac runs the real "attestd selftest --json" on this
// Mac. Over SSH or in a headless job it must skip the DeviceCheck checks
// and never trap; the binary runs the main run loop, so the main queue is
// serviced.
func TestSelftestBinaryOnMac(t *testing.T) {
	t.Parallel()
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
	var r diag.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	t.Logf("selftest report:\n%s", out)
	for _, name := range []string{"platform", "socket-roundtrip", "macos", "main-run-loop", "identity"} {
		if c, _ := r.Find(name); c.Status != diag.Pass {
			t.Errorf("%s = %s: %s", name, c.Status, c.Detail)
		}
	}
	if gui, _ := darwin.GUISession(); !gui {
		for _, name := range []string{"gui-session", "devicecheck-supported", "devicecheck-token", "completion-queue"} {
			if c, _ := r.Find(name); c.Status != diag.Skipped {
				t.Errorf("without a GUI session %s = %s, want skipped", name, c.Status)
			}
		}
	}
}
