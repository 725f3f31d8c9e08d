package darwin

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// ErrUnsupported is returned by every entry point on systems other than
// macOS.
var ErrUnsupported = fmt.Errorf("%w: needs macOS, this is %s", provider.ErrUnsupported, runtime.GOOS)

// Available reports whether this build calls into macOS frameworks, that
// is, whether it was built for darwin.
func Available() bool { return available }

// DeviceCheckOptions configure the DeviceCheck provider.
type DeviceCheckOptions struct {
	// Timeout bounds one generateToken call; zero means 10 s.
	Timeout time.Duration
	// OnCompletion, when set, is called with where Apple ran each
	// completion handler, on Apple's thread, after the token or error has
	// been copied; it must return quickly. attestd selftest uses it.
	OnCompletion func(Completion)
}

// Completion says where Apple ran one completion handler of
// generateTokenWithCompletionHandler: or of an App Attest method, which
// Apple does not document.
type Completion struct {
	// MainThread reports pthread_main_np() == 1 in the handler: Apple
	// called it on the process's main thread.
	MainThread bool
	// Queue is dispatch_queue_get_label(DISPATCH_CURRENT_QUEUE_LABEL) in
	// the handler: the label of the dispatch queue it runs on, or "".
	Queue string
	// Thread is the handler's thread id (pthread_threadid_np), and
	// RequestThread that of the thread that sent the request.
	Thread, RequestThread uint64
	// DuringRequest reports that Apple called the handler before the
	// request's message send had returned (synchronously).
	DuringRequest bool
}

// MainQueue reports whether the handler ran on the main thread or the
// main dispatch queue: then it runs only while the main thread services
// its run loop (see RunMainLoop).
func (c Completion) MainQueue() bool { return c.MainThread || c.Queue == mainQueueLabel }

// String describes the completion for people.
func (c Completion) String() string {
	where := "a thread other than the main thread"
	if c.MainThread {
		where = "the main thread"
	}
	s := fmt.Sprintf("on %s (thread %d; the request was sent from thread %d), ", where, c.Thread, c.RequestThread)
	if c.Queue == "" {
		s += "no dispatch queue label"
	} else {
		s += fmt.Sprintf("dispatch queue %q", c.Queue)
	}
	if c.DuringRequest {
		s += ", before the request returned"
	}
	return s
}

// DefaultTimeout bounds one generateToken call when
// DeviceCheckOptions.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// NewDeviceCheck returns the DeviceCheck provider. It fails with a
// provider.ErrNoGUISession or provider.ErrUnsupported chain when tokens
// cannot be made here. The provider runs one Apple request at a time.
func NewDeviceCheck(opts DeviceCheckOptions) (provider.Provider, error) {
	return newDeviceCheck(opts)
}

// GUISession reports whether this process's security session has graphic
// access, which DeviceCheck needs.
func GUISession() (bool, error) { return guiSession() }

// DeviceCheckSupported reports DCDevice.isSupported. It checks the GUI
// session first and fails with a provider.ErrNoGUISession chain, without
// touching DeviceCheck, when there is none.
func DeviceCheckSupported() (bool, error) { return deviceCheckSupported() }

// OSVersion returns the macOS product version, such as "14.5".
func OSVersion() (string, error) { return osVersion() }

// Identity is who the running helper is, as filled into the header's b and
// m fields.
type Identity struct {
	BundleID string // main bundle identifier; empty outside a bundle
	TeamID   string // Team ID of the own code signature; empty if unsigned or ad-hoc
}

// SelfIdentity returns the running process's bundle id and team id.
func SelfIdentity() (Identity, error) { return selfIdentity() }

// SelfSignature returns what the running process's own code signature
// says about it.
func SelfSignature() (Signature, error) { return selfSignature() }

// ActivateSocket returns the listeners launchd created for the socket
// named in the LaunchAgent plist's Sockets dictionary. A failure is an
// *ActivateError; errors.Is(err, syscall.ESRCH) reports a process that
// launchd did not start.
func ActivateSocket(name string) ([]net.Listener, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("launchd socket name %q: must be a non-empty key of the plist's Sockets dictionary", name)
	}
	return activateSocket(name)
}

// PeerChecker checks a connected peer before it is served.
type PeerChecker func(conn *net.UnixConn) error

// NewPeerRequirement returns a PeerChecker that admits only peers whose code
// signature satisfies the code requirement text, for example
//
//	anchor apple generic and certificate leaf[subject.OU] = "TEAMID"
//
// It fails if the text does not compile. The checker's errors wrap
// ErrPeerRejected. The compiled requirement lives as long as the process:
// make one checker at start-up.
func NewPeerRequirement(requirement string) (PeerChecker, error) {
	if err := validRequirementText(requirement); err != nil {
		return nil, err
	}
	return newPeerRequirement(requirement)
}

// Translated reports whether this process runs under Rosetta, an x86_64
// binary on Apple silicon (sysctl.proc_translated).
func Translated() (bool, error) { return translated() }
