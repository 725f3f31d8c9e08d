package darwin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
)

// These tests call the real frameworks. Without a GUI login session
// (SSH, a LaunchDaemon, most CI) DeviceCheck would trap the process, so
// the tests that touch it skip.

func requireGUI(t *testing.T) {
	t.Helper()
	ok, err := GUISession()
	if err != nil {
		t.Fatalf("GUISession: %v", err)
	}
	if !ok {
		t.Skip("no GUI login session: DeviceCheck would trap the process (run from a logged-in Terminal)")
	}
}

func TestNativeAvailable(t *testing.T) {
	if !Available() {
		t.Fatal("Available() = false on darwin")
	}
}

func TestNativeGUISession(t *testing.T) {
	ok, err := GUISession()
	if err != nil {
		t.Fatalf("GUISession: %v", err)
	}
	t.Logf("GUI session: %v", ok)
	if !ok {
		if _, err := NewDeviceCheck(DeviceCheckOptions{}); !errors.Is(err, provider.ErrNoGUISession) {
			t.Fatalf("NewDeviceCheck without a GUI session = %v, want ErrNoGUISession", err)
		}
		if _, err := DeviceCheckSupported(); !errors.Is(err, provider.ErrNoGUISession) {
			t.Fatalf("DeviceCheckSupported without a GUI session = %v, want ErrNoGUISession", err)
		}
	}
}

func TestNativeIsSupported(t *testing.T) {
	requireGUI(t)
	ok, err := DeviceCheckSupported()
	if err != nil {
		t.Fatalf("DeviceCheckSupported: %v", err)
	}
	t.Logf("DCDevice.isSupported = %v", ok)
}

func TestNativeGenerateUnsigned(t *testing.T) {
	requireGUI(t)
	sig, err := SelfSignature()
	if err != nil {
		t.Fatal(err)
	}
	if sig.TeamID != "" {
		t.Skipf("the test binary is signed by team %s; this test wants an unsigned or ad-hoc binary", sig.TeamID)
	}
	p, err := NewDeviceCheck(DeviceCheckOptions{Timeout: 30 * time.Second})
	if err != nil {
		if provider.ReasonOf(err) != provider.ReasonUnsupported {
			t.Fatalf("NewDeviceCheck = %v, want success or unsupported", err)
		}
		t.Skipf("DeviceCheck unsupported here: %v", err)
	}
	if p.Name() != header.KindDeviceCheck {
		t.Errorf("Name = %q", p.Name())
	}
	ans, err := p.Generate(context.Background())
	token := ans.Token
	if err == nil {
		t.Fatalf("an unsigned test binary (%v) got a %d-byte token (fingerprint %s); expected DeviceCheck to refuse it",
			sig, len(token), header.Fingerprint(token))
	}
	code, hasCode := provider.DCErrorCodeOf(err)
	t.Logf("Generate: reason %s, dcErrorCode %d (%v): %v", provider.ReasonOf(err), code, hasCode, err)
}

func TestNativeSelf(t *testing.T) {
	sig, err := SelfSignature()
	if err != nil {
		t.Fatalf("SelfSignature: %v", err)
	}
	t.Logf("signature: %v", sig)
	id, err := SelfIdentity()
	if err != nil {
		t.Fatalf("SelfIdentity: %v", err)
	}
	t.Logf("identity: %+v", id)
	if sig.AdHoc() && id.TeamID != "" {
		t.Errorf("ad-hoc signature with Team ID %q", id.TeamID)
	}
	v, err := OSVersion()
	if err != nil || v == "" {
		t.Fatalf("OSVersion = %q, %v", v, err)
	}
	t.Logf("macOS %s", v)
}

func TestNativeActivateSocketOutsideLaunchd(t *testing.T) {
	ls, err := ActivateSocket(DefaultLaunchdSocket)
	for _, l := range ls {
		l.Close()
	}
	var ae *ActivateError
	if !errors.As(err, &ae) {
		t.Fatalf("ActivateSocket outside launchd = %v, want *ActivateError", err)
	}
	// launch.h: ESRCH when the caller is not managed by launchd, ENOENT
	// when its job has no socket of that name. A test run from Terminal
	// or a CI runner can count as part of that app's or runner's job, so
	// either answer is right; doctor treats them alike.
	if !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("ActivateSocket outside launchd = %v (errno %d), want ESRCH or ENOENT", err, ae.Errno)
	}
	t.Logf("ActivateSocket outside launchd = %v", err)
}

func TestNativePeerRequirement(t *testing.T) {
	if _, err := NewPeerRequirement("this is not a requirement"); err == nil {
		t.Fatal("nonsense requirement compiled")
	}
	never, err := NewPeerRequirement("never")
	if err != nil {
		t.Fatal(err)
	}
	always, err := NewPeerRequirement("always")
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The peer is this test binary.
	t0, err := peerAuditToken(s)
	if err != nil {
		t.Fatalf("peerAuditToken: %v", err)
	}
	if t0.pid() != syscall.Getpid() {
		t.Errorf("audit token pid = %d, want %d", t0.pid(), syscall.Getpid())
	}
	if err := never(s); !errors.Is(err, ErrPeerRejected) {
		t.Errorf(`"never" = %v, want ErrPeerRejected`, err)
	}
	// A linker-signed (arm64) binary should pass; an unsigned (amd64) one
	// is rejected as unsigned. Either way no crash.
	t.Logf(`"always" = %v`, always(s))
}

func TestNativeTranslated(t *testing.T) {
	tr, err := Translated()
	if err != nil {
		t.Fatalf("Translated: %v", err)
	}
	t.Logf("running under Rosetta: %v (GOARCH %s)", tr, runtime.GOARCH)
	if tr && runtime.GOARCH == "arm64" {
		t.Error("an arm64 binary reports Rosetta translation")
	}
}

// The test binary's main thread runs no run loop: a function posted to
// the main queue must not run, and PingMainQueue must say so.
func TestNativeMainQueueNotServiced(t *testing.T) {
	if running, _ := MainLoopRunning(); running {
		t.Fatal("MainLoopRunning = true in a test binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := PingMainQueue(ctx); !errors.Is(err, ErrMainQueueNotServiced) {
		t.Fatalf("PingMainQueue without a run loop = %v, want ErrMainQueueNotServiced", err)
	}
}

// mainLoopChild is set in the child process of TestNativeRunMainLoop.
const mainLoopChild = "ATTESTD_DARWIN_TEST_MAINLOOP"

func init() {
	if os.Getenv(mainLoopChild) != "1" {
		return
	}
	// As cmd/attestd does: lock the main goroutine to the main thread in
	// init, then run the work elsewhere while the main thread runs the
	// loop.
	runtime.LockOSThread()
	code := RunMainLoop(func() int {
		if running, why := MainLoopRunning(); !running {
			fmt.Println("main loop not running:", why)
			return 3
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := PingMainQueue(ctx); err != nil {
			fmt.Println("ping:", err)
			return 4
		}
		fmt.Println("main queue serviced")
		return 7
	})
	if running, _ := MainLoopRunning(); running {
		fmt.Println("main loop still running after RunMainLoop returned")
		os.Exit(5)
	}
	os.Exit(code)
}

func TestNativeRunMainLoop(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainLoopChild+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("child: %v, output %q; want exit 7 (main queue serviced, f's result returned)", err, out)
	}
	if !strings.Contains(string(out), "main queue serviced") {
		t.Errorf("child output %q", out)
	}
}

func TestNativeCompletionWhere(t *testing.T) {
	requireGUI(t)
	seen := make(chan Completion, 2)
	p, err := NewDeviceCheck(DeviceCheckOptions{Timeout: 30 * time.Second, OnCompletion: func(c Completion) { seen <- c }})
	if err != nil {
		t.Skipf("DeviceCheck not available: %v", err)
	}
	_, genErr := p.Generate(context.Background())
	select {
	case c := <-seen:
		t.Logf("completion handler ran %v (generate: %v)", c, genErr)
		if c.MainQueue() {
			t.Errorf("the handler ran on the main queue, which this test binary does not service: %v", c)
		}
	case <-time.After(time.Second):
		t.Fatalf("no completion observed (generate: %v): is Apple posting it to the main queue?", genErr)
	}
}
