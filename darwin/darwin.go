// Package darwin holds every call into Apple frameworks and libSystem,
// made through purego without cgo: DeviceCheck, the GUI-session check, the
// helper's own signing identity, launchd socket activation and the peer
// code-signing check. On other systems each entry point returns an error
// that wraps ErrUnsupported.
package darwin

import (
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// ErrUnsupported is returned by every entry point on systems other than
// macOS.
var ErrUnsupported = fmt.Errorf("%w: needs macOS, this is %s", provider.ErrUnsupported, runtime.GOOS)

// DeviceCheckOptions configure the DeviceCheck provider.
type DeviceCheckOptions struct {
	// Timeout bounds one generateToken call; zero means 10 s.
	Timeout time.Duration
}

// NewDeviceCheck returns the DeviceCheck provider. It fails with a
// provider.ErrNoGUISession or provider.ErrUnsupported chain when tokens
// cannot be made here.
func NewDeviceCheck(opts DeviceCheckOptions) (provider.Provider, error) {
	return newDeviceCheck(opts)
}

// Identity is who the running helper is, as filled into the header's b and
// m fields.
type Identity struct {
	BundleID string // main bundle identifier; empty outside a bundle
	TeamID   string // Team ID of the own code signature; empty if unsigned or ad-hoc
}

// SelfIdentity returns the running process's bundle id and team id.
func SelfIdentity() (Identity, error) { return selfIdentity() }

// ActivateSocket returns the listeners launchd created for the socket
// named in the LaunchAgent plist's Sockets dictionary.
func ActivateSocket(name string) ([]net.Listener, error) { return activateSocket(name) }

// PeerChecker checks a connected peer before it is served.
type PeerChecker func(conn *net.UnixConn) error

// NewPeerRequirement returns a PeerChecker that admits only peers whose code
// signature satisfies the code requirement text.
func NewPeerRequirement(requirement string) (PeerChecker, error) {
	return newPeerRequirement(requirement)
}
