package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/probe"
)

// TestProbeDeviceCheckOnMac times a few real DeviceCheck calls through
// the binary (which runs the main run loop). Without a GUI session it
// skips: DeviceCheck would trap. An unsigned test build may be refused by
// Apple; then the report must say so and exit 1, never hang or trap.
func TestProbeDeviceCheckOnMac(t *testing.T) {
	if testing.Short() {
		t.Skip("builds attestd; skipped with -short")
	}
	if gui, err := darwin.GUISession(); err != nil || !gui {
		t.Skipf("no GUI login session (%v): DeviceCheck would trap the process", err)
	}
	if ok, err := darwin.DeviceCheckSupported(); err != nil || !ok {
		t.Skipf("DeviceCheck not supported here: %v, %v", ok, err)
	}
	out, err := exec.Command(attestdBinary(t), "probe", "--provider", "devicecheck", "--count", "3", "--json").Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("probe died: %v\n%s", err, out)
	}
	var r probe.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	t.Logf("probe report:\n%s", out)
	if r.Provider != "dc" || r.Latency == nil || r.Latency.Count != 3 {
		t.Errorf("report %+v", r)
	}
	if (err == nil) != (r.Latency.OK > 0) {
		t.Errorf("exit %v with %d tokens made", err, r.Latency.OK)
	}
}
