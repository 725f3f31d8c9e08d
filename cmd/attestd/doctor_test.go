package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/darwin"
)

// macEnv is a Mac on which every check passes; cases change one thing.
func macEnv(t *testing.T) *doctorEnv {
	t.Helper()
	return &doctorEnv{
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
		newProvider: func(darwin.DeviceCheckOptions) (provider.Provider, error) {
			return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) { return []byte("token"), nil }}, nil
		},
		status: func(context.Context, string) (server.StatusResult, error) {
			t.Error("asked a daemon that does not answer")
			return server.StatusResult{}, errors.New("unreachable")
		},
	}
}

func useDoctorEnv(t *testing.T, env *doctorEnv) {
	t.Helper()
	old := systemDoctorEnv
	systemDoctorEnv = func() doctorEnv { return *env }
	t.Cleanup(func() { systemDoctorEnv = old })
}

// runDoctorJSON runs "attestd doctor --json" and returns the exit code and
// the report.
func runDoctorJSON(t *testing.T, env map[string]string, args ...string) (int, doctorReport) {
	t.Helper()
	code, out, stderr := runCLI(t, env, "", append([]string{"doctor", "--json"}, args...)...)
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	var r doctorReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json printed %q: %v", out, err)
	}
	return code, r
}

func statuses(r doctorReport) map[string]string {
	m := map[string]string{}
	for _, c := range r.Checks {
		m[c.Name] = c.Status
	}
	return m
}

func find(r doctorReport, name string) check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return check{}
}

var checkOrder = []string{"platform", "macos-version", "gui-session", "devicecheck-supported",
	"team-id", "hardened-runtime", "bundle-id", "launchd", "socket", "daemon", "token", "log"}

func TestDoctor(t *testing.T) {
	tests := []struct {
		name     string
		change   func(e *doctorEnv)
		args     []string
		wantCode int
		want     map[string]string // statuses that differ from "pass"
		wantHint []string          // checks whose hint must be set
		detail   map[string]string // substrings of details
	}{
		{
			name: "everything passes", wantCode: 0,
			want:   map[string]string{"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip},
			detail: map[string]string{"token": "fingerprint " + header.Fingerprint("token"), "macos-version": "15.1"},
		},
		{
			name: "no GUI session",
			change: func(e *doctorEnv) {
				e.guiSession = func() (bool, error) { return false, nil }
				e.dcSupported = func() (bool, error) { panic("DeviceCheck asked without a GUI session") }
				e.newProvider = nil
			},
			wantCode: 1,
			want: map[string]string{"gui-session": statusFail, "devicecheck-supported": statusSkip,
				"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			wantHint: []string{"gui-session"},
			detail:   map[string]string{"devicecheck-supported": "crash"},
		},
		{
			name: "ad-hoc signed",
			change: func(e *doctorEnv) {
				e.signature = func() (darwin.Signature, error) {
					return darwin.Signature{Signed: true, Identifier: "attestd", Flags: darwin.SignatureAdhoc | darwin.SignatureLinkerSigned}, nil
				}
				e.newProvider = nil
			},
			wantCode: 1,
			want: map[string]string{"team-id": statusFail, "hardened-runtime": statusFail,
				"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			wantHint: []string{"team-id", "hardened-runtime"},
			detail:   map[string]string{"team-id": "DeviceCheck will refuse", "token": "fix the failed checks"},
		},
		{
			name: "unsigned",
			change: func(e *doctorEnv) {
				e.signature = func() (darwin.Signature, error) { return darwin.Signature{}, nil }
				e.newProvider = nil
			},
			wantCode: 1,
			want: map[string]string{"team-id": statusFail, "hardened-runtime": statusSkip,
				"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			detail: map[string]string{"team-id": "unsigned"},
		},
		{
			name: "signature unreadable",
			change: func(e *doctorEnv) {
				e.signature = func() (darwin.Signature, error) {
					return darwin.Signature{}, &darwin.OSStatusError{Op: "SecCodeCopySelf", Status: -67071}
				}
				e.newProvider = nil
			},
			wantCode: 1,
			want: map[string]string{"team-id": statusFail, "hardened-runtime": statusSkip,
				"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			detail: map[string]string{"team-id": "SecCodeCopySelf", "hardened-runtime": "could not be read"},
		},
		{
			name: "DeviceCheck unsupported",
			change: func(e *doctorEnv) {
				e.dcSupported = func() (bool, error) { return false, nil }
				e.newProvider = nil
			},
			wantCode: 1,
			want: map[string]string{"devicecheck-supported": statusFail,
				"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			wantHint: []string{"devicecheck-supported"},
		},
		{
			name: "no bundle",
			change: func(e *doctorEnv) {
				e.identity = func() (darwin.Identity, error) { return darwin.Identity{}, nil }
			},
			wantCode: 1,
			want:     map[string]string{"bundle-id": statusFail, "launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			wantHint: []string{"bundle-id"},
		},
		{
			name: "Apple refuses the token",
			change: func(e *doctorEnv) {
				e.newProvider = func(darwin.DeviceCheckOptions) (provider.Provider, error) {
					return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) {
						return nil, darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorInvalidKey, "no")
					}}, nil
				}
			},
			wantCode: 1,
			want:     map[string]string{"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusFail},
			wantHint: []string{"token"},
			detail:   map[string]string{"token": "invalidKey"},
		},
		{
			name:     "no token asked for",
			args:     []string{"--no-token"},
			change:   func(e *doctorEnv) { e.newProvider = nil },
			wantCode: 0,
			want:     map[string]string{"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
		},
		{
			name: "launchd has no such socket",
			change: func(e *doctorEnv) {
				e.activate = func(name string) ([]net.Listener, error) {
					return nil, &darwin.ActivateError{Name: name, Errno: syscall.ENOENT}
				}
			},
			args:     []string{"--launchd", "Other"},
			wantCode: 0,
			want:     map[string]string{"launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip},
			detail:   map[string]string{"launchd": `"Other"`},
		},
		{
			name: "launchd fails",
			change: func(e *doctorEnv) {
				e.activate = func(name string) ([]net.Listener, error) {
					return nil, &darwin.ActivateError{Name: name, Errno: syscall.EALREADY}
				}
			},
			wantCode: 1,
			want:     map[string]string{"launchd": statusFail, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
			wantHint: []string{"launchd"},
			detail:   map[string]string{"launchd": "already activated"},
		},
		{
			name: "launchd activated",
			change: func(e *doctorEnv) {
				e.activate = func(string) ([]net.Listener, error) {
					l, err := net.Listen("unix", filepath.Join(t.TempDir(), "l"))
					if err != nil {
						t.Fatal(err)
					}
					return []net.Listener{l}, nil
				}
			},
			wantCode: 0,
			want:     map[string]string{"socket": statusSkip, "daemon": statusSkip},
			detail:   map[string]string{"launchd": "1 socket(s)"},
		},
		{
			name: "not a Mac",
			change: func(e *doctorEnv) {
				*e = doctorEnv{goos: "linux", goarch: "amd64", uid: os.Getuid()}
			},
			wantCode: 0,
			want: map[string]string{"platform": statusSkip, "macos-version": statusSkip, "gui-session": statusSkip,
				"devicecheck-supported": statusSkip, "team-id": statusSkip, "hardened-runtime": statusSkip,
				"bundle-id": statusSkip, "launchd": statusSkip, "socket": statusSkip, "daemon": statusSkip, "token": statusSkip},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := macEnv(t)
			if tt.change != nil {
				tt.change(env)
			}
			useDoctorEnv(t, env)
			sock := map[string]string{"ATTESTD_SOCKET": filepath.Join(t.TempDir(), "absent.sock")}
			code, r := runDoctorJSON(t, sock, tt.args...)
			if code != tt.wantCode || r.OK != (tt.wantCode == 0) {
				t.Errorf("exit %d, ok %v; want exit %d", code, r.OK, tt.wantCode)
			}
			var names []string
			for _, c := range r.Checks {
				names = append(names, c.Name)
			}
			if strings.Join(names, " ") != strings.Join(checkOrder, " ") {
				t.Errorf("checks = %v, want %v", names, checkOrder)
			}
			for name, got := range statuses(r) {
				if name == "log" {
					continue // depends on this machine's home; TestDoctorLog
				}
				want := tt.want[name]
				if want == "" {
					want = statusPass
				}
				if got != want {
					t.Errorf("%s: %s (%s), want %s", name, got, find(r, name).Detail, want)
				}
			}
			for _, name := range tt.wantHint {
				if find(r, name).Hint == "" {
					t.Errorf("%s has no hint", name)
				}
			}
			for name, sub := range tt.detail {
				if d := find(r, name).Detail; !strings.Contains(d, sub) {
					t.Errorf("%s detail = %q, want %q", name, d, sub)
				}
			}
		})
	}
}

func TestDoctorText(t *testing.T) {
	env := macEnv(t)
	env.guiSession = func() (bool, error) { return false, nil }
	useDoctorEnv(t, env)
	code, out, stderr := runCLI(t, map[string]string{"ATTESTD_SOCKET": filepath.Join(t.TempDir(), "s")}, "", "doctor")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing (the report says it all)", stderr)
	}
	for _, want := range []string{
		"attestd doctor (darwin/arm64, attestd ",
		"  fail     gui-session            this process's security session has no graphic access",
		"                                  hint: " + provider.ErrNoGUISession.Hint,
		"  skipped  devicecheck-supported  not asked",
		"  pass     team-id                signed by team ABCDE12345",
		"\n1 check failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorUsage(t *testing.T) {
	useDoctorEnv(t, macEnv(t))
	if code, _, _ := runCLI(t, nil, "", "doctor", "extra"); code != 2 {
		t.Errorf("doctor extra: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, nil, "", "doctor", "--bogus"); code != 2 {
		t.Errorf("doctor --bogus: exit %d, want 2", code)
	}
}

func TestDoctorCheckJSON(t *testing.T) {
	// The --json shape is an interface for scripts: pin it.
	b, err := json.Marshal(doctorReport{OK: false, Platform: "darwin/arm64", Checks: []check{
		{Name: "gui-session", Status: statusFail, Detail: "d", Hint: "h"},
		{Name: "token", Status: statusSkip},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ok":false,"platform":"darwin/arm64","checks":[{"name":"gui-session","status":"fail","detail":"d","hint":"h"},{"name":"token","status":"skipped"}]}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}

func TestSocketCheck(t *testing.T) {
	uid := os.Getuid()
	env := doctorEnv{uid: uid}

	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: live, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := os.Chmod(live, 0o600); err != nil {
		t.Fatal(err)
	}

	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	os.Chmod(stale, 0o600)

	open := filepath.Join(dir, "open.sock")
	ol, err := net.ListenUnix("unix", &net.UnixAddr{Name: open, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ol.Close()
	os.Chmod(open, 0o666)

	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)

	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o755)
	os.Chmod(shared, 0o755)
	sharedSock := filepath.Join(shared, "s.sock")
	shl, err := net.ListenUnix("unix", &net.UnixAddr{Name: sharedSock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer shl.Close()
	os.Chmod(sharedSock, 0o600)

	tests := []struct {
		path, want, detail string
	}{
		{live, statusPass, "a daemon answers"},
		{stale, statusSkip, "stale"},
		{filepath.Join(dir, "absent"), statusSkip, "not running"},
		{open, statusFail, "lets other users in"},
		{regular, statusFail, "not a socket"},
		{sharedSock, statusFail, "directory"},
		{"", statusSkip, "no socket path"},
	}
	for _, tt := range tests {
		c := socketCheck(env, tt.path)
		if c.Status != tt.want || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("socketCheck(%s) = %s %q, want %s %q", tt.path, c.Status, c.Detail, tt.want, tt.detail)
		}
		if c.Status == statusFail && c.Hint == "" {
			t.Errorf("socketCheck(%s): no hint", tt.path)
		}
	}
	if c := socketCheck(doctorEnv{uid: uid + 1}, live); c.Status != statusFail || !strings.Contains(c.Detail, "owned by uid") {
		t.Errorf("socket of another uid = %s %q", c.Status, c.Detail)
	}
}

func TestDaemonCheck(t *testing.T) {
	healthy := check{Name: "socket", Status: statusPass}
	dc := server.StatusResult{Version: "1.2.3", Provider: header.KindDeviceCheck,
		Pool: pool.Status{Ready: 2, Capacity: 4, Counters: pool.Counters{Served: 7}}}
	dev := dc
	dev.Provider = header.KindDev
	failing := dc
	failing.Pool.LastError = &pool.ErrorInfo{Reason: provider.ReasonProviderError, Message: "invalidKey"}
	cannotStart := dc
	cannotStart.Pool.LastError = &pool.ErrorInfo{Reason: provider.ReasonNoGUISession, Message: "DeviceCheck could not start"}
	cannotStart.Pool.ConsecutiveFailures = 1
	unreachable := &provider.Error{Reason: provider.ReasonDaemonUnreachable, Msg: "no daemon", Hint: "start it"}
	tests := []struct {
		name     string
		native   bool
		sock     check
		st       server.StatusResult
		err      error
		want     string
		detail   string
		wantHint bool
	}{
		{"DeviceCheck daemon", true, healthy, dc, nil, statusPass, "attestd 1.2.3, provider dc, 2 of 4 tokens ready, 7 served", false},
		{"last error shown", true, healthy, failing, nil, statusPass, "last error (provider_error): invalidKey", false},
		{"provider cannot start", true, healthy, cannotStart, nil, statusFail, "last error (no_gui_session): DeviceCheck could not start", true},
		{"dev daemon on a Mac", true, healthy, dev, nil, statusFail, "does not serve DeviceCheck", true},
		{"dev daemon elsewhere", false, healthy, dev, nil, statusPass, "provider dev", false},
		{"unreachable", true, healthy, server.StatusResult{}, unreachable, statusFail, "no daemon", true},
		{"no socket", true, check{Status: statusSkip}, dc, nil, statusSkip, "no daemon answers", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := doctorEnv{native: tt.native, status: func(context.Context, string) (server.StatusResult, error) {
				if tt.sock.Status != statusPass {
					t.Error("asked a daemon behind a socket that failed its check")
				}
				return tt.st, tt.err
			}}
			c := daemonCheck(context.Background(), env, "/s", tt.sock)
			if c.Status != tt.want || !strings.Contains(c.Detail, tt.detail) || (c.Hint != "") != tt.wantHint {
				t.Errorf("daemonCheck = %s %q hint %q; want %s %q hint %v", c.Status, c.Detail, c.Hint, tt.want, tt.detail, tt.wantHint)
			}
		})
	}
}

func TestDoctorAgainstRealDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	// A short path: macOS limits socket paths to 104 bytes, and its
	// t.TempDir paths are long.
	dir, err := os.MkdirTemp("", "doc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "attestd.sock")
	startDaemon(t, sock)
	env := systemDoctorEnv()
	env.native = false // the dev daemon is what this test can start, on any OS
	useDoctorEnv(t, &env)
	code, r := runDoctorJSON(t, map[string]string{"ATTESTD_SOCKET": sock})
	if code != 0 {
		t.Errorf("exit %d: %+v", code, r)
	}
	if c := find(r, "socket"); c.Status != statusPass {
		t.Errorf("socket: %s %q", c.Status, c.Detail)
	}
	if c := find(r, "daemon"); c.Status != statusPass || !strings.Contains(c.Detail, "provider dev") {
		t.Errorf("daemon: %s %q", c.Status, c.Detail)
	}
}

// TestDoctorLog: doctor says where the agent's log is, named after the
// label it is given or the one its bundle ships with, and the App ID that
// DeviceCheck requires when a token fails.
func TestDoctorLog(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	logs := filepath.Join(home, "Library", "Logs")
	os.MkdirAll(logs, 0o755)
	os.WriteFile(filepath.Join(logs, "com.example.Host.attestd.log"), []byte("time=… msg=\"attestd serving\"\n"), 0o600)

	env := macEnv(t)
	env.newProvider = func(darwin.DeviceCheckOptions) (provider.Provider, error) {
		return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) {
			return nil, darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorFeatureUnsupported, "no")
		}}, nil
	}
	useDoctorEnv(t, env)
	sock := map[string]string{"ATTESTD_SOCKET": filepath.Join(t.TempDir(), "absent.sock")}
	for _, tc := range []struct {
		args   []string
		status string
		detail string
	}{
		{[]string{"--agent", "com.example.Host.attestd"}, statusPass, filepath.Join(logs, "com.example.Host.attestd.log") + " ("},
		{nil, statusSkip, "no log yet at " + filepath.Join(logs, "dev.attestd.agent.log")},
		{[]string{"--agent", "ATTESTD_SOCKET_x"}, statusSkip, "socket key"},
	} {
		_, r := runDoctorJSON(t, sock, tc.args...)
		if c := find(r, "log"); c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("%q: log %s %q, want %s with %q", tc.args, c.Status, c.Detail, tc.status, tc.detail)
		}
		if c := find(r, "token"); c.Status != statusFail || !strings.Contains(c.Hint, "App ID") {
			t.Errorf("%q: token %s, hint %q; want the App ID requirement", tc.args, c.Status, c.Hint)
		}
	}

	// The attestd inside a host's bundle knows its own agent.
	exe := helperBundleFor(t, filepath.Join(t.TempDir(), "Host.app", "Contents", "Helpers"), "com.example.Host.attestd")
	_, out, stderr := runCLIFrom(t, exe, sock, "", "doctor", "--json")
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	var r doctorReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json printed %q: %v", out, err)
	}
	if c := find(r, "log"); c.Status != statusPass || !strings.Contains(c.Detail, "com.example.Host.attestd.log") {
		t.Errorf("from the bundle: log %s %q", c.Status, c.Detail)
	}

	code, _, errOut := runCLI(t, sock, "", "doctor", "--agent", "not..a.label")
	if code != 1 || !strings.Contains(errOut, "hint: name the helper") {
		t.Errorf("bad --agent: exit %d\n%s", code, errOut)
	}
}
