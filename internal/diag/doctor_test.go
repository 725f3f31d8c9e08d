package diag

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// doctorConfig is doctor's configuration with its flags' defaults and no
// daemon at the socket path.
func doctorConfig(t *testing.T) DoctorConfig {
	return DoctorConfig{Version: "dev", Launchd: darwin.DefaultLaunchdSocket, Timeout: darwin.DefaultTimeout,
		Socket: filepath.Join(t.TempDir(), "absent.sock")}
}

var checkOrder = []string{"platform", "macos-version", "gui-session", "devicecheck-supported",
	"team-id", "hardened-runtime", "bundle-id", "launchd", "socket", "daemon", "token", "log"}

func TestDoctor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		change   func(t *testing.T, e *fakeEnv)
		config   func(c *DoctorConfig)
		wantOK   bool
		want     map[string]Status // statuses that differ from "pass"
		wantHint []string          // checks whose hint must be set
		detail   map[string]string // substrings of details
		hint     map[string]string // substrings of hints
	}{
		{
			name: "everything passes", wantOK: true,
			want:   map[string]Status{"launchd": Skipped, "socket": Skipped, "daemon": Skipped},
			detail: map[string]string{"token": "fingerprint " + header.Fingerprint("token"), "macos-version": "15.1"},
		},
		{
			name: "no GUI session",
			change: func(_ *testing.T, e *fakeEnv) {
				e.guiSession = func() (bool, error) { return false, nil }
				e.dcSupported = func() (bool, error) { panic("DeviceCheck asked without a GUI session") }
				e.newDeviceCheck = nil
			},
			want: map[string]Status{"gui-session": Fail, "devicecheck-supported": Skipped,
				"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			wantHint: []string{"gui-session"},
			detail:   map[string]string{"devicecheck-supported": "crash"},
		},
		{
			name: "ad-hoc signed",
			change: func(_ *testing.T, e *fakeEnv) {
				e.signature = func() (darwin.Signature, error) {
					return darwin.Signature{Signed: true, Identifier: "attestd", Flags: darwin.SignatureAdhoc | darwin.SignatureLinkerSigned}, nil
				}
				e.newDeviceCheck = nil
			},
			want: map[string]Status{"team-id": Fail, "hardened-runtime": Fail,
				"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			wantHint: []string{"team-id", "hardened-runtime"},
			detail:   map[string]string{"team-id": "DeviceCheck will refuse", "token": "fix the failed checks"},
		},
		{
			name: "unsigned",
			change: func(_ *testing.T, e *fakeEnv) {
				e.signature = func() (darwin.Signature, error) { return darwin.Signature{}, nil }
				e.newDeviceCheck = nil
			},
			want: map[string]Status{"team-id": Fail, "hardened-runtime": Skipped,
				"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			detail: map[string]string{"team-id": "unsigned"},
		},
		{
			name: "signature unreadable",
			change: func(_ *testing.T, e *fakeEnv) {
				e.signature = func() (darwin.Signature, error) {
					return darwin.Signature{}, &darwin.OSStatusError{Op: "SecCodeCopySelf", Status: -67071}
				}
				e.newDeviceCheck = nil
			},
			want: map[string]Status{"team-id": Fail, "hardened-runtime": Skipped,
				"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			detail: map[string]string{"team-id": "SecCodeCopySelf", "hardened-runtime": "could not be read"},
		},
		{
			name: "DeviceCheck unsupported",
			change: func(_ *testing.T, e *fakeEnv) {
				e.dcSupported = func() (bool, error) { return false, nil }
				e.newDeviceCheck = nil
			},
			want: map[string]Status{"devicecheck-supported": Fail,
				"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			wantHint: []string{"devicecheck-supported"},
		},
		{
			name: "no bundle",
			change: func(_ *testing.T, e *fakeEnv) {
				e.identity = func() (darwin.Identity, error) { return darwin.Identity{}, nil }
			},
			want:     map[string]Status{"bundle-id": Fail, "launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			wantHint: []string{"bundle-id"},
		},
		{
			name: "Apple refuses the token",
			change: func(_ *testing.T, e *fakeEnv) {
				e.newDeviceCheck = func(darwin.DeviceCheckOptions) (provider.Provider, error) {
					return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) {
						return nil, darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorInvalidKey, "no")
					}}, nil
				}
			},
			want:     map[string]Status{"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Fail},
			wantHint: []string{"token"},
			detail:   map[string]string{"token": "invalidKey"},
		},
		{
			// A refused token names the App ID DeviceCheck requires.
			name: "DeviceCheck unsupported for this app",
			change: func(_ *testing.T, e *fakeEnv) {
				e.newDeviceCheck = func(darwin.DeviceCheckOptions) (provider.Provider, error) {
					return provider.Func{K: header.KindDeviceCheck, F: func(context.Context) ([]byte, error) {
						return nil, darwin.NewDCError(darwin.DCErrorDomain, darwin.DCErrorFeatureUnsupported, "no")
					}}, nil
				}
			},
			want: map[string]Status{"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Fail},
			hint: map[string]string{"token": "App ID"},
		},
		{
			name:   "no token asked for",
			config: func(c *DoctorConfig) { c.NoToken = true },
			change: func(_ *testing.T, e *fakeEnv) { e.newDeviceCheck = nil },
			wantOK: true,
			want:   map[string]Status{"launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
		},
		{
			name: "launchd has no such socket",
			change: func(_ *testing.T, e *fakeEnv) {
				e.activate = func(name string) ([]net.Listener, error) {
					return nil, &darwin.ActivateError{Name: name, Errno: syscall.ENOENT}
				}
			},
			config: func(c *DoctorConfig) { c.Launchd = "Other" },
			wantOK: true,
			want:   map[string]Status{"launchd": Skipped, "socket": Skipped, "daemon": Skipped},
			detail: map[string]string{"launchd": `"Other"`},
		},
		{
			name: "launchd fails",
			change: func(_ *testing.T, e *fakeEnv) {
				e.activate = func(name string) ([]net.Listener, error) {
					return nil, &darwin.ActivateError{Name: name, Errno: syscall.EALREADY}
				}
			},
			want:     map[string]Status{"launchd": Fail, "socket": Skipped, "daemon": Skipped, "token": Skipped},
			wantHint: []string{"launchd"},
			detail:   map[string]string{"launchd": "already activated"},
		},
		{
			name: "launchd activated",
			change: func(t *testing.T, e *fakeEnv) {
				e.activate = func(string) ([]net.Listener, error) {
					l, err := net.Listen("unix", filepath.Join(t.TempDir(), "l"))
					if err != nil {
						t.Fatal(err)
					}
					return []net.Listener{l}, nil
				}
			},
			wantOK: true,
			want:   map[string]Status{"socket": Skipped, "daemon": Skipped},
			detail: map[string]string{"launchd": "1 socket(s)"},
		},
		{
			name: "not a Mac",
			change: func(_ *testing.T, e *fakeEnv) {
				*e = fakeEnv{goos: "linux", goarch: "amd64", uid: os.Getuid()}
			},
			wantOK: true,
			want: map[string]Status{"platform": Skipped, "macos-version": Skipped, "gui-session": Skipped,
				"devicecheck-supported": Skipped, "team-id": Skipped, "hardened-runtime": Skipped,
				"bundle-id": Skipped, "launchd": Skipped, "socket": Skipped, "daemon": Skipped, "token": Skipped},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := macEnv(t)
			if tt.change != nil {
				tt.change(t, env)
			}
			cfg := doctorConfig(t)
			if tt.config != nil {
				tt.config(&cfg)
			}
			r := Doctor(context.Background(), env, cfg)
			if r.OK != tt.wantOK {
				t.Errorf("ok %v, want %v", r.OK, tt.wantOK)
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
					continue // TestLogCheck
				}
				want := tt.want[name]
				if want == "" {
					want = Pass
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
			for name, sub := range tt.hint {
				if h := find(r, name).Hint; !strings.Contains(h, sub) {
					t.Errorf("%s hint = %q, want %q", name, h, sub)
				}
			}
		})
	}
}

func TestDoctorText(t *testing.T) {
	t.Parallel()
	env := macEnv(t)
	env.guiSession = func() (bool, error) { return false, nil }
	r := Doctor(context.Background(), env, doctorConfig(t))
	if r.OK {
		t.Error("ok without a GUI session")
	}
	var out bytes.Buffer
	r.Render(&out)
	for _, want := range []string{
		"attestd doctor (darwin/arm64, attestd ",
		"  fail     gui-session            this process's security session has no graphic access",
		"                                  hint: " + provider.NoGUISessionHint,
		"  skipped  devicecheck-supported  not asked",
		"  pass     team-id                signed by team ABCDE12345",
		"\n1 check failed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDoctorCheckJSON(t *testing.T) {
	t.Parallel()
	// The --json shape is an interface for scripts: pin it.
	b, err := json.Marshal(Report{Command: doctorCommand, OK: false, Platform: "darwin/arm64", Attestd: "dev", Failed: 1, Skipped: 1, Checks: []Check{
		{Name: "gui-session", Status: Fail, Detail: "d", Hint: "h"},
		{Name: "token", Status: Skipped},
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
	t.Parallel()
	uid := os.Getuid()
	env := &fakeEnv{uid: uid}

	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	liveSocket(t, live)

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
		path   string
		want   Status
		detail string
	}{
		{live, Pass, "a daemon answers"},
		{stale, Skipped, "stale"},
		{filepath.Join(dir, "absent"), Skipped, "not running"},
		{open, Fail, "lets other users in"},
		{regular, Fail, "not a socket"},
		{sharedSock, Fail, "directory"},
		{"", Skipped, "no socket path"},
	}
	for _, tt := range tests {
		c := socketCheck(env, tt.path)
		if c.Status != tt.want || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("socketCheck(%s) = %s %q, want %s %q", tt.path, c.Status, c.Detail, tt.want, tt.detail)
		}
		if c.Status == Fail && c.Hint == "" {
			t.Errorf("socketCheck(%s): no hint", tt.path)
		}
	}
	if c := socketCheck(&fakeEnv{uid: uid + 1}, live); c.Status != Fail || !strings.Contains(c.Detail, "owned by uid") {
		t.Errorf("socket of another uid = %s %q", c.Status, c.Detail)
	}
}

func TestDaemonCheck(t *testing.T) {
	t.Parallel()
	healthy := Check{Name: "socket", Status: Pass}
	dc := protocol.StatusResult{Version: "1.2.3", Provider: header.KindDeviceCheck,
		Pool: protocol.PoolStatus{Ready: 2, Capacity: 4, Counters: protocol.PoolCounters{Served: 7}}}
	dev := dc
	dev.Provider = header.KindDev
	failing := dc
	failing.Pool.LastError = &protocol.PoolFailure{Reason: provider.ReasonProviderError, Message: "invalidKey"}
	cannotStart := dc
	cannotStart.Pool.LastError = &protocol.PoolFailure{Reason: provider.ReasonNoGUISession, Message: "DeviceCheck could not start"}
	cannotStart.Pool.ConsecutiveFailures = 1
	unreachable := &provider.Error{Reason: provider.ReasonDaemonUnreachable, Msg: "no daemon", HintText: "start it"}
	aa := dc
	aa.Provider = "appattest"
	aa.Pool.AppAttest = &protocol.AppAttestStatus{State: protocol.AppAttestRegistered, Registered: true,
		KeyID: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Environment: "production", Server: "https://gate.example", Fallback: "dc"}
	registering := aa
	registering.Pool.AppAttest = &protocol.AppAttestStatus{State: protocol.AppAttestFailing, Server: "https://gate.example", Fallback: "dc",
		LastError: &protocol.PoolFailure{Reason: provider.ReasonProviderError, Message: "register the key: HTTP 503"}}
	sim := aa
	sim.Provider = "appattest-sim"
	tests := []struct {
		name     string
		native   bool
		sock     Check
		st       protocol.StatusResult
		err      error
		want     Status
		detail   string
		wantHint bool
	}{
		{"DeviceCheck daemon", true, healthy, dc, nil, Pass, "attestd 1.2.3, provider dc, 2 of 4 tokens ready, 7 served", false},
		{"last error shown", true, healthy, failing, nil, Pass, "last error (provider_error): invalidKey", false},
		{"provider cannot start", true, healthy, cannotStart, nil, Fail, "last error (no_gui_session): DeviceCheck could not start", true},
		{"dev daemon on a Mac", true, healthy, dev, nil, Fail, "does not serve DeviceCheck", true},
		{"dev daemon elsewhere", false, healthy, dev, nil, Pass, "provider dev", false},
		{"App Attest registered", true, healthy, aa, nil, Pass, "App Attest registered (key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, production, with https://gate.example)", false},
		{"App Attest registering", true, healthy, registering, nil, Pass, "App Attest failing (dc answers until the key is registered with https://gate.example): last error (provider_error): register the key: HTTP 503", false},
		{"simulated App Attest on a Mac", true, healthy, sim, nil, Fail, "does not serve DeviceCheck", true},
		{"unreachable", true, healthy, protocol.StatusResult{}, unreachable, Fail, "no daemon", true},
		{"no socket", true, Check{Status: Skipped}, dc, nil, Skipped, "no daemon answers", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := &fakeEnv{native: tt.native, status: func(context.Context, string) (protocol.StatusResult, error) {
				if tt.sock.Status != Pass {
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

// TestLogCheck: doctor says where the agent's log is, or why it cannot.
func TestLogCheck(t *testing.T) {
	t.Parallel()
	logs := filepath.Join(t.TempDir(), "Library", "Logs")
	os.MkdirAll(logs, 0o755)
	have := filepath.Join(logs, "com.example.Host.attestd.log")
	os.WriteFile(have, []byte("time=… msg=\"attestd serving\"\n"), 0o600)
	for _, tc := range []struct {
		cfg    DoctorConfig
		status Status
		detail []string
	}{
		{DoctorConfig{AgentLabel: "com.example.Host.attestd", LogFile: have, CrashFile: "/L/x.crash.log"}, Pass,
			[]string{"the agent com.example.Host.attestd logs to " + have + " (31 bytes, last written ", "fatal crashes to /L/x.crash.log"}},
		{DoctorConfig{AgentLabel: "dev.attestd.agent", LogFile: filepath.Join(logs, "dev.attestd.agent.log")}, Skipped,
			[]string{"no log yet at " + filepath.Join(logs, "dev.attestd.agent.log")}},
		{DoctorConfig{}, Skipped, []string{"socket key"}},
	} {
		c := logCheck(tc.cfg)
		for _, d := range tc.detail {
			if c.Status != tc.status || !strings.Contains(c.Detail, d) {
				t.Errorf("%+v: log %s %q, want %s with %q", tc.cfg, c.Status, c.Detail, tc.status, d)
			}
		}
		if c.Status != Pass && c.Hint == "" {
			t.Errorf("%+v: log %s without a hint", tc.cfg, c.Status)
		}
	}
}
