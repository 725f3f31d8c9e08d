package diag

import (
	"context"
	"net"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// Env is what the checks ask the system. System is the real one; tests
// pass a fake.
type Env interface {
	// Platform returns the operating system and architecture, as
	// runtime.GOOS and runtime.GOARCH name them.
	Platform() (goos, goarch string)
	// Native reports whether this process can call Apple's frameworks
	// (darwin.Available); without them every macOS check is skipped.
	Native() bool
	// UID and PID are this process's user and process ids.
	UID() int
	PID() int
	// Now is the clock the checks time their calls with.
	Now() time.Time

	// OSVersion, Translated, GUISession and DeviceCheckSupported are
	// darwin's answers about this Mac and this process's session.
	OSVersion() (string, error)
	Translated() (bool, error)
	GUISession() (bool, error)
	DeviceCheckSupported() (bool, error)
	// Signature and Identity describe this executable's code signature
	// and bundle.
	Signature() (darwin.Signature, error)
	Identity() (darwin.Identity, error)
	// ActivateSocket asks launchd for this process's sockets named name.
	ActivateSocket(name string) ([]net.Listener, error)
	// NewDeviceCheck starts Apple's DeviceCheck provider.
	NewDeviceCheck(darwin.DeviceCheckOptions) (provider.Provider, error)
	// AppAttestSupported is DCAppAttestService.isSupported, NewAppAttest
	// starts App Attest, and NewKeychain opens the Keychain item of a
	// service (darwin's).
	AppAttestSupported() (bool, error)
	NewAppAttest(darwin.AppAttestOptions) (darwin.AppAttestService, error)
	NewKeychain(darwin.KeychainOptions) (darwin.KeyStore, error)
	// MainLoopRunning reports whether the main thread runs its run loop,
	// and why not; PingMainQueue waits until a function posted to the
	// main dispatch queue has run, or ctx ends.
	MainLoopRunning() (running bool, why string)
	PingMainQueue(ctx context.Context) error
	// NewPeerRequirement compiles a code requirement into a check of a
	// socket's peer.
	NewPeerRequirement(requirement string) (darwin.PeerChecker, error)

	// DaemonStatus asks the daemon listening on path for
	// attestation/status.
	DaemonStatus(ctx context.Context, path string) (protocol.StatusResult, error)
	// Executable is the path of this executable.
	Executable() (string, error)
	// Launchctl runs launchctl with args and returns its combined output.
	Launchctl(ctx context.Context, args ...string) ([]byte, error)
}

// System returns the Env of this process on this machine.
func System() Env { return system{} }

// system is the real Env: runtime, os and darwin answer, and the daemon's
// client asks the daemon.
type system struct{}

var _ Env = system{}

func (system) Platform() (string, string)          { return runtime.GOOS, runtime.GOARCH }
func (system) Native() bool                        { return darwin.Available() }
func (system) UID() int                            { return os.Getuid() }
func (system) PID() int                            { return os.Getpid() }
func (system) Now() time.Time                      { return time.Now() }
func (system) OSVersion() (string, error)          { return darwin.OSVersion() }
func (system) Translated() (bool, error)           { return darwin.Translated() }
func (system) GUISession() (bool, error)           { return darwin.GUISession() }
func (system) DeviceCheckSupported() (bool, error) { return darwin.DeviceCheckSupported() }
func (system) Signature() (darwin.Signature, error) {
	return darwin.SelfSignature()
}
func (system) Identity() (darwin.Identity, error) { return darwin.SelfIdentity() }
func (system) ActivateSocket(name string) ([]net.Listener, error) {
	return darwin.ActivateSocket(name)
}
func (system) NewDeviceCheck(opts darwin.DeviceCheckOptions) (provider.Provider, error) {
	return darwin.NewDeviceCheck(opts)
}
func (system) AppAttestSupported() (bool, error) { return darwin.AppAttestSupported() }
func (system) NewAppAttest(opts darwin.AppAttestOptions) (darwin.AppAttestService, error) {
	return darwin.NewAppAttest(opts)
}
func (system) NewKeychain(opts darwin.KeychainOptions) (darwin.KeyStore, error) {
	kc, err := darwin.NewKeychain(opts)
	if err != nil {
		return nil, err
	}
	return kc, nil
}
func (system) MainLoopRunning() (bool, string)         { return darwin.MainLoopRunning() }
func (system) PingMainQueue(ctx context.Context) error { return darwin.PingMainQueue(ctx) }
func (system) NewPeerRequirement(req string) (darwin.PeerChecker, error) {
	return darwin.NewPeerRequirement(req)
}
func (system) Executable() (string, error) { return os.Executable() }

// DaemonStatus gives the daemon 3 seconds to answer.
func (system) DaemonStatus(ctx context.Context, path string) (protocol.StatusResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := client.New(path)
	defer c.Close()
	return c.Status(ctx)
}

func (system) Launchctl(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "launchctl", args...).CombinedOutput()
}
