package sign

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The electron-builder configuration packaging/README.md documents must
// keep @electron/osx-sign away from the nested Attestd.app: signing it
// again would replace its identifier, entitlements (electron-builder's
// default entitlements.mac.plist grants allow-jit,
// allow-unsigned-executable-memory and disable-library-validation) and
// seal with the host's.

// readmeSignIgnore returns the patterns of every signIgnore / sign.ignore
// list in packaging/README.md's YAML examples, unquoted as YAML does.
func readmeSignIgnore(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inYAML, inList := false, false
	item := regexp.MustCompile(`^\s*-\s*(".*")\s*$`)
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "```yaml"):
			inYAML = true
			continue
		case strings.HasPrefix(line, "```"):
			inYAML, inList = false, false
			continue
		}
		if !inYAML {
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "signIgnore:" || trimmed == "ignore:" {
			inList = true
			continue
		}
		if !inList {
			continue
		}
		m := item.FindStringSubmatch(line)
		if m == nil {
			inList = false
			continue
		}
		p, err := strconv.Unquote(m[1]) // YAML double quotes escape "\\" as Go does
		if err != nil {
			t.Fatalf("README pattern %s: %v", m[1], err)
		}
		out = append(out, p)
	}
	if len(out) < 2 {
		t.Fatalf("found %d sign-ignore patterns in packaging/README.md, want the electron-builder 26 and 27 examples", len(out))
	}
	return out
}

// osxSignWalk lists the path shapes @electron/osx-sign hands to its
// ignore option for a host with a nested helper, as its walker builds them
// (dist/cjs/util.js walkAsync in 1.3.1, src/util.ts walk in 2.x): the
// binary files inside each bundle, then each nested .app and .framework
// directory itself, without a trailing slash, then the app.
func osxSignWalk(host string) []string {
	return []string{
		host + "/Contents/Frameworks/Electron Framework.framework/Versions/A/Electron Framework",
		host + "/Contents/Frameworks/Host Helper.app/Contents/MacOS/Host Helper",
		host + "/Contents/Helpers/Attestd.app/Contents/MacOS/attestd",
		host + "/Contents/Frameworks/Electron Framework.framework",
		host + "/Contents/Frameworks/Host Helper.app",
		host + "/Contents/Helpers/Attestd.app",
		host + "/Contents/MacOS/Host",
		host,
	}
}

func isHelper(p string) bool { return strings.Contains(p, "/Attestd.app") }

// TestSignIgnorePattern runs the documented patterns, as electron-builder
// compiles them (new RegExp(p).test(path); the patterns use only syntax
// that RE2 reads the same way), against the walker's path shapes.
func TestSignIgnorePattern(t *testing.T) {
	host := "/Users/me/project/dist/mac-universal/Host.app"
	for _, p := range readmeSignIgnore(t) {
		re, err := regexp.Compile(p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		for _, path := range osxSignWalk(host) {
			if got := re.MatchString(path); got != isHelper(path) {
				t.Errorf("pattern %q on %s: ignored=%v, want %v", p, path, got, isHelper(path))
			}
		}
	}
	// The pattern this README used to give misses the bundle directory
	// itself, so the helper was re-signed.
	old := regexp.MustCompile(`Contents/Helpers/Attestd\.app/`)
	if old.MatchString(host + "/Contents/Helpers/Attestd.app") {
		t.Error("the old pattern matches the bundle directory; this test would not catch the bug")
	}
}

// osxSignPackages returns the installed @electron/osx-sign copies that
// "make osx-sign" fetches (the versions electron-builder 26 and 27 pin).
// Without them the test is skipped, loudly; with OSX_SIGN_DIR set to a
// folder without them it fails.
func osxSignPackages(t *testing.T) map[string]string {
	t.Helper()
	dir := os.Getenv("OSX_SIGN_DIR")
	explicit := dir != ""
	if !explicit {
		dir = filepath.Join("..", "..", ".osx-sign")
	}
	out := map[string]string{}
	for _, alias := range []string{"osx-sign-eb26", "osx-sign-eb27"} {
		p, _ := filepath.Abs(filepath.Join(dir, "node_modules", alias))
		if _, err := os.Stat(filepath.Join(p, "package.json")); err == nil {
			out[alias] = p
		}
	}
	_, nodeErr := exec.LookPath("node")
	switch {
	case len(out) == 2 && nodeErr == nil:
		return out
	case explicit:
		t.Fatalf("OSX_SIGN_DIR=%s: want node and both pinned @electron/osx-sign copies (found %v, node: %v)", dir, out, nodeErr)
	}
	msg := "\n" + strings.Repeat("*", 72) + "\n" +
		"SKIPPING the signing-ignore test against the real @electron/osx-sign:\n" +
		"run \"make osx-sign\" (npm install of the pinned versions) and have node on PATH.\n" +
		strings.Repeat("*", 72)
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
	return nil
}

// TestSignIgnoreWithOsxSign runs the real @electron/osx-sign, as
// electron-builder 26 and 27 call it, over a host app with a nested
// Attestd.app (testdata/osxsign.mjs; codesign is a stand-in that records
// its targets): with the documented patterns nothing of the helper is
// signed while the rest of the app is; with the old pattern the helper
// bundle itself was.
func TestSignIgnoreWithOsxSign(t *testing.T) {
	pkgs := osxSignPackages(t)
	run := func(t *testing.T, pkg string, patterns []string) (asked, signed []string) {
		t.Helper()
		pj, _ := json.Marshal(patterns)
		cmd := exec.Command("node", filepath.Join("testdata", "osxsign.mjs"), pkg, string(pj))
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("node osxsign.mjs: %v\n%s%s", err, out, stderr)
		}
		var res struct{ Asked, Signed []string }
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return res.Asked, res.Signed
	}
	patterns := readmeSignIgnore(t)
	for alias, pkg := range pkgs {
		t.Run(alias, func(t *testing.T) {
			asked, signed := run(t, pkg, patterns)
			// osx-sign asks about the helper bundle directory itself.
			if !slices.Contains(asked, "Host.app/Contents/Helpers/Attestd.app") {
				t.Errorf("osx-sign never asked about the helper bundle; asked %q", asked)
			}
			for _, p := range signed {
				if isHelper("/" + p) {
					t.Errorf("the documented pattern let osx-sign sign %s", p)
				}
			}
			for _, want := range []string{"Host.app", "Host.app/Contents/MacOS/Host", "Host.app/Contents/Frameworks/Host Helper.app"} {
				if !slices.Contains(signed, want) {
					t.Errorf("%s was not signed: the test signs nothing? signed %q", want, signed)
				}
			}
			_, signedOld := run(t, pkg, []string{`Contents/Helpers/Attestd\.app/`})
			if !slices.Contains(signedOld, "Host.app/Contents/Helpers/Attestd.app") {
				t.Errorf("with the old pattern the helper bundle was not re-signed (signed %q): the bug this guards against is not reproduced", signedOld)
			}
		})
	}
}
