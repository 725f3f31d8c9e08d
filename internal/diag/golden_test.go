package diag

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// The golden tests pin what "attestd doctor" and "attestd selftest" print,
// text (Render) and --json (WriteJSON), byte for byte, for a few fake
// machines. They were written against the commands before the two
// engines became this package, and still pass unchanged. What differs from run to run (the
// temporary directory, the Go version, the uid, the random development
// tokens' fingerprints, a file's modification time) is replaced with a
// placeholder by scrub. After an intended change, run
// go test ./internal/diag -run Golden -update and review the diff.

// goldenTokens are the fake DeviceCheck tokens, whose fingerprints the
// reports keep; every other fingerprint is of a random development token.
var goldenTokens = []string{"token", "apple-token-bytes", "apple-assertion-bytes", fakeKeyID}

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current output")

var (
	fingerprintRE = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	launchdDirRE  = regexp.MustCompile(`[^" ]*/launchd-[0-9]+/`)
	uidRE         = regexp.MustCompile(fmt.Sprintf(`\bgui/%d\b`, os.Getuid()))
	agentDirRE    = regexp.MustCompile(`attestd-st-agent-[0-9]+`)
	mtimeRE       = regexp.MustCompile(`last written [0-9T:+\-Z]+`)
)

// scrub replaces what differs between runs and machines in a report.
func scrub(s, root string) string {
	s = strings.ReplaceAll(s, root, "$TMP")
	s = strings.ReplaceAll(s, runtime.Version(), "$GO")
	s = uidRE.ReplaceAllString(s, "gui/$$UID")
	s = launchdDirRE.ReplaceAllString(s, "$$LAUNCHD/")
	s = agentDirRE.ReplaceAllString(s, "attestd-st-agent-N")
	s = mtimeRE.ReplaceAllString(s, "last written $$MTIME")
	keep := map[string]bool{}
	for _, tok := range goldenTokens {
		keep[header.Fingerprint(tok)] = true
	}
	return fingerprintRE.ReplaceAllStringFunc(s, func(fp string) string {
		if keep[fp] {
			return fp
		}
		return "$FINGERPRINT"
	})
}

// checkGolden compares got with testdata/golden/name, or rewrites the
// file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s changed:\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// goldenRoot is a fresh private directory with a short path (macOS limits
// socket paths to 104 bytes).
func goldenRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "dg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return root
}

// liveSocket listens on path with mode 0600 and closes every connection,
// so that a socket check finds a daemon answering there.
func liveSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// healthyStatus is what a DeviceCheck daemon with a warm pool answers.
var healthyStatus = protocol.StatusResult{Version: "1.2.3", Provider: header.KindDeviceCheck,
	Pool: protocol.PoolStatus{Ready: 2, Capacity: 4, Counters: protocol.PoolCounters{Served: 7}}}

// goldenDoctorConfig is doctor's configuration with its flags' defaults,
// the daemon's socket at sock and the agent label's log under root.
func goldenDoctorConfig(root, sock, label string) DoctorConfig {
	cfg := DoctorConfig{Version: "dev", Launchd: darwin.DefaultLaunchdSocket, Timeout: darwin.DefaultTimeout,
		Socket: sock, AgentLabel: label}
	if label != "" {
		cfg.LogFile = filepath.Join(root, "Library", "Logs", label+".log")
		cfg.CrashFile = filepath.Join(root, "Library", "Logs", label+".crash.log")
	}
	return cfg
}

// doctorGolden is a golden case of doctor: setup makes the machine in
// root and returns its environment and doctor's configuration.
type doctorGolden struct {
	name  string
	setup func(t *testing.T, root string) (*fakeEnv, DoctorConfig)
	ok    bool
}

var doctorGoldens = []doctorGolden{
	{name: "linux", ok: true, setup: func(t *testing.T, root string) (*fakeEnv, DoctorConfig) {
		return &fakeEnv{goos: "linux", goarch: "amd64", uid: os.Getuid()},
			goldenDoctorConfig(root, filepath.Join(root, "run", "attestd.sock"), "dev.attestd.agent")
	}},
	{name: "mac-pass", ok: true, setup: func(t *testing.T, root string) (*fakeEnv, DoctorConfig) {
		env := macEnv(t)
		env.activate = func(string) ([]net.Listener, error) {
			l, err := net.Listen("unix", filepath.Join(root, "l"))
			if err != nil {
				t.Fatal(err)
			}
			return []net.Listener{l}, nil
		}
		sock := filepath.Join(root, "attestd.sock")
		liveSocket(t, sock)
		env.status = func(context.Context, string) (protocol.StatusResult, error) { return healthyStatus, nil }
		cfg := goldenDoctorConfig(root, sock, "com.example.Host.attestd")
		if err := os.MkdirAll(filepath.Dir(cfg.LogFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg.LogFile, []byte("time=… msg=\"attestd serving\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return env, cfg
	}},
	{name: "mac-no-gui", ok: false, setup: func(t *testing.T, root string) (*fakeEnv, DoctorConfig) {
		env := macEnv(t)
		env.guiSession = func() (bool, error) { return false, nil }
		env.dcSupported = func() (bool, error) { panic("DeviceCheck asked without a GUI session") }
		env.newDeviceCheck = nil
		return env, goldenDoctorConfig(root, filepath.Join(root, "absent.sock"), "") // --agent ATTESTD_SOCKET_x
	}},
	{name: "daemon-cannot-start", ok: false, setup: func(t *testing.T, root string) (*fakeEnv, DoctorConfig) {
		sock := filepath.Join(root, "attestd.sock")
		liveSocket(t, sock)
		st := healthyStatus
		st.Pool.Ready, st.Pool.Counters.Served = 0, 0
		st.Pool.LastError = &protocol.PoolFailure{Reason: provider.ReasonUnsupported, Message: "DeviceCheck is not available on this system"}
		st.Pool.ConsecutiveFailures = 3
		return &fakeEnv{goos: "linux", goarch: "amd64", uid: os.Getuid(),
			status: func(context.Context, string) (protocol.StatusResult, error) { return st, nil },
		}, goldenDoctorConfig(root, sock, "dev.attestd.agent")
	}},
}

type selftestGolden struct {
	name    string
	setup   func(t *testing.T) *fakeEnv
	launchd bool
	ok      bool
}

var selftestGoldens = []selftestGolden{
	{name: "linux", ok: true, setup: func(*testing.T) *fakeEnv {
		return &fakeEnv{goos: "linux", goarch: "amd64", uid: os.Getuid()}
	}},
	{name: "mac-pass", ok: true, setup: func(t *testing.T) *fakeEnv { return beforeAppAttest(newSelftestMac().env(t)) }},
	{name: "mac-no-gui", ok: true, setup: func(t *testing.T) *fakeEnv {
		m := newSelftestMac()
		m.gui = false
		return m.env(t)
	}},
	{name: "launchd-pass", ok: true, launchd: true, setup: func(t *testing.T) *fakeEnv {
		return beforeAppAttest(launchdEnv(t, newFakeLaunchd(t)))
	}},
	{name: "launchd-fail", ok: false, launchd: true, setup: func(t *testing.T) *fakeEnv {
		f := newFakeLaunchd(t)
		f.failBootstrap = true
		return beforeAppAttest(launchdEnv(t, f))
	}},
	{name: "mac-appattest", ok: true, setup: func(t *testing.T) *fakeEnv {
		env := newSelftestMac().env(t)
		env.osVersion = func() (string, error) { return "27.0 (27A5001)", nil }
		return env
	}},
}

// beforeAppAttest makes env the macOS 15 Mac the goldens were written
// for: DCAppAttestService.isSupported is false there.
func beforeAppAttest(env *fakeEnv) *fakeEnv {
	env.aaSupported = func() (bool, error) { return false, nil }
	return env
}

// TestGolden runs every golden case of both lists.
func TestGolden(t *testing.T) {
	t.Parallel()
	type golden struct {
		name string
		ok   bool
		run  func(t *testing.T, root string) Report
	}
	var cases []golden
	for _, g := range doctorGoldens {
		cases = append(cases, golden{"doctor-" + g.name, g.ok, func(t *testing.T, root string) Report {
			env, cfg := g.setup(t, root)
			return Doctor(context.Background(), env, cfg)
		}})
	}
	for _, g := range selftestGoldens {
		cases = append(cases, golden{"selftest-" + g.name, g.ok, func(t *testing.T, root string) Report {
			env := g.setup(t)
			env.pid, env.now = 4321, newTickClock().now
			// The command's defaults, and launchctl polled every
			// millisecond as the launchd tests do.
			cfg := SelftestConfig{Version: "dev", Timeout: DefaultSelftestTimeout, Launchd: g.launchd,
				TempDir: root, PollEvery: time.Millisecond}
			return Selftest(context.Background(), env, cfg)
		}})
	}
	for _, g := range cases {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			root := goldenRoot(t)
			r := g.run(t, root)
			if r.OK != g.ok {
				t.Errorf("ok %v, want %v", r.OK, g.ok)
			}
			var text, js bytes.Buffer
			r.Render(&text)
			if err := r.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, g.name+".txt", scrub(text.String(), root))
			checkGolden(t, g.name+".json", scrub(js.String(), root))
		})
	}
}
