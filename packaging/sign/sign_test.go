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
	// The bundle once (its signature lives in the executable), then a check:
	// no separate signing of the executable, which the bundle's would
	// overwrite.
	want := []string{"dist/Attestd.app", "dist/Attestd.app"}
	if !slices.Equal(targets, want) {
		t.Errorf("targets %q, want %q", targets, want)
	}
	if !slices.Contains(plan[1].Args, "--verify") || !slices.Contains(plan[1].Args, "--strict") {
		t.Errorf("last step %s, want codesign --verify --strict", plan[1])
	}

	// Ad hoc (CI): no timestamp, which only a certificate signature gets.
	c := cfg()
	c.Identity = "-"
	plan, err = SignPlan(Codesign, c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan[0].Args, "--timestamp=none") || slices.Contains(plan[0].Args, "--timestamp") {
		t.Errorf("ad-hoc signing %s, want --timestamp=none", plan[0])
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
