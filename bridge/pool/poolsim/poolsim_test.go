package poolsim

import (
	"testing"
	"time"
)

// The simulation only moves time once everything is blocked, so the same
// seed gives the same result however the goroutines are scheduled.
func TestRunIsDeterministic(t *testing.T) {
	cfg := Config{Hours: 2, Seed: 3}
	a, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("same seed, different results:\n%+v\n%+v", a, b)
	}
	if a.Requests == 0 || a.Hits == 0 || a.Served != uint64(a.Hits) && a.Served < uint64(a.Hits) {
		t.Fatalf("implausible result: %+v", a)
	}
	if a.P99 > 80*time.Millisecond {
		t.Fatalf("an answer took %s, past the daemon's deadline", a.P99)
	}
}
