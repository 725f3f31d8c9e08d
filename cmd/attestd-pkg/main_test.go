package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/attestd/attestd/packaging/plists"
)

func TestRun(t *testing.T) {
	_, rcodesignErr := exec.LookPath("rcodesign")
	noSigner := runtime.GOOS != "darwin" && rcodesignErr != nil
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		want   string // in stdout+stderr
		onlyIf bool
	}{
		{name: "no command", args: nil, code: 2, want: "usage: attestd-pkg", onlyIf: true},
		{name: "help", args: []string{"help"}, code: 0, want: "verify", onlyIf: true},
		{name: "unknown", args: []string{"frob"}, code: 2, want: `unknown command "frob"`, onlyIf: true},
		{name: "bad flag", args: []string{"bundle", "-nope"}, code: 2, want: "flag provided but not defined", onlyIf: true},
		{name: "stray argument", args: []string{"bundle", "x"}, code: 2, want: "unexpected arguments", onlyIf: true},
		{name: "fat of one", args: []string{"fat", "-o", filepath.Join(dir, "a"), filepath.Join(dir, "b")}, code: 1, want: "two or more", onlyIf: true},
		{name: "verify nothing", args: []string{"verify", "-bundle", filepath.Join(dir, "Attestd.app"), "-agent", filepath.Join(dir, "x.plist")},
			code: 1, want: "FAIL Info.plist [info-plist]", onlyIf: true},
		{name: "sign without a tool", args: []string{"sign"}, code: 1, want: "install rcodesign", onlyIf: noSigner},
		{name: "notarize without a tool", args: []string{"notarize"}, code: 1, want: "install rcodesign", onlyIf: noSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.onlyIf {
				t.Skip("depends on the signing tools installed here")
			}
			var out, errb strings.Builder
			code := run(context.Background(), &out, &errb, tc.args)
			all := out.String() + errb.String()
			if code != tc.code || !strings.Contains(all, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, all)
			}
		})
	}
}

// repoRoot is the module root, where the Makefile is.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile at %s: %v", root, err)
	}
	return root
}

// TestMakeBundleTwoHosts is the "done" line, through make itself:
// make universal bundle for two hosts gives two agents that cannot
// collide (different socket variables, each known to its own bundle), each
// admitting only its own team by default.
func TestMakeBundleTwoHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the universal binary through make; skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root := repoRoot(t)
	type host struct{ bundleID, team, label, dist string }
	hosts := []host{
		{"com.example.Host.attestd", "ABCDE12345", "com.example.Host.attestd", t.TempDir()},
		{"org.other.App.helper", "ZYXWV98765", "org.other.App.attestd", t.TempDir()},
	}
	keys := map[string]string{}
	for _, h := range hosts {
		cmd := exec.Command("make", "-s", "universal", "bundle", "BUNDLE_ID="+h.bundleID, "TEAM_ID="+h.team,
			"LABEL="+h.label, "DIST="+h.dist, "VERSION=v1.2.3")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make for %s: %v\n%s", h.label, err, out)
		}
		if strings.Contains(string(out), "warning") {
			t.Errorf("make for %s warned with a release version:\n%s", h.label, out)
		}
		agent := readPlist(t, filepath.Join(h.dist, "LaunchAgents", h.label+".plist"))
		info := readPlist(t, filepath.Join(h.dist, "Attestd.app", "Contents", "Info.plist"))
		key, _ := agent["Sockets"].(map[string]any)["Listeners"].(map[string]any)["SecureSocketWithKey"].(string)
		if key == "" || info[plists.InfoKeySocketKey] != key || info[plists.InfoKeyLabel] != h.label {
			t.Errorf("%s: agent key %q, Info.plist %v / %v", h.label, key, info[plists.InfoKeySocketKey], info[plists.InfoKeyLabel])
		}
		if other, dup := keys[key]; dup {
			t.Errorf("%s and %s publish their sockets in the same variable %s", other, h.label, key)
		}
		keys[key] = h.label
		var argv []string
		for _, a := range agent["ProgramArguments"].([]any) {
			argv = append(argv, a.(string))
		}
		if req, _ := plists.FlagValue(argv, "peer-requirement"); req != plists.TeamPeerRequirement(h.team) {
			t.Errorf("%s: peer requirement %q, want the team's", h.label, req)
		}
		if !strings.Contains(string(out), "socket key: "+key) {
			t.Errorf("make does not say the socket key:\n%s", out)
		}
		// The verifier agrees, apart from the signature an unsigned build lacks.
		var vout, verr strings.Builder
		run(context.Background(), &vout, &verr, []string{"verify", "-bundle", filepath.Join(h.dist, "Attestd.app"),
			"-agent", filepath.Join(h.dist, "LaunchAgents", h.label+".plist"), "-entitlements", filepath.Join(h.dist, "Attestd.entitlements"),
			"-bundle-id", h.bundleID, "-team-id", h.team, "-label", h.label})
		for _, line := range strings.Split(vout.String(), "\n") {
			if strings.HasPrefix(line, "FAIL") && !strings.Contains(line, "[not-adhoc]") && !strings.Contains(line, "[signed]") {
				t.Errorf("%s: %s", h.label, line)
			}
		}
	}
}

func readPlist(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := plists.Dict(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReadmeWalkthroughRunsInCI: every command of packaging/README.md's
// "Ship it" walkthrough (the sh blocks between the walkthrough markers) is
// run by the macOS workflow, as written there, so the page cannot drift
// from what was last seen to work on a Mac.
func TestReadmeWalkthroughRunsInCI(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "packaging", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	workflow, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "macos.yml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "<!-- walkthrough")
	end := strings.Index(text, "<!-- /walkthrough -->")
	if start < 0 || end < start {
		t.Fatal("packaging/README.md has no walkthrough markers")
	}
	var commands []string
	inSh := false
	for _, line := range strings.Split(text[start:end], "\n") {
		switch {
		case line == "```sh":
			inSh = true
			continue
		case strings.HasPrefix(line, "```"):
			inSh = false
			continue
		}
		line = strings.TrimSpace(line)
		if !inSh || line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "export ") {
			continue
		}
		commands = append(commands, line)
	}
	if len(commands) < 8 {
		t.Fatalf("found %d commands in the walkthrough: %q", len(commands), commands)
	}
	var lines []string
	for _, l := range strings.Split(string(workflow), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	for _, c := range commands {
		found := false
		for _, l := range lines {
			if strings.Contains(l, c) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the walkthrough's %q is not run by .github/workflows/macos.yml", c)
		}
	}
}
