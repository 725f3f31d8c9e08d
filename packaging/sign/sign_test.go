package sign

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func setTools(t *testing.T, os string, tools ...string) {
	t.Helper()
	oldGOOS, oldLook := goos, lookPath
	t.Cleanup(func() { goos, lookPath = oldGOOS, oldLook })
	goos = os
	lookPath = func(name string) (string, error) {
		if slices.Contains(tools, name) {
			return "/usr/bin/" + name, nil
		}
		return "", exec.ErrNotFound
	}
}

func TestPickTool(t *testing.T) {
	for _, tc := range []struct {
		name  string
		goos  string
		tools []string
		want  string
		tool  Tool
		err   string
	}{
		{name: "mac", goos: "darwin", tools: []string{"codesign", "rcodesign"}, tool: Codesign},
		{name: "mac without Xcode tools", goos: "darwin", err: "xcode-select --install"},
		{name: "mac, rcodesign only", goos: "darwin", tools: []string{"rcodesign"}, tool: Rcodesign},
		{name: "mac, asked for rcodesign", goos: "darwin", tools: []string{"codesign", "rcodesign"}, want: "rcodesign", tool: Rcodesign},
		{name: "linux with rcodesign", goos: "linux", tools: []string{"rcodesign"}, tool: Rcodesign},
		{name: "linux without", goos: "linux", err: "install rcodesign"},
		{name: "linux asked for codesign", goos: "linux", tools: []string{"rcodesign"}, want: "codesign", err: "only on macOS"},
		{name: "asked for missing rcodesign", goos: "darwin", tools: []string{"codesign"}, want: "rcodesign", err: "apple-codesign"},
		{name: "unknown", goos: "linux", want: "quill", err: "unknown signer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setTools(t, tc.goos, tc.tools...)
			got, err := PickTool(tc.want)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("PickTool = %v, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.tool {
				t.Fatalf("PickTool = %v, %v; want %v", got, err, tc.tool)
			}
		})
	}
}

func cfg() Config {
	return Config{
		Bundle: "dist/Attestd.app", Entitlements: "dist/Attestd.entitlements", BundleID: "com.example.attestd",
		Identity: "Developer ID Application: Example (ABCDE12345)", P12File: "id.p12", P12PasswordFile: "pw",
	}
}

func TestSignPlanCodesign(t *testing.T) {
	plan, err := SignPlan(Codesign, cfg())
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{}
	for _, c := range plan {
		if c.Name != "codesign" {
			t.Errorf("command %s", c)
		}
		if slices.Contains(c.Args, "--deep") {
			t.Errorf("--deep in %s", c)
		}
		targets = append(targets, c.Args[len(c.Args)-1])
		if slices.Contains(c.Args, "--sign") {
			for _, want := range [][]string{{"--options", "runtime"}, {"--entitlements", "dist/Attestd.entitlements"}, {"--sign", cfg().Identity}} {
				i := slices.Index(c.Args, want[0])
				if i < 0 || i+1 >= len(c.Args) || c.Args[i+1] != want[1] {
					t.Errorf("%s lacks %s %s", c, want[0], want[1])
				}
			}
			if !slices.Contains(c.Args, "--timestamp") || !slices.Contains(c.Args, "--force") {
				t.Errorf("%s lacks --timestamp or --force", c)
			}
		}
	}
	// Inside-out: the executable, then the bundle, then a check.
	want := []string{"dist/Attestd.app/Contents/MacOS/attestd", "dist/Attestd.app", "dist/Attestd.app"}
	if !slices.Equal(targets, want) {
		t.Errorf("targets %q, want %q", targets, want)
	}
	if !slices.Contains(plan[0].Args, "--identifier") || !slices.Contains(plan[0].Args, "com.example.attestd") {
		t.Errorf("executable signed without the bundle id as identifier: %s", plan[0])
	}
	if !slices.Contains(plan[2].Args, "--verify") || !slices.Contains(plan[2].Args, "--strict") {
		t.Errorf("last step %s, want codesign --verify --strict", plan[2])
	}
}

func TestSignPlanRcodesign(t *testing.T) {
	plan, err := SignPlan(Rcodesign, cfg())
	if err != nil {
		t.Fatal(err)
	}
	want := "rcodesign sign --p12-file id.p12 --p12-password-file pw --code-signature-flags runtime --entitlements-xml-path dist/Attestd.entitlements dist/Attestd.app"
	if len(plan) != 1 || plan[0].String() != want {
		t.Errorf("plan %v, want [%s]", plan, want)
	}
}

func TestSignPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tool   Tool
		mutate func(*Config)
		is     error
		text   string
	}{
		{"no identity", Codesign, func(c *Config) { c.Identity = "" }, ErrCredentials, "IDENTITY="},
		{"no p12", Rcodesign, func(c *Config) { c.P12File = "" }, ErrCredentials, "P12_FILE"},
		{"no entitlements", Codesign, func(c *Config) { c.Entitlements = "" }, nil, "make bundle"},
		{"unknown tool", Tool("quill"), func(*Config) {}, nil, "unknown tool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg()
			tc.mutate(&c)
			_, err := SignPlan(tc.tool, c)
			if err == nil || !strings.Contains(err.Error(), tc.text) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("err = %v, want %v containing %q", err, tc.is, tc.text)
			}
		})
	}
}

func TestNotarizePlan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tool   Tool
		mutate func(*Config)
		want   []string // commands as strings
		err    string
	}{
		{name: "keychain profile", tool: Codesign, mutate: func(c *Config) { c.NotaryProfile = "attestd" }, want: []string{
			"ditto -c -k --keepParent dist/Attestd.app dist/Attestd.zip",
			"xcrun notarytool submit dist/Attestd.zip --wait --keychain-profile attestd",
			"xcrun stapler staple dist/Attestd.app",
			"xcrun stapler validate dist/Attestd.app",
		}},
		{name: "API key", tool: Codesign, mutate: func(c *Config) {
			c.NotaryKey, c.NotaryKeyID, c.NotaryIssuer, c.Zip = "AuthKey_K.p8", "K", "I", "out/x.zip"
		}, want: []string{
			"ditto -c -k --keepParent dist/Attestd.app out/x.zip",
			"xcrun notarytool submit out/x.zip --wait --key AuthKey_K.p8 --key-id K --issuer I",
			"xcrun stapler staple dist/Attestd.app",
			"xcrun stapler validate dist/Attestd.app",
		}},
		{name: "partial API key", tool: Codesign, mutate: func(c *Config) { c.NotaryKey = "k.p8" }, err: "NOTARY_KEY_ID"},
		{name: "no credentials", tool: Codesign, mutate: func(*Config) {}, err: "notarytool store-credentials"},
		{name: "rcodesign", tool: Rcodesign, mutate: func(c *Config) { c.NotaryAPIKeyJSON = "key.json" }, want: []string{
			"rcodesign notary-submit --api-key-file key.json --staple dist/Attestd.app",
		}},
		{name: "rcodesign without key", tool: Rcodesign, mutate: func(c *Config) { c.NotaryProfile = "p" }, err: "encode-app-store-connect-api-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Bundle: "dist/Attestd.app"}
			tc.mutate(&c)
			plan, err := NotarizePlan(tc.tool, c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrCredentials) {
					t.Fatalf("err = %v, want ErrCredentials containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range plan {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestCmdString(t *testing.T) {
	c := Cmd{Name: "codesign", Args: []string{"--sign", "Developer ID Application: A (T)", "it's", ""}}
	want := `codesign --sign 'Developer ID Application: A (T)' 'it'\''s' ''`
	if c.String() != want {
		t.Errorf("String() = %s, want %s", c, want)
	}
}

func TestRunStopsAtFailure(t *testing.T) {
	var log strings.Builder
	err := Run(context.Background(), &log, []Cmd{{Name: "false"}, {Name: "true"}})
	if err == nil {
		t.Fatal("Run succeeded")
	}
	if strings.Contains(log.String(), "+ true") {
		t.Errorf("ran past the failure:\n%s", log.String())
	}
	if err := Run(context.Background(), &log, []Cmd{{Name: "true"}}); err != nil {
		t.Errorf("Run(true) = %v", err)
	}
}
