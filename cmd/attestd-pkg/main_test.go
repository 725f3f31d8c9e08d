package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile/profiletest"
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
		{name: "App Attest without its entitlement", args: []string{"bundle", "-binary", filepath.Join(dir, "none"), "-provider", "appattest"},
			code: 1, want: "PROVIDER=appattest needs the App Attest entitlement", onlyIf: true},
		{name: "registration URL in the clear", args: []string{"bundle", "-check", "-appattest-register", "http://gate.example.com"},
			code: 1, want: "plain http", onlyIf: true},
		{name: "settings fine", args: []string{"bundle", "-check", "-appattest-register", "https://gate.example.com"}, code: 0, onlyIf: true},
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

// TestMakeBundleAppAttest builds an App Attest helper through make: the
// profile is embedded, the helper is entitled to the environment, the
// agent runs auto with the registration URL, and the verifier, given the
// same variables, finds nothing wrong but the missing signature and a
// profile that is not Apple's (a test CA signed it). A bad combination
// fails before anything is built.
func TestMakeBundleAppAttest(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the universal binary through make; skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root := repoRoot(t)
	const bundleID, team, label, reg = "com.example.Host.attestd", "ABCDE12345", "com.example.Host.attestd", "https://gate.example.com/attestd"
	ca, err := profiletest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	prof, err := ca.Profile(profiletest.Fields{TeamID: team, BundleID: bundleID,
		Entitlements: map[string]any{plists.AppAttestEnvironment: []any{"development", "production"}}})
	if err != nil {
		t.Fatal(err)
	}
	profPath := filepath.Join(t.TempDir(), "attestd.provisionprofile")
	if err := os.WriteFile(profPath, prof, 0o644); err != nil {
		t.Fatal(err)
	}

	refused := t.TempDir()
	cmd := exec.Command("make", "-s", "bundle", "PROVIDER=appattest", "APPATTEST_REGISTER="+reg, "DIST="+refused)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "PROVIDER=appattest needs the App Attest entitlement") {
		t.Errorf("make bundle PROVIDER=appattest alone: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(refused, "attestd")); err == nil {
		t.Error("the refused build built the universal binary first")
	}

	dist := t.TempDir()
	vars := []string{"BUNDLE_ID=" + bundleID, "TEAM_ID=" + team, "LABEL=" + label, "DIST=" + dist,
		"APPATTEST_ENV=production", "APPATTEST_REGISTER=" + reg}
	cmd = exec.Command("make", append([]string{"-s", "universal", "bundle", "VERSION=v1.2.3", "PROFILE=" + profPath}, vars...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make bundle: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "provider: auto, App Attest keys registered with "+reg+" (App Attest environment production)") {
		t.Errorf("make bundle does not say the provider:\n%s", out)
	}
	ents := readPlist(t, filepath.Join(dist, "Attestd.entitlements"))
	if ents[plists.AppAttestEnvironment] != "production" || ents[plists.ApplicationIdentifier] != team+"."+bundleID {
		t.Errorf("entitlements %v", ents)
	}
	agent := readPlist(t, filepath.Join(dist, "LaunchAgents", label+".plist"))
	var argv []string
	for _, a := range agent["ProgramArguments"].([]any) {
		argv = append(argv, a.(string))
	}
	if p, _ := plists.FlagValue(argv, "provider"); p != "auto" {
		t.Errorf("agent provider %q in %q", p, argv)
	}
	if r, _ := plists.FlagValue(argv, "appattest-register"); r != reg {
		t.Errorf("agent registration URL %q in %q", r, argv)
	}
	embedded, err := os.ReadFile(filepath.Join(dist, "Attestd.app", "Contents", "embedded.provisionprofile"))
	if err != nil || !bytes.Equal(embedded, prof) {
		t.Errorf("embedded profile: %v", err)
	}

	cmd = exec.Command("make", append([]string{"-s", "verify-bundle"}, vars...)...)
	cmd.Dir = root
	out, _ = cmd.CombinedOutput()
	var fails []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "FAIL") {
			continue
		}
		fails = append(fails, line)
		switch {
		case strings.Contains(line, "[not-adhoc]"), strings.Contains(line, "[signed]"):
		case strings.Contains(line, "[provisioning-profile]") && strings.Contains(line, "does not chain to Apple Root CA"):
		default:
			t.Errorf("verify-bundle: %s", line)
		}
	}
	if len(fails) != 3 {
		t.Errorf("verify-bundle failed %d checks, want the two signatures and the test profile's signer:\n%s", len(fails), out)
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
