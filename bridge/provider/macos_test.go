package provider

import "testing"

// TestHintWords pins the words of the hints composed from the constants
// in macos.go: users and the daemon's data.hint see exactly these.
func TestHintWords(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, got, want string }{
		{"MacOSRequirement", MacOSRequirement,
			"attestd needs macOS 12 or later: DeviceCheck exists from macOS 10.15, but attestd is a Go program, and Go needs macOS 12"},
		{"UnsupportedHint", UnsupportedHint,
			"attestd needs macOS 12 or later: DeviceCheck exists from macOS 10.15, but attestd is a Go program, and Go needs macOS 12; use --provider dev for development"},
		{"serve's start failure", DeviceCheckNeedsMacOS + "; " + UseDevProvider,
			"DeviceCheck works only on macOS 12 or later; use --provider dev for development"},
		{"NoGUISessionHint", ErrNoGUISession.Hint(),
			"run attestd as a LaunchAgent in the user's Aqua session, not over SSH or as a LaunchDaemon"},
		{"DoctorHint", DoctorHint, `run "attestd doctor" to see which check fails`},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
