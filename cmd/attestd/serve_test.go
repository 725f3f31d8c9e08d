package main

import (
	"testing"
	"time"

	"github.com/attestd/attestd/internal/daemon"
)

// Only launchd is sure to start an exited daemon again: the default idle
// exit is for --launchd; --listen-fd exits only when asked to.
func TestExitIdleFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		launchd bool
		value   time.Duration
		given   bool
		want    time.Duration
	}{
		{"launchd, default", true, daemon.DefaultExitIdle, false, daemon.DefaultExitIdle},
		{"launchd, given", true, 5 * time.Second, true, 5 * time.Second},
		{"launchd, turned off", true, 0, true, 0},
		{"listen-fd, default", false, daemon.DefaultExitIdle, false, 0},
		{"listen-fd, given", false, 5 * time.Second, true, 5 * time.Second},
	} {
		if got := exitIdleFor(tc.launchd, tc.value, tc.given); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
