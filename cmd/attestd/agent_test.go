package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/agent"
	"github.com/attestd/attestd/packaging/plists"
)

// fakeLaunchctl records launchctl calls and answers from a table keyed by
// the subcommand.
type fakeLaunchctl struct {
	mu    sync.Mutex
	calls [][]string
	fail  map[string]string // subcommand -> output of a failing call
}

func (f *fakeLaunchctl) run(_ context.Context, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, args)
	if out, ok := f.fail[args[0]]; ok {
		return []byte(out), errors.New("exit status 5")
	}
	if args[0] == "print" {
		return []byte(args[1] + " = {\n\tstate = waiting\n}\n"), nil
	}
	return nil, nil
}

// fakeMac returns the environment of an agent command that believes it
// runs on goos as uid 501, from exe, with home as the home directory, and
// the launchctl it calls.
func fakeMac(goos, exe, home string) (*agent.Env, *fakeLaunchctl) {
	f := &fakeLaunchctl{fail: map[string]string{}}
	return &agent.Env{
		GOOS:       goos,
		Executable: func() (string, error) { return exe, nil },
		HomeDir:    func() (string, error) { return home, nil },
		UID:        func() int { return 501 },
		Launchctl:  f.run,
	}, f
}

// runAgentCLI runs "attestd agent args..." in-process on env.
func runAgentCLI(t *testing.T, env *agent.Env, args ...string) (int, string, string) {
	t.Helper()
	if len(args) == 0 || args[0] != "agent" {
		t.Fatalf("runAgentCLI %q: not an agent command", args)
	}
	return runCommandCLI(t, newAgentCommand(*env), "", args[1:]...)
}

// helperBundle makes dir/Attestd.app with an Info.plist and returns its
// executable's path.
func helperBundle(t *testing.T, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, "Attestd.app", "Contents", "MacOS", "attestd")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	os.WriteFile(exe, []byte("binary"), 0o755)
	info, _ := plists.NewInfoPlist("com.example.Host.attestd", "Attestd", "attestd", "v1.0.0")
	b, _ := plists.Marshal(info)
	os.WriteFile(filepath.Join(dir, "Attestd.app", "Contents", "Info.plist"), b, 0o644)
	return exe
}

func TestAgentOffMacOS(t *testing.T) {
	t.Parallel()
	env, _ := fakeMac("linux", "/usr/local/bin/attestd", t.TempDir())
	for _, sub := range []string{"install", "uninstall", "status"} {
		code, _, errOut := runAgentCLI(t, env, "agent", sub)
		if code != 1 || !strings.Contains(errOut, "only on macOS (this is linux)") || !strings.Contains(errOut, "hint: on linux run the daemon directly") {
			t.Errorf("agent %s: exit %d\n%s", sub, code, errOut)
		}
	}
}

func TestAgentUsage(t *testing.T) {
	t.Parallel()
	env, _ := fakeMac("darwin", "/x/attestd", t.TempDir())
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agent"}, 2, "want a subcommand"},
		{[]string{"agent", "start"}, 2, `unknown subcommand "start"`},
		{[]string{"agent", "status", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"agent", "install", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"agent", "install", "--provider", "magic"}, 2, `unknown provider "magic"`},
		{[]string{"agent", "install", "--provider", "appattest-sim"}, 2, `unknown provider "appattest-sim"`},
		{[]string{"agent", "install", "--provider", "appattest"}, 2, "needs --appattest-register URL"},
		{[]string{"agent", "install", "--provider", "dev", "--appattest-register", "https://gate.example.com"}, 2, "go with --provider appattest"},
		{[]string{"agent", "install", "--provider", "auto", "--appattest-register", "http://gate.example.com"}, 2, "--appattest-register: "},
		{[]string{"agent", "uninstall", "--label", "../../x"}, 2, `bad label "../../x"`},
		{[]string{"agent", "status", "--label", ""}, 2, `bad label ""`},
		{[]string{"agent", "install", "-h"}, 0, "usage: attestd agent install"},
	} {
		code, _, errOut := runAgentCLI(t, env, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want %d with %q\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
}

func TestAgentPrintAnyOS(t *testing.T) {
	t.Parallel()
	dir := realTempDir(t)
	env, _ := fakeMac("linux", helperBundle(t, dir), dir)
	code, out, errOut := runAgentCLI(t, env, "agent", "install", "--print", "--provider", "dev")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	m, err := plists.Dict([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, _ := stringsOf(m["ProgramArguments"]); !slices.Contains(got, "dev") {
		t.Errorf("ProgramArguments %v", got)
	}
}

// agent install --provider appattest (or auto) passes the registration
// URL to the daemon in the plist.
func TestAgentPrintAppAttest(t *testing.T) {
	t.Parallel()
	dir := realTempDir(t)
	env, _ := fakeMac("linux", helperBundle(t, dir), dir)
	for _, provider := range []string{"appattest", "auto"} {
		code, out, errOut := runAgentCLI(t, env, "agent", "install", "--print", "--provider", provider,
			"--appattest-register", "https://gate.example.com/attestd")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", provider, code, errOut)
		}
		m, err := plists.Dict([]byte(out))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		args, _ := stringsOf(m["ProgramArguments"])
		i := slices.Index(args, "--appattest-register")
		if j := slices.Index(args, "--provider"); i < 0 || i+1 >= len(args) || args[i+1] != "https://gate.example.com/attestd" || j < 0 || args[j+1] != provider {
			t.Errorf("%s: ProgramArguments %v", provider, args)
		}
	}
}

func stringsOf(v any) ([]string, bool) {
	l, ok := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, isStr := e.(string)
		ok = ok && isStr
		out = append(out, s)
	}
	return out, ok
}

func TestAgentInstall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		args      []string
		inBundle  bool
		wantSock  map[string]any
		wantAssoc any
		wantWarn  bool
		wantArgs  []string // after the log file
	}{
		{
			name:      "from the helper bundle",
			inBundle:  true,
			wantSock:  map[string]any{"SockType": "stream", "SecureSocketWithKey": "ATTESTD_SOCKET_dev_attestd_agent"},
			wantAssoc: []any{"com.example.Host.attestd"},
		},
		{
			name:      "from the helper bundle, own label, peer requirement",
			args:      []string{"--label", "com.example.dev-agent", "--peer-requirement", `identifier "com.example.Host"`},
			inBundle:  true,
			wantSock:  map[string]any{"SockType": "stream", "SecureSocketWithKey": "ATTESTD_SOCKET_com_example_dev__agent"},
			wantAssoc: []any{"com.example.Host.attestd"},
			wantArgs:  []string{"--peer-requirement", `identifier "com.example.Host"`},
		},
		{
			name:     "bare executable, fixed socket",
			args:     []string{"--socket", "SOCK", "--label", "com.example.test"},
			wantSock: map[string]any{"SockType": "stream", "SockPathName": "SOCK", "SockPathMode": uint64(384)},
			wantWarn: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			home := realTempDir(t)
			exe := filepath.Join(home, "bin", "attestd")
			if tc.inBundle {
				exe = helperBundle(t, filepath.Join(home, "Applications"))
			} else {
				os.MkdirAll(filepath.Dir(exe), 0o755)
				os.WriteFile(exe, nil, 0o755)
			}
			sock := filepath.Join(home, "run", "attestd.sock")
			args := append([]string{"agent", "install"}, tc.args...)
			for i := range args {
				if args[i] == "SOCK" {
					args[i] = sock
				}
			}
			env, f := fakeMac("darwin", exe, home)
			code, out, errOut := runAgentCLI(t, env, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if strings.Contains(errOut, "not inside an .app bundle") != tc.wantWarn {
				t.Errorf("warning %v, want %v:\n%s", !tc.wantWarn, tc.wantWarn, errOut)
			}
			label := plists.DefaultLabel
			if i := slices.Index(tc.args, "--label"); i >= 0 {
				label = tc.args[i+1]
			}
			plistPath := filepath.Join(home, "Library", "LaunchAgents", label+".plist")
			wantCalls := [][]string{
				{"bootout", "gui/501/" + label},
				{"bootstrap", "gui/501", plistPath},
			}
			if !reflect.DeepEqual(f.calls, wantCalls) {
				t.Errorf("launchctl calls %q, want %q", f.calls, wantCalls)
			}
			data, err := os.ReadFile(plistPath)
			if err != nil {
				t.Fatal(err)
			}
			m, err := plists.Dict(data)
			if err != nil {
				t.Fatal(err)
			}
			if m["Program"] != exe || m["Label"] != label || m["LimitLoadToSessionType"] != "Aqua" {
				t.Errorf("plist:\n%s", data)
			}
			wantArgs := append([]string{exe, "serve", "--launchd", "Listeners", "--provider", "devicecheck",
				"--log-file", "~/Library/Logs/" + label + ".log"}, tc.wantArgs...)
			if got, _ := stringsOf(m["ProgramArguments"]); !slices.Equal(got, wantArgs) {
				t.Errorf("ProgramArguments %q, want %q", got, wantArgs)
			}
			for k, v := range tc.wantSock {
				if v == "SOCK" {
					tc.wantSock[k] = sock
				}
			}
			if got := m["Sockets"].(map[string]any)["Listeners"]; !reflect.DeepEqual(got, tc.wantSock) {
				t.Errorf("socket %#v, want %#v", got, tc.wantSock)
			}
			if !reflect.DeepEqual(m["AssociatedBundleIdentifiers"], tc.wantAssoc) {
				t.Errorf("AssociatedBundleIdentifiers %#v, want %#v", m["AssociatedBundleIdentifiers"], tc.wantAssoc)
			}
			if _, ok := m["KeepAlive"]; ok {
				t.Error("plist has KeepAlive")
			}
			if _, ok := m["StandardErrorPath"]; ok {
				t.Errorf("StandardErrorPath %v: serve --log-file writes the log, with rotation", m["StandardErrorPath"])
			}
			if !strings.Contains(out, "log:    "+filepath.Join(home, "Library", "Logs", label+".log")) {
				t.Errorf("install does not say where the log is:\n%s", out)
			}
			if !tc.inBundle {
				if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("socket directory: %v, %v", fi, err)
				}
			}
			if !strings.Contains(out, "installed "+label) {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

func TestAgentInstallBootstrapFails(t *testing.T) {
	t.Parallel()
	home := realTempDir(t)
	env, f := fakeMac("darwin", helperBundle(t, home), home)
	f.fail["bootstrap"] = "Bootstrap failed: 5: Input/output error"
	code, _, errOut := runAgentCLI(t, env, "agent", "install")
	if code != 1 || !strings.Contains(errOut, "Bootstrap failed: 5") || !strings.Contains(errOut, "hint: check the plist with: plutil -lint") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	// Not loaded before (bootout failed): no retries.
	f.fail["bootout"] = "Boot-out failed: 3: No such process"
	f.calls = nil
	runAgentCLI(t, env, "agent", "install")
	if len(f.calls) != 2 {
		t.Errorf("calls %q, want bootout and one bootstrap", f.calls)
	}
}

func TestAgentInstallRetriesAfterBootout(t *testing.T) {
	t.Parallel()
	home := realTempDir(t)
	env, f := fakeMac("darwin", helperBundle(t, home), home)
	failures := 2
	env.Launchctl = func(ctx context.Context, args ...string) ([]byte, error) {
		if args[0] == "bootstrap" && failures > 0 {
			failures--
			f.calls = append(f.calls, args)
			return []byte("Bootstrap failed: 5: Input/output error"), errors.New("exit status 5")
		}
		return f.run(ctx, args...)
	}
	if code, _, errOut := runAgentCLI(t, env, "agent", "install"); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if len(f.calls) != 4 {
		t.Errorf("calls %q, want bootout and three bootstraps", f.calls)
	}
}

func TestAgentUninstallAndStatus(t *testing.T) {
	t.Parallel()
	home := realTempDir(t)
	env, f := fakeMac("darwin", helperBundle(t, home), home)
	plistPath := filepath.Join(home, "Library", "LaunchAgents", plists.DefaultLabel+".plist")
	service := "gui/501/" + plists.DefaultLabel

	if code, _, errOut := runAgentCLI(t, env, "agent", "install"); code != 0 {
		t.Fatalf("install: exit %d\n%s", code, errOut)
	}
	code, out, errOut := runAgentCLI(t, env, "agent", "status")
	if code != 0 || !strings.Contains(out, "plist: "+plistPath) || !strings.Contains(out, service+" = {") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}

	f.calls = nil
	code, out, _ = runAgentCLI(t, env, "agent", "uninstall")
	if code != 0 || !strings.Contains(out, "removed "+service) {
		t.Errorf("uninstall: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(plistPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plist still there: %v", err)
	}
	if want := [][]string{{"bootout", service}}; !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}

	f.fail["print"] = "Could not find service"
	f.fail["bootout"] = "Boot-out failed: 3: No such process"
	code, _, errOut = runAgentCLI(t, env, "agent", "status")
	if code != 1 || !strings.Contains(errOut, "is not installed") || !strings.Contains(errOut, "hint: install it with: attestd agent install") {
		t.Errorf("status after uninstall: exit %d\n%s", code, errOut)
	}
	code, out, _ = runAgentCLI(t, env, "agent", "uninstall")
	if code != 0 || !strings.Contains(out, "was not installed") {
		t.Errorf("second uninstall: exit %d\n%s", code, out)
	}

	// Installed but not loaded.
	os.MkdirAll(filepath.Dir(plistPath), 0o755)
	os.WriteFile(plistPath, []byte("x"), 0o644)
	code, _, errOut = runAgentCLI(t, env, "agent", "status")
	if code != 1 || !strings.Contains(errOut, "is not loaded") || !strings.Contains(errOut, "launchctl bootstrap gui/501 "+plistPath) {
		t.Errorf("status, not loaded: exit %d\n%s", code, errOut)
	}
}

// realTempDir is t.TempDir with symlinks resolved (on macOS /var is
// /private/var), since the agent records the resolved executable path.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAgentNamesMatchDaemon pins the names the LaunchAgent plist shares
// with the daemon and its clients.
func TestAgentNamesMatchDaemon(t *testing.T) {
	t.Parallel()
	if plists.DefaultSocketName != darwin.DefaultLaunchdSocket {
		t.Errorf("plist socket %q, serve --launchd default %q", plists.DefaultSocketName, darwin.DefaultLaunchdSocket)
	}
	if plists.DefaultLabel != socket.DefaultLabel {
		t.Errorf("plists label %q, clients look for %q", plists.DefaultLabel, socket.DefaultLabel)
	}
}

// helperBundleFor makes dir/Attestd.app as make bundle does for label:
// its Info.plist names the agent and its socket key. It returns the
// executable's path.
func helperBundleFor(t *testing.T, dir, label string) string {
	t.Helper()
	exe := filepath.Join(dir, "Attestd.app", "Contents", "MacOS", "attestd")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	os.WriteFile(exe, []byte("binary"), 0o755)
	info, err := plists.NewInfoPlist("com.example.Host.attestd", "Attestd", "attestd", "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	key, err := socket.KeyForLabel(label)
	if err != nil {
		t.Fatal(err)
	}
	info.AttestdLaunchAgentLabel, info.AttestdSocketKey = label, key
	b, _ := plists.Marshal(info)
	os.WriteFile(filepath.Join(dir, "Attestd.app", "Contents", "Info.plist"), b, 0o644)
	return exe
}
