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
)

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

	for _, tc := range []struct {
		name     string
		cfg      Config
		wantTree []string
		wantEnts map[string]any
		wantKey  string
		wantReq  string // --peer-requirement, "" for none
		wantWarn bool
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
