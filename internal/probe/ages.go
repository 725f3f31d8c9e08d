package probe

import (
	"fmt"
	"strings"
	"time"
)

// DefaultAges are the token ages the lifetime search tries: Apple
// publishes no lifetime, and one report says about 30 s.
var DefaultAges = []time.Duration{
	0, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour,
}

// ParseAges reads a comma-separated list of ascending non-negative
// durations; 0s is added in front when missing, since the fresh token
// also serves the reuse and bad-token checks.
func ParseAges(s string) ([]time.Duration, error) {
	var ages []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, fmt.Errorf("negative age %v", d)
		}
		if len(ages) > 0 && d <= ages[len(ages)-1] {
			return nil, fmt.Errorf("ages must ascend: %v after %v", d, ages[len(ages)-1])
		}
		ages = append(ages, d)
	}
	if len(ages) == 0 || ages[0] != 0 {
		ages = append([]time.Duration{0}, ages...)
	}
	return ages, nil
}

// FormatAges writes ages the way ParseAges reads them, each as short as
// it goes (1m, not 1m0s).
func FormatAges(ages []time.Duration) string {
	s := make([]string, len(ages))
	for i, a := range ages {
		s[i] = shortDuration(a)
	}
	return strings.Join(s, ",")
}

// shortDuration prints 1m instead of 1m0s and 1h instead of 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
