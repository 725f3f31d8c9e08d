package poolsim

import (
	"testing"
	"time"
)

// The simulation only moves time once everything is blocked, so the same
// seed gives the same result however the goroutines are scheduled, with
// requests alone and with turn signals and the bridge's hold.
func TestRunIsDeterministic(t *testing.T) {
	for _, cfg := range []Config{
		{Hours: 2, Seed: 3},
		{Hours: 2, Seed: 3, Turns: true, Hold: time.Second},
	} {
		a, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("%+v: same seed, different results:\n%+v\n%+v", cfg, a, b)
		}
		if a.Requests == 0 || a.Turns == 0 || a.Hits == 0 || a.Served < uint64(a.Hits) {
			t.Fatalf("implausible result: %+v", a)
		}
		if a.P99 > 80*time.Millisecond {
			t.Fatalf("an answer took %s, past the daemon's deadline", a.P99)
		}
		if cfg.Hold > 0 && (a.HoldMax > cfg.Hold || a.HoldMean == 0) {
			t.Fatalf("holds: mean %s, max %s with a %s bound", a.HoldMean, a.HoldMax, cfg.Hold)
		}
	}
}

// The hold pays for itself: with turn signals and the hold, more first
// requests of a turn get a token in time than with requests alone.
func TestHoldServesTheFirstRequest(t *testing.T) {
	plain, err := Run(Config{Hours: 4, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	held, err := Run(Config{Hours: 4, Seed: 11, Turns: true, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if held.FirstHitRate() <= plain.FirstHitRate() || held.FirstHitRate() < 98 {
		t.Fatalf("first of a turn served in time: %.2f%% with the hold, %.2f%% without", held.FirstHitRate(), plain.FirstHitRate())
	}
}
