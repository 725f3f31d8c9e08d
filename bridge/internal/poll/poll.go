// Package poll is a test helper: it waits for a condition on state that
// offers no event to wait on (a pool's counters, a server's connections),
// polling it every millisecond and failing the test after 5 seconds.
package poll

import (
	"testing"
	"time"
)

// Timeout is how long Until waits before it fails the test.
const Timeout = 5 * time.Second

// Until returns once cond reports true; what names the condition in the
// failure message.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", Timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
