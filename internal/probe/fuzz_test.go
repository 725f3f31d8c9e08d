package probe

import (
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// FuzzParseAges: whatever --ages says, ParseAges returns an error or
// ages the lifetime search can use (ascending, starting at 0), which
// FormatAges writes back to the same ages.
func FuzzParseAges(f *testing.F) {
	for _, s := range []string{"0s,15s,30s,1m,2m,5m,10m,30m,1h", "15s, 1h", "", "1m,1m", "-1s", "1h30m,2h0m1s", "1.5s,2562047h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ages, err := ParseAges(s)
		if err != nil {
			return
		}
		if len(ages) == 0 || ages[0] != 0 || !slices.IsSorted(ages) || len(slices.Compact(slices.Clone(ages))) != len(ages) {
			t.Fatalf("ParseAges(%q) = %v: not ascending from 0", s, ages)
		}
		back, err := ParseAges(FormatAges(ages))
		if err != nil || !slices.Equal(back, ages) {
			t.Fatalf("ParseAges(%q) = %v, which reads back as %v, %v", s, ages, back, err)
		}
		cfg := Config{Provider: provider.Dev{}, Timeout: time.Second, Lifetime: &LifetimeConfig{Ages: ages}}
		if err := cfg.check(); err != nil {
			t.Fatalf("ParseAges(%q) = %v, which Run refuses: %v", s, ages, err)
		}
	})
}
