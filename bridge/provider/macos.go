package provider

// MinMacOS names the oldest macOS attestd runs on; every message that
// names it uses this.
const MinMacOS = "macOS 12"

// MacOSRequirement says once, for every message that needs it, which macOS
// attestd runs on and why: DeviceCheck itself is older.
const MacOSRequirement = "attestd needs " + MinMacOS + " or later: DeviceCheck exists from macOS 10.15, but attestd is a Go program, and Go needs " + MinMacOS

// DeviceCheckNeedsMacOS is the short form of MacOSRequirement, for hints
// that go on to say what to do instead.
const DeviceCheckNeedsMacOS = "DeviceCheck works only on " + MinMacOS + " or later"

// UseDevProvider is the advice where DeviceCheck cannot work.
const UseDevProvider = "use --provider dev for development"

// UnsupportedHint is the hint of a DeviceCheck that this system cannot
// offer.
const UnsupportedHint = MacOSRequirement + "; " + UseDevProvider

// NoGUISessionHint is the hint of ErrNoGUISession, for every message about
// a missing GUI login session.
const NoGUISessionHint = "run attestd as a LaunchAgent in the user's Aqua session, not over SSH or as a LaunchDaemon"

// DoctorHint is the hint of a failure to start DeviceCheck that carries
// none of its own: attestd doctor tells which check fails.
const DoctorHint = "run \"attestd doctor\" to see which check fails"
