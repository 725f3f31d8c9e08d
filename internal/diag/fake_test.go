package diag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// fakeEnv is an Env whose answers are its fields. A nil func panics when
// asked, so a case leaves nil what it expects never to be asked.
type fakeEnv struct {
	goos, goarch string
	native       bool
	uid, pid     int
	now          func() time.Time

	osVersion          func() (string, error)
	translated         func() (bool, error)
	guiSession         func() (bool, error)
	dcSupported        func() (bool, error)
	signature          func() (darwin.Signature, error)
	identity           func() (darwin.Identity, error)
	activate           func(name string) ([]net.Listener, error)
	newDeviceCheck     func(darwin.DeviceCheckOptions) (provider.Provider, error)
	aaSupported        func() (bool, error)
	newAppAttest       func(darwin.AppAttestOptions) (darwin.AppAttestService, error)
	newKeychain        func(darwin.KeychainOptions) (darwin.KeyStore, error)
	mainLoop           func() (bool, string)
	pingMainQueue      func(context.Context) error
	newPeerRequirement func(string) (darwin.PeerChecker, error)
	status             func(ctx context.Context, path string) (protocol.StatusResult, error)
	executable         func() (string, error)
	launchctl          func(ctx context.Context, args ...string) ([]byte, error)
}

var _ Env = (*fakeEnv)(nil)

func (e *fakeEnv) Platform() (string, string)          { return e.goos, e.goarch }
func (e *fakeEnv) Native() bool                        { return e.native }
func (e *fakeEnv) UID() int                            { return e.uid }
func (e *fakeEnv) PID() int                            { return e.pid }
func (e *fakeEnv) Now() time.Time                      { return e.now() }
func (e *fakeEnv) OSVersion() (string, error)          { return e.osVersion() }
func (e *fakeEnv) Translated() (bool, error)           { return e.translated() }
func (e *fakeEnv) GUISession() (bool, error)           { return e.guiSession() }
func (e *fakeEnv) DeviceCheckSupported() (bool, error) { return e.dcSupported() }
func (e *fakeEnv) Signature() (darwin.Signature, error) {
	return e.signature()
}
func (e *fakeEnv) Identity() (darwin.Identity, error) { return e.identity() }
func (e *fakeEnv) ActivateSocket(name string) ([]net.Listener, error) {
	return e.activate(name)
}
func (e *fakeEnv) NewDeviceCheck(opts darwin.DeviceCheckOptions) (provider.Provider, error) {
	return e.newDeviceCheck(opts)
}
func (e *fakeEnv) AppAttestSupported() (bool, error) { return e.aaSupported() }
func (e *fakeEnv) NewAppAttest(opts darwin.AppAttestOptions) (darwin.AppAttestService, error) {
	return e.newAppAttest(opts)
}
func (e *fakeEnv) NewKeychain(opts darwin.KeychainOptions) (darwin.KeyStore, error) {
	return e.newKeychain(opts)
}
func (e *fakeEnv) MainLoopRunning() (bool, string)         { return e.mainLoop() }
func (e *fakeEnv) PingMainQueue(ctx context.Context) error { return e.pingMainQueue(ctx) }
func (e *fakeEnv) NewPeerRequirement(req string) (darwin.PeerChecker, error) {
	return e.newPeerRequirement(req)
}
func (e *fakeEnv) DaemonStatus(ctx context.Context, path string) (protocol.StatusResult, error) {
	return e.status(ctx, path)
}
func (e *fakeEnv) Executable() (string, error) { return e.executable() }
func (e *fakeEnv) Launchctl(ctx context.Context, args ...string) ([]byte, error) {
	return e.launchctl(ctx, args...)
}

// macEnv is a Mac on which every doctor check passes; cases change one
// thing.
func macEnv(t *testing.T) *fakeEnv {
	t.Helper()
	return &fakeEnv{
		goos: "darwin", goarch: "arm64", native: true, uid: os.Getuid(),
		osVersion:   func() (string, error) { return "15.1 (24B83)", nil },
		guiSession:  func() (bool, error) { return true, nil },
		dcSupported: func() (bool, error) { return true, nil },
		signature: func() (darwin.Signature, error) {
			return darwin.Signature{Signed: true, Identifier: "com.example.attestd", TeamID: "ABCDE12345", Flags: darwin.SignatureRuntime}, nil
		},
		identity: func() (darwin.Identity, error) {
			return darwin.Identity{BundleID: "com.example.attestd", TeamID: "ABCDE12345"}, nil
		},
		activate: func(name string) ([]net.Listener, error) {
			return nil, &darwin.ActivateError{Name: name, Errno: syscall.ESRCH}
		},
		newDeviceCheck: func(darwin.DeviceCheckOptions) (provider.Provider, error) {
			return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) { return []byte("token"), nil }}, nil
		},
		status: func(context.Context, string) (protocol.StatusResult, error) {
			t.Error("asked a daemon that does not answer")
			return protocol.StatusResult{}, errors.New("unreachable")
		},
	}
}

// selftestMac is a Mac for the selftest on which everything works; cases
// change one thing. Its DeviceCheck stand-in answers from answer and
// reports completion through OnCompletion as Apple's handler would.
type selftestMac struct {
	sig        darwin.Signature
	gui        bool
	supported  func() (bool, error)
	answer     func() ([]byte, error)
	completion *darwin.Completion
	loop       bool
	ping       error
	dcCalls    atomic.Int32 // calls that touched DeviceCheck
	// App Attest: isSupported, the service (nil: none), the Keychain.
	aaSupported func() (bool, error)
	appAttest   *fakeAppAttest
	keychain    *fakeKeychains
}

func newSelftestMac() *selftestMac {
	return &selftestMac{
		sig: darwin.Signature{Signed: true, Identifier: "dev.attestd.helper", TeamID: "ABCDE12345", Flags: darwin.SignatureRuntime},
		gui: true, loop: true,
		supported:   func() (bool, error) { return true, nil },
		answer:      func() ([]byte, error) { return []byte("apple-token-bytes"), nil },
		completion:  &darwin.Completion{Queue: "com.apple.devicecheck.reply", Thread: 11, RequestThread: 4},
		aaSupported: func() (bool, error) { return true, nil },
		appAttest:   &fakeAppAttest{answer: func() ([]byte, error) { return []byte("apple-assertion-bytes"), nil }},
		keychain:    &fakeKeychains{items: map[string]string{}},
	}
}

func (m *selftestMac) env(t *testing.T) *fakeEnv {
	return &fakeEnv{
		goos: "darwin", goarch: "arm64", native: true, uid: os.Getuid(), pid: os.Getpid(),
		now:        time.Now,
		osVersion:  func() (string, error) { return "15.1 (24B83)", nil },
		translated: func() (bool, error) { return false, nil },
		guiSession: func() (bool, error) { return m.gui, nil },
		dcSupported: func() (bool, error) {
			m.dcCalls.Add(1)
			return m.supported()
		},
		signature: func() (darwin.Signature, error) { return m.sig, nil },
		identity: func() (darwin.Identity, error) {
			id := darwin.Identity{BundleID: "dev.attestd.helper"}
			if hasTeam(m.sig) {
				id.TeamID = m.sig.TeamID
			}
			return id, nil
		},
		newDeviceCheck: func(opts darwin.DeviceCheckOptions) (provider.Provider, error) {
			m.dcCalls.Add(1)
			return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) {
				tok, err := m.answer()
				if m.completion != nil && opts.OnCompletion != nil {
					opts.OnCompletion(*m.completion)
				}
				return tok, err
			}}, nil
		},
		aaSupported: func() (bool, error) {
			m.dcCalls.Add(1)
			return m.aaSupported()
		},
		newAppAttest: func(opts darwin.AppAttestOptions) (darwin.AppAttestService, error) {
			m.dcCalls.Add(1)
			if m.appAttest == nil {
				return nil, errors.New("no App Attest in this fake")
			}
			m.appAttest.observe = opts.OnCompletion
			return m.appAttest, nil
		},
		newKeychain: func(opts darwin.KeychainOptions) (darwin.KeyStore, error) {
			return &fakeKeychain{all: m.keychain, service: opts.Service}, nil
		},
		mainLoop:      func() (bool, string) { return m.loop, "RunMainLoop was not called" },
		pingMainQueue: func(context.Context) error { return m.ping },
		// The code-signing stand-in admits exactly the requirement the
		// selftest derives from the signature it reads.
		newPeerRequirement: func(req string) (darwin.PeerChecker, error) {
			return func(*net.UnixConn) error {
				if req == selfRequirement(m.sig) {
					return nil
				}
				return fmt.Errorf("%w: code failed to satisfy %s", darwin.ErrPeerRejected, req)
			}, nil
		},
		executable: func() (string, error) {
			return "/Applications/Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd", nil
		},
		launchctl: func(context.Context, ...string) ([]byte, error) {
			t.Error("launchctl called without --launchd")
			return nil, errors.New("no launchctl")
		},
	}
}

// statuses maps each check of r to its status.
func statuses(r Report) map[string]Status {
	m := map[string]Status{}
	for _, c := range r.Checks {
		m[c.Name] = c.Status
	}
	return m
}

// find returns the check named name, or a zero Check.
func find(r Report, name string) Check {
	c, _ := r.Find(name)
	return c
}

// mustFind returns the check named name and fails the test without one.
func mustFind(t *testing.T, r Report, name string) Check {
	t.Helper()
	c, ok := r.Find(name)
	if !ok {
		t.Fatalf("no check %q in %v", name, statuses(r))
	}
	return c
}

// tickClock is a clock that moves 1.5 ms each time it is read, so the
// durations a report shows are the same on every run.
type tickClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTickClock() *tickClock {
	return &tickClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *tickClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(1500 * time.Microsecond)
	return c.t
}

// fakeAppAttest is App Attest on a Mac where it works: a fixed key, an
// assertion from answer, completions on Apple's queue.
type fakeAppAttest struct {
	answer  func() ([]byte, error)
	observe func(darwin.AppAttestOp, darwin.Completion)
}

const fakeKeyID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func (f *fakeAppAttest) Supported() (bool, error) { return true, nil }
func (f *fakeAppAttest) GenerateKey(context.Context) (string, error) {
	return fakeKeyID, nil
}
func (f *fakeAppAttest) AttestKey(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("the selftest does not attest")
}
func (f *fakeAppAttest) GenerateAssertion(_ context.Context, keyID string, h []byte) ([]byte, error) {
	if keyID != fakeKeyID || len(h) != 32 {
		return nil, fmt.Errorf("assertion of key %q over %d bytes", keyID, len(h))
	}
	if f.observe != nil {
		f.observe(darwin.OpGenerateAssertion, darwin.Completion{Queue: "com.apple.devicecheck.appattest", Thread: 12, RequestThread: 4})
	}
	return f.answer()
}

// fakeKeychains are the login Keychain's generic-password items, by
// service; fakeKeychain is one service's.
type fakeKeychains struct {
	mu    sync.Mutex
	items map[string]string
}

type fakeKeychain struct {
	all     *fakeKeychains
	service string
}

func (k *fakeKeychain) Get(context.Context) (string, error) {
	k.all.mu.Lock()
	defer k.all.mu.Unlock()
	id, ok := k.all.items[k.service]
	if !ok {
		return "", fmt.Errorf("keychain item (service %q): %w", k.service, darwin.ErrNotFound)
	}
	return id, nil
}

func (k *fakeKeychain) Set(_ context.Context, id string) error {
	k.all.mu.Lock()
	defer k.all.mu.Unlock()
	k.all.items[k.service] = id
	return nil
}

func (k *fakeKeychain) Delete(context.Context) error {
	k.all.mu.Lock()
	defer k.all.mu.Unlock()
	delete(k.all.items, k.service)
	return nil
}
