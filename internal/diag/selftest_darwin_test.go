package diag

import (
	"strings"
	"testing"
	"time"
)

// In the test binary nobody runs the main run loop, and the selftest must
// say so, naming the consequence.
func TestSelftestInProcessDetectsNoMainLoop(t *testing.T) {
	t.Parallel()
	c := mainLoopCheck(t.Context(), System())
	if c.Status != Fail || !strings.Contains(c.Detail, "would never run") {
		t.Errorf("main-run-loop in a test binary = %s %q, want a failure naming the main queue", c.Status, c.Detail)
	}
	if c.Millis == nil || time.Duration(*c.Millis*float64(time.Millisecond)) < time.Second {
		t.Errorf("gave up after %v ms, want the 2 s bound", c.Millis)
	}
}
