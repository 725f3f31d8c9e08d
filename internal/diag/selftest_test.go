package diag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// TestSelftestOffMac is what Linux CI and any non-Mac see: the portable
// checks pass, every macOS check is skipped, and the report is OK.
func TestSelftestOffMac(t *testing.T) {
	t.Parallel()
	if darwin.Available() {
		t.Skip("this is a Mac: the macOS checks run here")
	}
	r := Selftest(context.Background(), System(), SelftestConfig{Version: "dev", TempDir: t.TempDir()})
	if !r.OK || r.Failed != 0 {
		t.Fatalf("ok %v, failed %d: %+v", r.OK, r.Failed, r.Checks)
	}
	got := statuses(r)
	for _, name := range macChecks {
		if got[name] != Skipped {
			t.Errorf("%s = %q, want skipped", name, got[name])
		}
	}
	for _, name := range []string{"platform", "socket-roundtrip"} {
		if got[name] != Pass {
			t.Errorf("%s = %q, want pass (%s)", name, got[name], mustFind(t, r, name).Detail)
		}
	}
	if r.Skipped != len(macChecks) || len(r.Checks) != len(macChecks)+2 {
		t.Errorf("skipped %d of %d checks, want %d of %d", r.Skipped, len(r.Checks), len(macChecks), len(macChecks)+2)
	}

	// The table for people says the same.
	var out bytes.Buffer
	r.Render(&out)
	if !strings.Contains(out.String(), "no check failed (13 skipped)") || !strings.Contains(out.String(), "macOS only") {
		t.Errorf("selftest (table):\n%s", out.String())
	}
}

// macChecks are the selftest's checks that run only on macOS, in report
// order.
var macChecks = []string{
	"macos", "gui-session", "main-run-loop", "identity", "devicecheck-supported",
	"devicecheck-token", "completion-queue", "appattest-supported", "appattest-keychain",
	"appattest-key", "appattest-assertion", "peer-requirement", "launchd-agent",
}

func TestSelftestOnMac(t *testing.T) {
	t.Parallel()
	dcErr := darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorInvalidKey, "The operation couldn’t be completed.")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name      string
		change    func(m *selftestMac)
		timeout   time.Duration
		want      map[string]Status // check -> status; unlisted ones pass (launchd-agent skipped)
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
			want: map[string]Status{"gui-session": Skipped, "devicecheck-supported": Skipped,
				"devicecheck-token": Skipped, "completion-queue": Skipped, "appattest-supported": Skipped,
				"appattest-keychain": Skipped, "appattest-key": Skipped, "appattest-assertion": Skipped}},
		{name: "isSupported hangs", timeout: 50 * time.Millisecond,
			change: func(m *selftestMac) {
				m.supported = func() (bool, error) { <-release; return true, nil }
			},
			want:     map[string]Status{"devicecheck-supported": Fail, "devicecheck-token": Skipped, "completion-queue": Skipped},
			contains: map[string]string{"devicecheck-supported": "did not return within 50ms"}},
		{name: "unsupported", change: func(m *selftestMac) { m.supported = func() (bool, error) { return false, nil } },
			want: map[string]Status{"devicecheck-supported": Fail, "devicecheck-token": Skipped, "completion-queue": Skipped}},
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
			want:   map[string]Status{"devicecheck-token": Fail},
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
			want: map[string]Status{"devicecheck-token": Fail, "completion-queue": Fail, "main-run-loop": Fail},
			contains: map[string]string{
				"completion-queue": "Apple may be posting it to the main queue",
				"main-run-loop":    "would never run",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newSelftestMac()
			if tt.change != nil {
				tt.change(m)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			r := Selftest(context.Background(), m.env(t), SelftestConfig{Timeout: timeout, TempDir: t.TempDir()})
			got := statuses(r)
			for _, name := range append([]string{"platform", "socket-roundtrip"}, macChecks...) {
				want := Pass
				if name == "launchd-agent" {
					want = Skipped
				}
				if w, ok := tt.want[name]; ok {
					want = w
				}
				if got[name] != want {
					t.Errorf("%s = %q, want %q (%s)", name, got[name], want, mustFind(t, r, name).Detail)
				}
			}
			if r.OK != tt.ok {
				t.Errorf("OK = %v, want %v", r.OK, tt.ok)
			}
			for name, text := range tt.contains {
				if d := mustFind(t, r, name).Detail; !strings.Contains(d, text) {
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
	t.Parallel()
	m := newSelftestMac()
	m.completion = &darwin.Completion{MainThread: true, Queue: "com.apple.main-thread", Thread: 1, RequestThread: 9, DuringRequest: true}
	r := Selftest(context.Background(), m.env(t), SelftestConfig{Timeout: 10 * time.Second, TempDir: t.TempDir()})
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
	t.Parallel()
	dcErr := darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorFeatureUnsupported, "unsupported")
	tests := []struct {
		name     string
		team     bool
		r        bounded[[]byte]
		status   Status
		contains string
	}{
		{"token, team", true, bounded[[]byte]{v: []byte("t")}, Pass, "a 1-byte token"},
		{"token, no team", false, bounded[[]byte]{v: []byte("t")}, Pass, "did not require a Team ID"},
		{"refused, no team", false, bounded[[]byte]{err: dcErr}, Pass, "refused this ad-hoc binary cleanly"},
		{"refused, team", true, bounded[[]byte]{err: dcErr}, Fail, "code 1"},
		{"hung", false, bounded[[]byte]{hung: true, err: context.DeadlineExceeded}, Fail, "did not call its completion handler within 5s"},
		{"provider timeout", true, bounded[[]byte]{err: &provider.Error{Reason: provider.ReasonTimeout}}, Fail, "within 5s"},
		{"other error", false, bounded[[]byte]{err: errors.New("dlopen failed")}, Fail, "without an NSError"},
		{"empty", true, bounded[[]byte]{v: []byte{}}, Fail, "empty token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := judgeToken(tt.team, "ad-hoc", tt.r, 5*time.Second)
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.contains) {
				t.Errorf("judgeToken = %s %q, want %s containing %q", c.Status, c.Detail, tt.status, tt.contains)
			}
		})
	}
}

func TestJudgeCompletion(t *testing.T) {
	t.Parallel()
	timeout := &provider.Error{Reason: provider.ReasonTimeout}
	tests := []struct {
		name     string
		c        *darwin.Completion
		tokErr   error
		loop     bool
		ping     error
		status   Status
		contains string
	}{
		{"worker queue", &darwin.Completion{Queue: "q"}, nil, true, nil, Pass, "not needed"},
		{"main thread", &darwin.Completion{MainThread: true}, nil, true, nil, Pass, "MAIN QUEUE"},
		{"main queue label", &darwin.Completion{Queue: "com.apple.main-thread"}, nil, true, nil, Pass, "MAIN QUEUE"},
		{"never ran, loop off", nil, timeout, false, darwin.ErrMainQueueNotServiced, Fail, "main queue"},
		{"never ran, queue serviced", nil, timeout, true, nil, Fail, "DeviceCheck itself did not answer"},
		{"never ran, loop on but queue stuck", nil, timeout, true, darwin.ErrMainQueueNotServiced, Fail, "not serviced"},
		{"token but nothing observed", nil, nil, true, nil, Fail, "not observed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := judgeCompletion(tt.c, tt.tokErr, tt.loop, "why", tt.ping)
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.contains) {
				t.Errorf("judgeCompletion = %s %q, want %s containing %q", c.Status, c.Detail, tt.status, tt.contains)
			}
		})
	}
}

func TestSigningKindAndRequirement(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	if !slices.Contains(macOnlySteps(), "launchd-agent") {
		t.Error("launchd-agent is not a macOS check")
	}
}

// macOnlySteps names the selftest's macOS-only checks, in list order.
func macOnlySteps() []string {
	var names []string
	for _, s := range selftestList(SelftestConfig{}, "linux/amd64").steps {
		if s.macOnly {
			names = append(names, s.name)
		}
	}
	return names
}

func TestSelftestMacOnlySteps(t *testing.T) {
	t.Parallel()
	if got := macOnlySteps(); !slices.Equal(got, macChecks) {
		t.Errorf("macOS-only checks = %q, want %q", got, macChecks)
	}
}
