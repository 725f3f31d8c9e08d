package bundle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	macho "github.com/blacktop/go-macho"
	"github.com/blacktop/go-macho/types"

	"github.com/attestd/attestd/packaging/internal/testbin"
	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile/profiletest"
)

// signedProfile writes a provisioning profile for com.example.Host.attestd
// of team ABCDE12345, signed by a test CA, granting extra entitlements.
func signedProfile(t *testing.T, ents map[string]any) string {
	t.Helper()
	ca, err := profiletest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	data, err := ca.Profile(profiletest.Fields{TeamID: "ABCDE12345", BundleID: "com.example.Host.attestd", Entitlements: ents})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "attestd.provisionprofile")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// universal builds dist/attestd from real cross-built binaries.
func universal(t *testing.T) string {
	arm, amd := testbin.Darwin(t)
	out := filepath.Join(t.TempDir(), "attestd")
	if err := Fat(out, arm, amd); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFat(t *testing.T) {
	out := universal(t)
	ff, err := macho.OpenFat(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	var cpus []types.CPU
	for _, a := range ff.Arches {
		cpus = append(cpus, a.CPU)
		if a.File.CPU != a.CPU {
			t.Errorf("fat header says %v, slice says %v", a.CPU, a.File.CPU)
		}
		if a.Type != types.MH_EXECUTE {
			t.Errorf("%v slice is %v, want an executable", a.CPU, a.Type)
		}
	}
	if want := []types.CPU{types.CPUArm64, types.CPUAmd64}; !reflect.DeepEqual(cpus, want) {
		t.Errorf("slices %v, want %v", cpus, want)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, %v; want 0755", fi.Mode(), err)
	}
}

func TestFatErrors(t *testing.T) {
	arm, amd := testbin.Darwin(t)
	dir := t.TempDir()
	fat := universal(t)
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a binary"), 0o644)
	for _, tc := range []struct {
		name string
		in   []string
		is   error
	}{
		{"one slice", []string{arm}, ErrSlices},
		{"duplicate arch", []string{arm, arm}, ErrSlices},
		{"already universal", []string{fat, amd}, nil},
		{"not Mach-O", []string{junk, amd}, nil},
		{"missing", []string{filepath.Join(dir, "nope"), amd}, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "out")
			err := Fat(out, tc.in...)
			if err == nil {
				t.Fatal("Fat succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Error("Fat left an output file after failing")
			}
		})
	}
}

// tree lists every path under root, directories with a trailing slash.
func tree(t *testing.T, root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(out)
	return out
}

func TestAssemble(t *testing.T) {
	bin := universal(t)
	ents := filepath.Join("..", "..", "entitlements")
	profile := filepath.Join(t.TempDir(), "dev.provisionprofile")
	os.WriteFile(profile, []byte("profile bytes"), 0o644)
	aaProfile := signedProfile(t, map[string]any{plists.AppAttestEnvironment: []any{"development", "production"}})

	for _, tc := range []struct {
		name     string
		cfg      Config
		wantTree []string
		wantEnts map[string]any
		wantKey  string
		wantReq  string // --peer-requirement, "" for none
		wantWarn bool
		// wantProvider and wantRegister: --provider (devicecheck when
		// empty) and --appattest-register ("" for none).
		wantProvider, wantRegister string
	}{
		{
			name: "defaults",
			cfg:  Config{Entitlements: filepath.Join(ents, "attestd.entitlements")},
			wantTree: []string{
				"Attestd.app/", "Attestd.app/Contents/", "Attestd.app/Contents/Info.plist",
				"Attestd.app/Contents/MacOS/", "Attestd.app/Contents/MacOS/attestd",
				"Attestd.entitlements",
				"LaunchAgents/", "LaunchAgents/dev.attestd.agent.plist",
			},
			wantEnts: map[string]any{},
			wantKey:  "ATTESTD_SOCKET_dev_attestd_agent",
		},
		{
			name: "own key, requirement off, no release",
			cfg: Config{BundleID: "com.example.Host.attestd", Label: "com.example.Host.attestd", TeamID: "ABCDE12345",
				SocketKey: "EXAMPLE_HOST_ATTESTD", PeerRequirement: "none", Version: "3fcb1b9-dirty"},
			wantTree: []string{
				"Attestd.app/", "Attestd.app/Contents/", "Attestd.app/Contents/Info.plist",
				"Attestd.app/Contents/MacOS/", "Attestd.app/Contents/MacOS/attestd",
				"LaunchAgents/", "LaunchAgents/com.example.Host.attestd.plist",
			},
			wantKey:  "EXAMPLE_HOST_ATTESTD",
			wantWarn: true,
		},
		{
			name: "profile",
			cfg: Config{BundleID: "com.example.Host.attestd", Label: "com.example.Host.attestd.agent",
				Profile: profile, TeamID: "ABCDE12345", Entitlements: filepath.Join(ents, "attestd.profile.entitlements")},
			wantTree: []string{
				"Attestd.app/", "Attestd.app/Contents/", "Attestd.app/Contents/Info.plist",
				"Attestd.app/Contents/MacOS/", "Attestd.app/Contents/MacOS/attestd",
				"Attestd.app/Contents/embedded.provisionprofile",
				"Attestd.entitlements",
				"LaunchAgents/", "LaunchAgents/com.example.Host.attestd.agent.plist",
			},
			wantEnts: map[string]any{
				plists.ApplicationIdentifier: "ABCDE12345.com.example.Host.attestd",
				plists.TeamIdentifier:        "ABCDE12345",
			},
			wantKey: "ATTESTD_SOCKET_com_example_Host_attestd_agent",
			wantReq: `anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"`,
		},
		{
			name: "App Attest: profile, environment, registration URL",
			cfg: Config{BundleID: "com.example.Host.attestd", Label: "com.example.Host.attestd", Profile: aaProfile,
				TeamID: "ABCDE12345", Entitlements: filepath.Join(ents, "attestd.profile.entitlements"),
				AppAttestEnv: "production", AppAttestRegister: "https://gate.example.com"},
			wantTree: []string{
				"Attestd.app/", "Attestd.app/Contents/", "Attestd.app/Contents/Info.plist",
				"Attestd.app/Contents/MacOS/", "Attestd.app/Contents/MacOS/attestd",
				"Attestd.app/Contents/embedded.provisionprofile",
				"Attestd.entitlements",
				"LaunchAgents/", "LaunchAgents/com.example.Host.attestd.plist",
			},
			wantEnts: map[string]any{
				plists.ApplicationIdentifier: "ABCDE12345.com.example.Host.attestd",
				plists.TeamIdentifier:        "ABCDE12345",
				plists.AppAttestEnvironment:  "production",
			},
			wantKey:      "ATTESTD_SOCKET_com_example_Host_attestd",
			wantReq:      `anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"`,
			wantProvider: "auto",
			wantRegister: "https://gate.example.com",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			// A stale signature from an earlier build must not survive.
			os.MkdirAll(filepath.Join(out, Dir, "Contents", "_CodeSignature"), 0o755)
			os.WriteFile(filepath.Join(out, Dir, "Contents", "_CodeSignature", "CodeResources"), nil, 0o644)

			c := tc.cfg
			c.Binary, c.OutDir = bin, out
			if c.Version == "" {
				c.Version = testbin.Version
			}
			r, err := Assemble(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(t, out); !reflect.DeepEqual(got, tc.wantTree) {
				t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantTree, "\n"))
			}

			fi, err := os.Stat(r.Executable)
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("executable mode %v, %v", fi.Mode(), err)
			}
			same, _ := os.ReadFile(r.Executable)
			orig, _ := os.ReadFile(bin)
			if !slices.Equal(same, orig) {
				t.Error("bundle executable differs from the universal binary")
			}

			info := readDict(t, r.InfoPlist)
			bundleID := c.BundleID
			if bundleID == "" {
				bundleID = plists.DefaultBundleID
			}
			label, version := c.Label, "1.2.3"
			if label == "" {
				label = plists.DefaultLabel
			}
			if tc.wantWarn {
				version = "0.0.0"
			}
			wantInfo := map[string]any{
				"CFBundleDevelopmentRegion": "en", "CFBundleExecutable": "attestd",
				"CFBundleIdentifier": bundleID, "CFBundleInfoDictionaryVersion": "6.0",
				"CFBundleName": "Attestd", "CFBundlePackageType": "APPL",
				"CFBundleShortVersionString": version, "CFBundleVersion": version,
				"LSMinimumSystemVersion": "12.0", "LSUIElement": true,
				"AttestdLaunchAgentLabel": label, "AttestdSocketKey": tc.wantKey,
			}
			if (len(r.Warnings) == 1 && strings.Contains(r.Warnings[0], "0.0.0")) != tc.wantWarn {
				t.Errorf("warnings %q, want a 0.0.0 warning: %v", r.Warnings, tc.wantWarn)
			}
			if r.SocketKey != tc.wantKey || r.PeerRequirement != tc.wantReq {
				t.Errorf("result key %q, requirement %q; want %q, %q", r.SocketKey, r.PeerRequirement, tc.wantKey, tc.wantReq)
			}
			if !reflect.DeepEqual(info, wantInfo) {
				t.Errorf("Info.plist = %#v\nwant %#v", info, wantInfo)
			}

			agent := readDict(t, r.LaunchAgent)
			if agent["BundleProgram"] != "Contents/Helpers/Attestd.app/Contents/MacOS/attestd" {
				t.Errorf("BundleProgram = %v", agent["BundleProgram"])
			}
			var argv []string
			for _, a := range agent["ProgramArguments"].([]any) {
				argv = append(argv, a.(string))
			}
			if req, _ := plists.FlagValue(argv, "peer-requirement"); req != tc.wantReq {
				t.Errorf("ProgramArguments %q: peer requirement %q, want %q", argv, req, tc.wantReq)
			}
			wantProvider := tc.wantProvider
			if wantProvider == "" {
				wantProvider = plists.ProviderDeviceCheck
			}
			reg, hasReg := plists.FlagValue(argv, "appattest-register")
			if p, _ := plists.FlagValue(argv, "provider"); p != wantProvider || r.Provider != wantProvider || reg != tc.wantRegister || hasReg != (tc.wantRegister != "") {
				t.Errorf("ProgramArguments %q (result %q): want provider %q, registration %q", argv, r.Provider, wantProvider, tc.wantRegister)
			}
			if lf, _ := plists.FlagValue(argv, "log-file"); lf != "~/Library/Logs/"+label+".log" {
				t.Errorf("ProgramArguments %q: log file %q", argv, lf)
			}
			sock, _ := agent["Sockets"].(map[string]any)["Listeners"].(map[string]any)
			if sock["SecureSocketWithKey"] != tc.wantKey {
				t.Errorf("Sockets = %#v, want key %s", agent["Sockets"], tc.wantKey)
			}
			if agent["LimitLoadToSessionType"] != "Aqua" {
				t.Errorf("LimitLoadToSessionType = %#v", agent["LimitLoadToSessionType"])
			}

			if c.Entitlements == "" {
				return
			}
			ents, err := plists.ParseEntitlements(mustRead(t, r.Entitlements))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(map[string]any(ents), tc.wantEnts) {
				t.Errorf("entitlements = %#v, want %#v", ents, tc.wantEnts)
			}
		})
	}
}

func TestAssembleErrors(t *testing.T) {
	bin := universal(t)
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("#!/bin/sh\n"), 0o755)
	badEnts := filepath.Join(t.TempDir(), "bad.entitlements")
	os.WriteFile(badEnts, []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>com.apple.security.get-task-allow</key><true/></dict></plist>`), 0o644)
	profEnts := filepath.Join("..", "..", "entitlements", "attestd.profile.entitlements")
	plainEnts := filepath.Join("..", "..", "entitlements", "attestd.entitlements")
	devOnly := signedProfile(t, map[string]any{plists.AppAttestEnvironment: "development"})
	noAppAttest := signedProfile(t, nil)
	unsigned := filepath.Join(t.TempDir(), "junk.provisionprofile")
	os.WriteFile(unsigned, []byte("not a profile"), 0o644)
	// aa completes an App Attest build of com.example.Host.attestd.
	aa := func(c Config) Config {
		c.Binary, c.BundleID, c.TeamID, c.Entitlements = bin, "com.example.Host.attestd", "ABCDE12345", profEnts
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"not Mach-O", Config{Binary: junk}, "not a Mach-O"},
		{"bad bundle id", Config{Binary: bin, BundleID: "x"}, "reverse-DNS"},
		{"get-task-allow", Config{Binary: bin, Entitlements: badEnts}, "get-task-allow"},
		{"profile entitlements without a team", Config{Binary: bin, Entitlements: profEnts}, "TEAM_ID"},
		{"missing profile", Config{Binary: bin, Profile: "/nonexistent/profile"}, "provisioning profile"},
		{"label without a key", Config{Binary: bin, Label: "com.my_app.attestd"}, "SOCKET_KEY"},
		{"the shared key", Config{Binary: bin, SocketKey: "ATTESTD_SOCKET"}, "shared manual override"},
		{"team id with a typo", Config{Binary: bin, TeamID: "ABCDE1234"}, "not an Apple team identifier"},
		{"team id in lower case", Config{Binary: bin, TeamID: "abcde12345"}, "not an Apple team identifier"},
		{"profile without App Attest", aa(Config{Profile: noAppAttest, AppAttestEnv: "production"}), "does not grant App Attest"},
		{"profile for the other environment", aa(Config{Profile: devOnly, AppAttestEnv: "production"}), "grants App Attest environment development, not APPATTEST_ENV=production"},
		{"not a profile", aa(Config{Profile: unsigned, AppAttestEnv: "production"}), "not a provisioning profile"},
		{"App Attest with the plain entitlements", Config{Binary: bin, BundleID: "com.example.Host.attestd", TeamID: "ABCDE12345",
			Profile: devOnly, AppAttestEnv: "development", Entitlements: plainEnts}, "not TEAMID.BUNDLE_ID"},
		{"App Attest without a team", Config{Binary: bin, BundleID: "com.example.Host.attestd",
			Profile: devOnly, AppAttestEnv: "development", Entitlements: profEnts}, "TEAM_ID"},
		{"App Attest without entitlements", Config{Binary: bin, BundleID: "com.example.Host.attestd", TeamID: "ABCDE12345",
			Profile: devOnly, AppAttestEnv: "development"}, "without an entitlements file"},
		{"PROVIDER=appattest alone", aa(Config{Provider: "appattest"}), "PROVIDER=appattest needs the App Attest entitlement"},
		{"bad registration URL", aa(Config{Provider: "auto", AppAttestRegister: "http://gate.example.com"}), "plain http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.OutDir = t.TempDir()
			if _, err := Assemble(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readDict(t *testing.T, name string) map[string]any {
	t.Helper()
	m, err := plists.Dict(mustRead(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func TestAppAttestResolve(t *testing.T) {
	t.Parallel()
	const reg = "https://gate.example.com"
	for _, tc := range []struct {
		name     string
		a        AppAttest
		provider string
		err      string // in the problem; "" for none
		warn     string // in a warning; "" for none
	}{
		{name: "nothing: DeviceCheck as before", a: AppAttest{}, provider: "devicecheck"},
		{name: "a registration URL alone: auto, warned", a: AppAttest{Register: reg}, provider: "auto", warn: "without APPATTEST_ENV"},
		{name: "the whole App Attest setup", a: AppAttest{Environment: "production", Register: reg, Profile: true}, provider: "auto"},
		{name: "appattest, strictly", a: AppAttest{Provider: "appattest", Environment: "production", Register: reg, Profile: true}, provider: "appattest"},
		{name: "development environment", a: AppAttest{Environment: "development", Register: reg, Profile: true}, provider: "auto", warn: "sandbox"},
		{name: "entitled, but DeviceCheck", a: AppAttest{Provider: "devicecheck", Environment: "production", Profile: true}, provider: "devicecheck", warn: "never uses it"},
		{name: "entitled, nowhere to register", a: AppAttest{Provider: "auto", Environment: "production", Profile: true}, provider: "auto", warn: "nowhere to register"},
		{name: "unknown provider", a: AppAttest{Provider: "appatest"}, err: "not a provider"},
		{name: "development provider", a: AppAttest{Provider: "dev"}, err: "development provider"},
		{name: "simulator", a: AppAttest{Provider: "appattest-sim", Register: reg}, err: "development provider"},
		{name: "unknown environment", a: AppAttest{Environment: "sandbox", Profile: true}, err: "not an App Attest environment"},
		{name: "environment without a profile", a: AppAttest{Environment: "production", Register: reg}, err: "without PROFILE"},
		{name: "appattest without the entitlement", a: AppAttest{Provider: "appattest", Register: reg}, err: "needs the App Attest entitlement"},
		{name: "appattest without a profile", a: AppAttest{Provider: "appattest", Environment: "production", Register: reg}, err: "without PROFILE"},
		{name: "appattest without a registration URL", a: AppAttest{Provider: "appattest", Environment: "production", Profile: true}, err: "without APPATTEST_REGISTER"},
		{name: "registration URL for DeviceCheck", a: AppAttest{Provider: "devicecheck", Register: reg}, err: "never uses App Attest"},
		{name: "plain http", a: AppAttest{Register: "http://gate.example.com"}, err: "plain http"},
		{name: "plain http to this Mac", a: AppAttest{Register: "http://127.0.0.1:8080"}, provider: "auto", warn: "without APPATTEST_ENV"},
		{name: "credentials in the URL", a: AppAttest{Register: "https://me:secret@gate.example.com"}, err: "user information"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			provider, warnings, err := tc.a.Resolve()
			if tc.err != "" {
				var se *SettingsError
				if !errors.As(err, &se) || !errors.Is(err, ErrSettings) || !strings.Contains(se.Problem, tc.err) || se.Fix == "" {
					t.Fatalf("err = %v, want a SettingsError with %q and a fix", err, tc.err)
				}
				return
			}
			if err != nil || provider != tc.provider {
				t.Fatalf("Resolve = %q, %v; want %q", provider, err, tc.provider)
			}
			if (tc.warn == "") != (len(warnings) == 0) || (tc.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.warn)) {
				t.Errorf("warnings %q, want one with %q", warnings, tc.warn)
			}
		})
	}
}
