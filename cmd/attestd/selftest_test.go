package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/diag"
)

// TestSelftestCommandOffMac is what Linux CI and any non-Mac see of the
// command: valid JSON, exit 0, and the table for people. (The checks
// themselves are internal/diag's TestSelftestOffMac.)
func TestSelftestCommandOffMac(t *testing.T) {
	t.Parallel()
	if darwin.Available() {
		t.Skip("this is a Mac: the macOS checks run here")
	}
	code, out, stderr := runCLI(t, nil, "", "selftest", "--json")
	var r diag.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || stderr != "" {
		t.Fatalf("selftest --json printed %q, stderr %q: %v", out, stderr, err)
	}
	if code != 0 || !r.OK || r.Failed != 0 || r.Skipped != 13 {
		t.Fatalf("exit %d, ok %v, failed %d, skipped %d: %+v", code, r.OK, r.Failed, r.Skipped, r.Checks)
	}

	code, out, _ = runCLI(t, nil, "", "selftest")
	if code != 0 || !strings.Contains(out, "no check failed (13 skipped)") || !strings.Contains(out, "macOS only") {
		t.Errorf("selftest (table) exit %d:\n%s", code, out)
	}
}

func TestSelftestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"selftest", "--timeout", "0s"}, {"selftest", "extra"}} {
		if code, _, stderr := runCLI(t, nil, "", args...); code != 2 || !strings.Contains(stderr, "attestd: error:") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}
