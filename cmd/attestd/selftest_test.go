package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// runSelftestJSON runs "attestd selftest --json" in-process and returns
// the exit code and the report.
func runSelftestJSON(t *testing.T, args ...string) (int, selftestReport) {
	t.Helper()
	code, out, stderr := runCLI(t, nil, "", append([]string{"selftest", "--json"}, args...)...)
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	var r selftestReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("selftest --json printed %q: %v", out, err)
	}
	return code, r
}

func stStatuses(r selftestReport) map[string]string {
	m := map[string]string{}
	for _, c := range r.Checks {
		m[c.Name] = c.Status
	}
	return m
}

func stFind(t *testing.T, r selftestReport, name string) stCheck {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %v", name, stStatuses(r))
	return stCheck{}
}

// TestSelftestOffMac is what Linux CI and any non-Mac see: valid JSON,
// the portable checks pass, every macOS check is skipped, exit 0.
func TestSelftestOffMac(t *testing.T) {
	if darwin.Available() {
		t.Skip("this is a Mac: the macOS checks run here")
	}
	code, r := runSelftestJSON(t)
	if code != 0 || !r.OK || r.Failed != 0 {
		t.Fatalf("exit %d, ok %v, failed %d: %+v", code, r.OK, r.Failed, r.Checks)
	}
	got := stStatuses(r)
	for _, name := range macChecks {
		if got[name] != statusSkip {
			t.Errorf("%s = %q, want skipped", name, got[name])
		}
	}
	for _, name := range []string{"platform", "socket-roundtrip"} {
		if got[name] != statusPass {
			t.Errorf("%s = %q, want pass (%s)", name, got[name], stFind(t, r, name).Detail)
		}
	}
	if r.Skipped != len(macChecks) || len(r.Checks) != len(macChecks)+2 {
		t.Errorf("skipped %d of %d checks, want %d of %d", r.Skipped, len(r.Checks), len(macChecks), len(macChecks)+2)
	}

	// The table for people says the same.
	code, out, _ := runCLI(t, nil, "", "selftest")
	if code != 0 || !strings.Contains(out, "no check failed (9 skipped)") || !strings.Contains(out, "macOS only") {
		t.Errorf("selftest (table) exit %d:\n%s", code, out)
	}
}

func TestSelftestUsage(t *testing.T) {
	for _, args := range [][]string{{"selftest", "--timeout", "0s"}, {"selftest", "extra"}} {
		if code, _, stderr := runCLI(t, nil, "", args...); code != 2 || !strings.Contains(stderr, "attestd: error:") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

// selftestMac is a Mac for the selftest's seams on which everything works;
// cases change one thing. Its DeviceCheck stand-in answers from answer and
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
}

func newSelftestMac() *selftestMac {
	return &selftestMac{
		sig: darwin.Signature{Signed: true, Identifier: "dev.attestd.helper", TeamID: "ABCDE12345", Flags: darwin.SignatureRuntime},
		gui: true, loop: true,
		supported:  func() (bool, error) { return true, nil },
		answer:     func() ([]byte, error) { return []byte("apple-token-bytes"), nil },
		completion: &darwin.Completion{Queue: "com.apple.devicecheck.reply", Thread: 11, RequestThread: 4},
	}
}

func (m *selftestMac) env(t *testing.T) selftestEnv {
	return selftestEnv{
		goos: "darwin", goarch: "arm64", native: true, uid: os.Getuid(), pid: os.Getpid(),
		now: time.Now, tempDir: t.TempDir(),
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

func TestSelftestOnMac(t *testing.T) {
	dcErr := darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorInvalidKey, "The operation couldn’t be completed.")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name      string
		change    func(m *selftestMac)
		timeout   time.Duration
		want      map[string]string // check -> status; unlisted ones pass (launchd-agent skipped)
		ok        bool
		contains  map[string]string // check -> text in its detail
		noTouchDC bool
	}{
		{name: "everything works", ok: true,
			contains: map[string]string{
				"completion-queue":  `a thread other than the main thread (thread 11; the request was sent from thread 4), dispatch queue "com.apple.devicecheck.reply"`,
				"devicecheck-token": "17-byte token",
				"peer-requirement":  "was served",
				"identity":          "team ABCDE12345",
			}},
		{name: "over SSH", change: func(m *selftestMac) { m.gui = false }, ok: true, noTouchDC: true,
			want: map[string]string{"gui-session": statusSkip, "devicecheck-supported": statusSkip,
				"devicecheck-token": statusSkip, "completion-queue": statusSkip}},
		{name: "isSupported hangs", timeout: 50 * time.Millisecond,
			change: func(m *selftestMac) {
				m.supported = func() (bool, error) { <-release; return true, nil }
			},
			want:     map[string]string{"devicecheck-supported": statusFail, "devicecheck-token": statusSkip, "completion-queue": statusSkip},
			contains: map[string]string{"devicecheck-supported": "did not return within 50ms"}},
		{name: "unsupported", change: func(m *selftestMac) { m.supported = func() (bool, error) { return false, nil } },
			want: map[string]string{"devicecheck-supported": statusFail, "devicecheck-token": statusSkip, "completion-queue": statusSkip}},
		{name: "ad-hoc binary refused cleanly", ok: true,
			change: func(m *selftestMac) {
				m.sig = darwin.Signature{Signed: true, Identifier: "attestd-5555", Flags: darwin.SignatureAdhoc | darwin.SignatureLinkerSigned}
				m.answer = func() ([]byte, error) { return nil, dcErr }
			},
			contains: map[string]string{
				"devicecheck-token": "refused this ad-hoc (linker-signed) binary cleanly",
				"identity":          "ad-hoc (linker-signed)",
				"peer-requirement":  `identifier "attestd-5555" was served`,
			}},
		{name: "unsigned binary", ok: true,
			change: func(m *selftestMac) {
				m.sig = darwin.Signature{}
				m.answer = func() ([]byte, error) { return nil, dcErr }
			},
			contains: map[string]string{"peer-requirement": "served half skipped: this binary is unsigned"}},
		{name: "team-signed binary refused",
			change: func(m *selftestMac) { m.answer = func() ([]byte, error) { return nil, dcErr } },
			want:   map[string]string{"devicecheck-token": statusFail},
			contains: map[string]string{
				"devicecheck-token": "invalidKey",
				"completion-queue":  "not needed",
			}},
		{name: "completion on the main queue", ok: true,
			change: func(m *selftestMac) {
				m.completion = &darwin.Completion{MainThread: true, Queue: "com.apple.main-thread", Thread: 1, RequestThread: 9}
			},
			contains: map[string]string{"completion-queue": "MAIN QUEUE"}},
		{name: "no completion, main queue not serviced",
			change: func(m *selftestMac) {
				m.completion = nil
				m.loop, m.ping = false, darwin.ErrMainQueueNotServiced
				m.answer = func() ([]byte, error) {
					return nil, &provider.Error{Reason: provider.ReasonTimeout, Msg: "no answer", Err: context.DeadlineExceeded}
				}
			},
			want: map[string]string{"devicecheck-token": statusFail, "completion-queue": statusFail, "main-run-loop": statusFail},
			contains: map[string]string{
				"completion-queue": "Apple may be posting it to the main queue",
				"main-run-loop":    "would never run",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSelftestMac()
			if tt.change != nil {
				tt.change(m)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			r := selftest(context.Background(), m.env(t), selftestOptions{timeout: timeout})
			got := stStatuses(r)
			for _, name := range append([]string{"platform", "socket-roundtrip"}, macChecks...) {
				want := statusPass
				if name == "launchd-agent" {
					want = statusSkip
				}
				if w, ok := tt.want[name]; ok {
					want = w
				}
				if got[name] != want {
					t.Errorf("%s = %q, want %q (%s)", name, got[name], want, stFind(t, r, name).Detail)
				}
			}
			if r.OK != tt.ok {
				t.Errorf("OK = %v, want %v", r.OK, tt.ok)
			}
			for name, text := range tt.contains {
				if d := stFind(t, r, name).Detail; !strings.Contains(d, text) {
					t.Errorf("%s detail %q, want it to contain %q", name, d, text)
				}
			}
			if tt.noTouchDC && m.dcCalls.Load() != 0 {
				t.Errorf("DeviceCheck was touched %d times without a GUI session", m.dcCalls.Load())
			}
		})
	}
}

func TestSelftestFacts(t *testing.T) {
	m := newSelftestMac()
	m.completion = &darwin.Completion{MainThread: true, Queue: "com.apple.main-thread", Thread: 1, RequestThread: 9, DuringRequest: true}
	r := selftest(context.Background(), m.env(t), selftestOptions{timeout: 10 * time.Second})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Checks []struct {
			Name  string         `json:"name"`
			Ms    *float64       `json:"ms"`
			Facts map[string]any `json:"facts"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	facts := map[string]map[string]any{}
	for _, c := range back.Checks {
		facts[c.Name] = c.Facts
		if (c.Name == "devicecheck-token" || c.Name == "devicecheck-supported") && c.Ms == nil {
			t.Errorf("%s has no duration", c.Name)
		}
	}
	for check, want := range map[string]map[string]any{
		"completion-queue":  {"mainThread": true, "queue": "com.apple.main-thread", "mainQueue": true, "duringRequest": true, "thread": float64(1)},
		"devicecheck-token": {"tokenBytes": float64(17), "fingerprint": header.Fingerprint([]byte("apple-token-bytes"))},
		"identity":          {"teamId": "ABCDE12345", "hardenedRuntime": true, "bundleId": "dev.attestd.helper"},
		"main-run-loop":     {"running": true, "mainQueueServiced": true},
	} {
		for k, v := range want {
			if facts[check][k] != v {
				t.Errorf("%s fact %s = %v (%T), want %v", check, k, facts[check][k], facts[check][k], v)
			}
		}
	}
	// A token never appears in the report, only its size and fingerprint.
	if strings.Contains(string(b), "apple-token-bytes") {
		t.Error("the report holds the token")
	}
}

func TestJudgeToken(t *testing.T) {
	dcErr := darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorFeatureUnsupported, "unsupported")
	tests := []struct {
		name     string
		team     bool
		r        bounded[[]byte]
		status   string
		contains string
	}{
		{"token, team", true, bounded[[]byte]{v: []byte("t")}, statusPass, "a 1-byte token"},
		{"token, no team", false, bounded[[]byte]{v: []byte("t")}, statusPass, "did not require a Team ID"},
		{"refused, no team", false, bounded[[]byte]{err: dcErr}, statusPass, "refused this ad-hoc binary cleanly"},
		{"refused, team", true, bounded[[]byte]{err: dcErr}, statusFail, "code 1"},
		{"hung", false, bounded[[]byte]{hung: true, err: context.DeadlineExceeded}, statusFail, "did not call its completion handler within 5s"},
		{"provider timeout", true, bounded[[]byte]{err: &provider.Error{Reason: provider.ReasonTimeout}}, statusFail, "within 5s"},
		{"other error", false, bounded[[]byte]{err: errors.New("dlopen failed")}, statusFail, "without an NSError"},
		{"empty", true, bounded[[]byte]{v: []byte{}}, statusFail, "empty token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeToken(tt.team, "ad-hoc", tt.r, 5*time.Second)
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.contains) {
				t.Errorf("judgeToken = %s %q, want %s containing %q", c.Status, c.Detail, tt.status, tt.contains)
			}
		})
	}
}

func TestJudgeCompletion(t *testing.T) {
	timeout := &provider.Error{Reason: provider.ReasonTimeout}
	tests := []struct {
		name     string
		c        *darwin.Completion
		tokErr   error
		loop     bool
		ping     error
		status   string
		contains string
	}{
		{"worker queue", &darwin.Completion{Queue: "q"}, nil, true, nil, statusPass, "not needed"},
		{"main thread", &darwin.Completion{MainThread: true}, nil, true, nil, statusPass, "MAIN QUEUE"},
		{"main queue label", &darwin.Completion{Queue: "com.apple.main-thread"}, nil, true, nil, statusPass, "MAIN QUEUE"},
		{"never ran, loop off", nil, timeout, false, darwin.ErrMainQueueNotServiced, statusFail, "main queue"},
		{"never ran, queue serviced", nil, timeout, true, nil, statusFail, "DeviceCheck itself did not answer"},
		{"never ran, loop on but queue stuck", nil, timeout, true, darwin.ErrMainQueueNotServiced, statusFail, "not serviced"},
		{"token but nothing observed", nil, nil, true, nil, statusFail, "not observed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeCompletion(tt.c, tt.tokErr, tt.loop, "why", tt.ping)
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.contains) {
				t.Errorf("judgeCompletion = %s %q, want %s containing %q", c.Status, c.Detail, tt.status, tt.contains)
			}
		})
	}
}

func TestSigningKindAndRequirement(t *testing.T) {
	tests := []struct {
		sig  darwin.Signature
		kind string
		req  string
		team bool
	}{
		{darwin.Signature{}, "unsigned", "", false},
		{darwin.Signature{Signed: true, Identifier: "a-1", Flags: darwin.SignatureAdhoc | darwin.SignatureLinkerSigned}, "ad-hoc (linker-signed)", `identifier "a-1"`, false},
		{darwin.Signature{Signed: true, Identifier: "a-1", Flags: darwin.SignatureAdhoc}, "ad-hoc", `identifier "a-1"`, false},
		{darwin.Signature{Signed: true, Identifier: "com.x", TeamID: "T1"}, "team T1 (Developer ID or Apple Development certificate)",
			`identifier "com.x" and anchor apple generic and certificate leaf[subject.OU] = "T1"`, true},
		{darwin.Signature{Signed: true, Identifier: "com.x"}, "signed without a Team ID", `identifier "com.x"`, false},
	}
	for _, tt := range tests {
		if got := signingKind(tt.sig); got != tt.kind {
			t.Errorf("signingKind(%v) = %q, want %q", tt.sig, got, tt.kind)
		}
		if got := selfRequirement(tt.sig); got != tt.req {
			t.Errorf("selfRequirement(%v) = %q, want %q", tt.sig, got, tt.req)
		}
		if got := hasTeam(tt.sig); got != tt.team {
			t.Errorf("hasTeam(%v) = %v", tt.sig, got)
		}
	}
}

func TestCallBounded(t *testing.T) {
	r := callBounded(context.Background(), time.Now, 10*time.Second, func() (int, error) { return 7, nil })
	if r.hung || r.v != 7 || r.err != nil {
		t.Errorf("callBounded = %+v, want 7", r)
	}
	release := make(chan struct{})
	defer close(release)
	r = callBounded(context.Background(), time.Now, 20*time.Millisecond, func() (int, error) { <-release; return 1, nil })
	if !r.hung || !errors.Is(r.err, context.DeadlineExceeded) || r.elapsed < 20*time.Millisecond {
		t.Errorf("callBounded on a hung call = %+v, want hung after at least 20ms", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := callBounded(ctx, time.Now, time.Hour, func() (int, error) { <-release; return 1, nil }); !r.hung {
		t.Errorf("callBounded with a done context = %+v, want hung", r)
	}
}

func TestLaunchctlOutput(t *testing.T) {
	out := `gui/501/dev.attestd.selftest.77 = {
	active count = 1
	path = /tmp/x/dev.attestd.selftest.77.plist
	state = running
	program = /Applications/Attestd.app/Contents/MacOS/attestd
	pid = 4242
	sockets = {
		"Listeners" = {
			type = stream
			path = /private/tmp/com.apple.launchd.AbCdEf/Listeners
		}
	}
}`
	if pid, ok := launchctlPID(out); !ok || pid != 4242 {
		t.Errorf("launchctlPID = %d, %v", pid, ok)
	}
	if p, ok := launchctlSocketPath(out); !ok || p != "/private/tmp/com.apple.launchd.AbCdEf/Listeners" {
		t.Errorf("launchctlSocketPath = %q, %v", p, ok)
	}
	noSockets := "gui/501/x = {\n\tpath = /tmp/x.plist\n\tstate = waiting\n}"
	if p, ok := launchctlSocketPath(noSockets); ok {
		t.Errorf("launchctlSocketPath without sockets = %q", p)
	}
	if _, ok := launchctlPID(noSockets); ok {
		t.Error("launchctlPID found a pid in a job that is not running")
	}
	if got := lastLines("a\nb\nc\nd\n", 2); got != "c | d" {
		t.Errorf("lastLines = %q", got)
	}
	if !slices.Contains(macChecks, "launchd-agent") {
		t.Error("launchd-agent is not a macOS check")
	}
}
