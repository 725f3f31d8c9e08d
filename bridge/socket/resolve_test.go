package socket

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyForLabel(t *testing.T) {
	for _, tc := range []struct{ label, key, err string }{
		{label: "com.example.Host.attestd", key: "ATTESTD_SOCKET_com_example_Host_attestd"},
		{label: "dev.attestd.agent", key: "ATTESTD_SOCKET_dev_attestd_agent"},
		{label: "com.example-corp.app", key: "ATTESTD_SOCKET_com_example__corp_app"},
		{label: "com.example.corp.app", key: "ATTESTD_SOCKET_com_example_corp_app"},
		{label: "a1.B2-c3", key: "ATTESTD_SOCKET_a1_B2__c3"},
		{label: "", err: "not reverse-DNS"},
		{label: "com..example", err: "not reverse-DNS"},
		{label: "com.-example", err: "not reverse-DNS"},
		{label: ".com.example", err: "not reverse-DNS"},
		{label: "com.example.", err: "not reverse-DNS"},
		{label: "com.my_app", err: "SOCKET_KEY"},
		{label: "com.example/x", err: "not reverse-DNS"},
	} {
		key, err := KeyForLabel(tc.label)
		if tc.err != "" {
			if !errors.Is(err, ErrBadAgent) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("KeyForLabel(%q) = %q, %v; want an error with %q", tc.label, key, err, tc.err)
			}
			continue
		}
		if err != nil || key != tc.key {
			t.Errorf("KeyForLabel(%q) = %q, %v; want %q", tc.label, key, err, tc.key)
		}
		if err := CheckKey(key); err != nil {
			t.Errorf("derived key %q: %v", key, err)
		}
	}
}

// FuzzKeyForLabel checks that the rule is one-to-one: a key can be turned
// back into the one label it came from.
func FuzzKeyForLabel(f *testing.F) {
	for _, s := range []string{"com.example.Host.attestd", "a-b.c", "a.b-c", "x", "a--b", "a._b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, label string) {
		key, err := KeyForLabel(label)
		if err != nil {
			return
		}
		if err := CheckKey(key); err != nil {
			t.Fatalf("label %q gave unusable key %q: %v", label, key, err)
		}
		back := strings.NewReplacer("__", "-", "_", ".").Replace(strings.TrimPrefix(key, KeyPrefix))
		if back != label {
			t.Fatalf("label %q -> key %q -> %q", label, key, back)
		}
	})
}

func TestAgentKey(t *testing.T) {
	for _, tc := range []struct{ agent, key, err string }{
		{agent: "com.example.Host.attestd", key: "ATTESTD_SOCKET_com_example_Host_attestd"},
		{agent: "ATTESTD_SOCKET_custom", key: "ATTESTD_SOCKET_custom"},
		{agent: "MY_HOST_SOCKET", key: "MY_HOST_SOCKET"},
		{agent: "ATTESTD_SOCKET", err: "shared manual override"},
		{agent: "1BAD", err: "not an environment variable name"},
		{agent: "has space", err: "not an environment variable name"},
	} {
		key, err := AgentKey(tc.agent)
		if tc.err != "" {
			if !errors.Is(err, ErrBadAgent) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("AgentKey(%q) = %q, %v; want an error with %q", tc.agent, key, err, tc.err)
			}
			continue
		}
		if err != nil || key != tc.key {
			t.Errorf("AgentKey(%q) = %q, %v; want %q", tc.agent, key, err, tc.key)
		}
	}
}

// fakeLaunchd replaces the launchd lookup with a table (nil: no lookup,
// as off macOS) and records the keys asked for.
func fakeLaunchd(t *testing.T, env map[string]string, err error) *[]string {
	t.Helper()
	old := launchdGetenv
	t.Cleanup(func() { launchdGetenv = old })
	var asked []string
	if env == nil && err == nil {
		launchdGetenv = nil
		return &asked
	}
	launchdGetenv = func(ctx context.Context, key string) (string, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("launchd lookup without a deadline")
		}
		asked = append(asked, key)
		return env[key], err
	}
	return &asked
}

func TestResolveOrder(t *testing.T) {
	const (
		hostLabel = "com.example.Host.attestd"
		hostKey   = "ATTESTD_SOCKET_com_example_Host_attestd"
		devKey    = "ATTESTD_SOCKET_dev_attestd_agent"
	)
	runtimeDefault := filepath.Join("/run/user/501", "attestd", "attestd.sock")
	for _, tc := range []struct {
		name      string
		lookup    Lookup
		env       map[string]string // this process's environment
		launchd   map[string]string // the user's launchd environment; nil: no lookup
		launchErr error
		want      Found
		asked     []string // keys asked of launchd
	}{
		{
			name:    "flag wins over everything",
			lookup:  Lookup{Path: "/flag.sock", Agent: hostLabel},
			env:     map[string]string{hostKey: "/env.sock", EnvVar: "/override.sock"},
			launchd: map[string]string{hostKey: "/launchd.sock"},
			want:    Found{Path: "/flag.sock", Source: SourceFlag},
		},
		{
			name:    "the host's variable, inherited from launchd",
			lookup:  Lookup{Agent: hostLabel},
			env:     map[string]string{hostKey: "/env.sock", EnvVar: "/override.sock", devKey: "/dev.sock"},
			launchd: map[string]string{hostKey: "/launchd.sock"},
			want:    Found{Path: "/env.sock", Source: SourceEnv, Key: hostKey},
		},
		{
			name:    "first launch: only launchd knows the host's variable",
			lookup:  Lookup{Agent: hostLabel},
			env:     map[string]string{EnvVar: "/other-host.sock", devKey: "/dev.sock", "XDG_RUNTIME_DIR": "/run/user/501"},
			launchd: map[string]string{hostKey: "/private/tmp/com.apple.launchd.x/Listeners", devKey: "/dev-launchd.sock"},
			want:    Found{Path: "/private/tmp/com.apple.launchd.x/Listeners", Source: SourceLaunchd, Key: hostKey},
			asked:   []string{hostKey},
		},
		{
			name:    "agent named by its key",
			lookup:  Lookup{Agent: "MY_KEY"},
			launchd: map[string]string{"MY_KEY": "/mine.sock"},
			want:    Found{Path: "/mine.sock", Source: SourceLaunchd, Key: "MY_KEY"},
			asked:   []string{"MY_KEY"},
		},
		{
			name:    "not registered: the default path, never another host's",
			lookup:  Lookup{Agent: hostLabel},
			env:     map[string]string{EnvVar: "/other-host.sock", "XDG_RUNTIME_DIR": "/run/user/501"},
			launchd: map[string]string{"ATTESTD_SOCKET_com_other_app": "/other.sock"},
			want:    Found{Path: runtimeDefault, Source: SourceDefault, Key: hostKey},
			asked:   []string{hostKey},
		},
		{
			name:   "off macOS: no launchd lookup",
			lookup: Lookup{Agent: hostLabel},
			env:    map[string]string{"XDG_RUNTIME_DIR": "/run/user/501"},
			want:   Found{Path: runtimeDefault, Source: SourceDefault, Key: hostKey},
		},
		{
			name:    "no agent named: the manual override first",
			env:     map[string]string{EnvVar: "/override.sock", devKey: "/dev.sock"},
			launchd: map[string]string{devKey: "/dev-launchd.sock"},
			want:    Found{Path: "/override.sock", Source: SourceOverride, Key: EnvVar},
		},
		{
			name:    "no agent named: the development agent through launchd",
			env:     map[string]string{"XDG_RUNTIME_DIR": "/run/user/501"},
			launchd: map[string]string{devKey: "/dev-launchd.sock"},
			want:    Found{Path: "/dev-launchd.sock", Source: SourceLaunchd, Key: devKey},
			asked:   []string{devKey},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := fakeLaunchd(t, tc.launchd, tc.launchErr)
			tc.lookup.Getenv = func(k string) string { return tc.env[k] }
			got, err := Resolve(context.Background(), tc.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve = %+v\nwant       %+v", got, tc.want)
			}
			if strings.Join(*asked, ",") != strings.Join(tc.asked, ",") {
				t.Errorf("asked launchd for %q, want %q", *asked, tc.asked)
			}
		})
	}
}

func TestResolveLaunchdFailureFallsThrough(t *testing.T) {
	fakeLaunchd(t, nil, errors.New("launchctl: boom"))
	got, err := Resolve(context.Background(), Lookup{Agent: "com.example.Host.attestd",
		Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": "/run/user/7"}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != SourceDefault || got.Path != "/run/user/7/attestd/attestd.sock" || got.LaunchdErr == nil {
		t.Errorf("got %+v, want the default path with the launchd error kept", got)
	}
	if !strings.Contains(got.String(), "default path") {
		t.Errorf("String() = %q", got.String())
	}
}

func TestResolveBadAgent(t *testing.T) {
	asked := fakeLaunchd(t, map[string]string{}, nil)
	for _, agent := range []string{"com..x", "ATTESTD_SOCKET", "bad key"} {
		if _, err := Resolve(context.Background(), Lookup{Agent: agent, Getenv: func(string) string { return "" }}); !errors.Is(err, ErrBadAgent) {
			t.Errorf("agent %q: err %v, want ErrBadAgent", agent, err)
		}
	}
	if len(*asked) != 0 {
		t.Errorf("asked launchd for %q with a bad agent name", *asked)
	}
}

// TestLaunchctlGetenv runs the real lookup against a scripted stand-in for
// /bin/launchctl: a set variable, an unset one (empty output, exit 0) and
// a failing launchctl.
func TestLaunchctlGetenv(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "launchctl")
	err := os.WriteFile(script, []byte(`#!/bin/sh
[ "$1" = getenv ] || { echo "usage" >&2; exit 64; }
case "$2" in
ATTESTD_SOCKET_set) echo "/private/tmp/com.apple.launchd.abc/Listeners" ;;
ATTESTD_SOCKET_unset) ;;
*) echo "Could not talk to launchd" >&2; exit 3 ;;
esac
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	old := launchctlPath
	t.Cleanup(func() { launchctlPath = old })
	launchctlPath = script

	ctx := context.Background()
	if v, err := launchctlGetenv(ctx, "ATTESTD_SOCKET_set"); err != nil || v != "/private/tmp/com.apple.launchd.abc/Listeners" {
		t.Errorf("set: %q, %v", v, err)
	}
	if v, err := launchctlGetenv(ctx, "ATTESTD_SOCKET_unset"); err != nil || v != "" {
		t.Errorf("unset: %q, %v", v, err)
	}
	if v, err := launchctlGetenv(ctx, "ATTESTD_SOCKET_broken"); err == nil || !strings.Contains(err.Error(), "Could not talk to launchd") {
		t.Errorf("failing launchctl: %q, %v", v, err)
	}

	// Through Resolve, as on a Mac.
	oldLookup := launchdGetenv
	t.Cleanup(func() { launchdGetenv = oldLookup })
	launchdGetenv = launchctlGetenv
	got, err := Resolve(ctx, Lookup{Agent: "ATTESTD_SOCKET_set", Getenv: func(string) string { return "" }})
	if err != nil || got.Source != SourceLaunchd || got.Path != "/private/tmp/com.apple.launchd.abc/Listeners" {
		t.Errorf("Resolve through launchctl: %+v, %v", got, err)
	}
}
