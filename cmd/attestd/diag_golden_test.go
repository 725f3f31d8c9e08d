package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
)

// The golden tests pin what "attestd doctor" and "attestd selftest" print,
// text and --json, byte for byte, for a few fake machines: moving the
// engines must not change a report. What differs from run to run (the
// temporary directory, the Go version, the uid, the random development
// tokens' fingerprints, a file's modification time) is replaced with a
// placeholder by scrub. After an intended change, run
// go test ./cmd/attestd -run Golden -update and review the diff.

// goldenTokens are the fake DeviceCheck tokens, whose fingerprints the
// reports keep; every other fingerprint is of a random development token.
var goldenTokens = []string{"token", "apple-token-bytes"}

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

// checkGolden compares got with testdata/diag/name, or rewrites the file
// with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "diag", name)
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

// healthyStatus is what a DeviceCheck daemon with a warm pool answers.
var healthyStatus = server.StatusResult{Version: "1.2.3", Provider: header.KindDeviceCheck,
	Pool: pool.Status{Ready: 2, Capacity: 4, Counters: pool.Counters{Served: 7}}}

type doctorGolden struct {
	name string
	// setup makes the machine in root and returns its environment and
	// doctor's arguments after "--json" or nothing.
	setup func(t *testing.T, root string) (*doctorEnv, []string)
	code  int
}

var doctorGoldens = []doctorGolden{
	{name: "linux", code: 0, setup: func(t *testing.T, root string) (*doctorEnv, []string) {
		return &doctorEnv{goos: "linux", goarch: "amd64", uid: os.Getuid()},
			[]string{"--socket", filepath.Join(root, "run", "attestd.sock")}
	}},
	{name: "mac-pass", code: 0, setup: func(t *testing.T, root string) (*doctorEnv, []string) {
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
		env.status = func(context.Context, string) (server.StatusResult, error) { return healthyStatus, nil }
		logs := filepath.Join(root, "Library", "Logs")
		if err := os.MkdirAll(logs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(logs, "com.example.Host.attestd.log"), []byte("time=… msg=\"attestd serving\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return env, []string{"--socket", sock, "--agent", "com.example.Host.attestd"}
	}},
	{name: "mac-no-gui", code: 1, setup: func(t *testing.T, root string) (*doctorEnv, []string) {
		env := macEnv(t)
		env.guiSession = func() (bool, error) { return false, nil }
		env.dcSupported = func() (bool, error) { panic("DeviceCheck asked without a GUI session") }
		env.newProvider = nil
		return env, []string{"--socket", filepath.Join(root, "absent.sock"), "--agent", "ATTESTD_SOCKET_x"}
	}},
	{name: "daemon-cannot-start", code: 1, setup: func(t *testing.T, root string) (*doctorEnv, []string) {
		sock := filepath.Join(root, "attestd.sock")
		liveSocket(t, sock)
		st := healthyStatus
		st.Pool.Ready, st.Pool.Counters.Served = 0, 0
		st.Pool.LastError = &pool.ErrorInfo{Reason: provider.ReasonUnsupported, Message: "DeviceCheck is not available on this system"}
		st.Pool.ConsecutiveFailures = 3
		return &doctorEnv{goos: "linux", goarch: "amd64", uid: os.Getuid(),
			status: func(context.Context, string) (server.StatusResult, error) { return st, nil },
		}, []string{"--socket", sock}
	}},
}

func TestDoctorGolden(t *testing.T) {
	for _, g := range doctorGoldens {
		for _, asJSON := range []bool{false, true} {
			name, args := "doctor-"+g.name+".txt", []string{"doctor"}
			if asJSON {
				name, args = "doctor-"+g.name+".json", []string{"doctor", "--json"}
			}
			t.Run(name, func(t *testing.T) {
				root := goldenRoot(t)
				t.Setenv("HOME", root)
				env, extra := g.setup(t, root)
				useDoctorEnv(t, env)
				code, out, stderr := runCLI(t, nil, "", append(args, extra...)...)
				if code != g.code || stderr != "" {
					t.Errorf("exit %d, stderr %q; want exit %d and nothing on stderr", code, stderr, g.code)
				}
				checkGolden(t, name, scrub(out, root))
			})
		}
	}
}

type selftestGolden struct {
	name  string
	setup func(t *testing.T) selftestEnv
	args  []string
	code  int
}

var selftestGoldens = []selftestGolden{
	{name: "linux", code: 0, setup: func(*testing.T) selftestEnv {
		return selftestEnv{goos: "linux", goarch: "amd64", uid: os.Getuid()}
	}},
	{name: "mac-pass", code: 0, setup: func(t *testing.T) selftestEnv { return newSelftestMac().env(t) }},
	{name: "mac-no-gui", code: 0, setup: func(t *testing.T) selftestEnv {
		m := newSelftestMac()
		m.gui = false
		return m.env(t)
	}},
	{name: "launchd-pass", code: 0, args: []string{"--launchd"}, setup: func(t *testing.T) selftestEnv {
		return launchdEnv(t, newFakeLaunchd(t))
	}},
	{name: "launchd-fail", code: 1, args: []string{"--launchd"}, setup: func(t *testing.T) selftestEnv {
		f := newFakeLaunchd(t)
		f.failBootstrap = true
		return launchdEnv(t, f)
	}},
}

func TestSelftestGolden(t *testing.T) {
	for _, g := range selftestGoldens {
		for _, asJSON := range []bool{false, true} {
			name, args := "selftest-"+g.name+".txt", []string{"selftest"}
			if asJSON {
				name, args = "selftest-"+g.name+".json", []string{"selftest", "--json"}
			}
			t.Run(name, func(t *testing.T) {
				root := goldenRoot(t)
				env := g.setup(t)
				env.pid, env.now, env.tempDir = 4321, newTickClock().now, root
				old := systemSelftestEnv
				systemSelftestEnv = func() selftestEnv { return env }
				t.Cleanup(func() { systemSelftestEnv = old })
				code, out, stderr := runCLI(t, nil, "", append(args, g.args...)...)
				if code != g.code || stderr != "" {
					t.Errorf("exit %d, stderr %q; want exit %d and nothing on stderr", code, stderr, g.code)
				}
				checkGolden(t, name, scrub(out, root))
			})
		}
	}
}
