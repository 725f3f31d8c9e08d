package provider

// MacOSRequirement says once, for every message that needs it, which macOS
// attestd runs on and why: DeviceCheck itself is older.
const MacOSRequirement = "attestd needs macOS 12 or later: DeviceCheck exists from macOS 10.15, but attestd is a Go program, and Go needs macOS 12"
