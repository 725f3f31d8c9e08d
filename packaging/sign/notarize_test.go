package sign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standIns puts the scripted stand-ins in testdata/notary (xcrun
// notarytool and stapler, ditto, rcodesign; the macOS workflow uses the
// same xcrun) first on PATH. scenario picks Apple's answer: accepted,
// invalid (submit exits 0, as notarytool does), or submit-fails. Every
// call is appended to the returned file.
func standIns(t *testing.T, scenario string) (calls string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "notary"))
	if err != nil {
		t.Fatal(err)
	}
	calls = filepath.Join(t.TempDir(), "calls")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("CALLS", calls)
	t.Setenv("NOTARY_SCENARIO", scenario)
	return calls
}

func readCalls(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestNotarizeOutcomes(t *testing.T) {
	const id = "2efe2717-52ef-43a5-96dc-0797e4ca1041"
	bundle := func(t *testing.T) string {
		b := filepath.Join(t.TempDir(), "Attestd.app")
		os.MkdirAll(b, 0o755)
		return b
	}
	for _, tc := range []struct {
		name, scenario string
		tool           Tool
		wantErr        []string // substrings of the error; none for success
		notAccepted    bool
		wantLog        []string // substrings of what the user sees
		wantCalls      []string // prefixes, in order
	}{
		{
			name: "notarytool: accepted", scenario: "accepted", tool: Codesign,
			wantLog:   []string{`"status":"Accepted"`, "notarization " + id + ": Accepted"},
			wantCalls: []string{"ditto -c -k --keepParent", "xcrun notarytool submit", "xcrun stapler staple", "xcrun stapler validate"},
		},
		{
			name: "notarytool: invalid, though submit exits 0", scenario: "invalid", tool: Codesign,
			wantErr: []string{`Apple answered "Invalid"`, "Archive contains critical validation errors",
				"error: Attestd.zip/Attestd.app/Contents/MacOS/attestd [x86_64]: The binary is not signed with a valid Developer ID certificate.",
				"[arm64]: The signature does not include a secure timestamp."},
			notAccepted: true,
			wantLog:     []string{`"statusSummary":"Archive contains critical validation errors"`, "+ xcrun notarytool log " + id},
			wantCalls:   []string{"ditto", "xcrun notarytool submit", "xcrun notarytool log " + id + " --keychain-profile attestd"},
		},
		{
			name: "notarytool: submit fails", scenario: "submit-fails", tool: Codesign,
			wantErr:   []string{"notarytool submit", "exit status 69", "nothing was notarized"},
			wantLog:   []string{"Unable to authenticate"},
			wantCalls: []string{"ditto", "xcrun notarytool submit"},
		},
		{
			name: "rcodesign: accepted", scenario: "accepted", tool: Rcodesign,
			wantLog:   []string{"notarization " + id + ": Accepted"},
			wantCalls: []string{"rcodesign notary-submit --api-key-file key.json --wait", "rcodesign notary-log --api-key-file key.json " + id, "rcodesign staple"},
		},
		{
			name: "rcodesign: invalid", scenario: "invalid", tool: Rcodesign,
			wantErr:     []string{`Apple answered "Invalid"`, "[x86_64]: The binary is not signed with a valid Developer ID certificate."},
			notAccepted: true,
			wantLog:     []string{`"statusSummary":"Archive contains critical validation errors"`},
			wantCalls:   []string{"rcodesign notary-submit", "rcodesign notary-log"},
		},
		{
			name: "rcodesign: submit fails", scenario: "submit-fails", tool: Rcodesign,
			wantErr:   []string{"rcodesign notary-submit", "nothing was notarized"},
			wantLog:   []string{"API key error"},
			wantCalls: []string{"rcodesign notary-submit"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := standIns(t, tc.scenario)
			b := bundle(t)
			c := Config{Bundle: b, NotaryProfile: "attestd", NotaryAPIKeyJSON: "key.json"}
			var log strings.Builder
			err := Notarize(context.Background(), tc.tool, c, &log)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Notarize: %v\n%s", err, log.String())
				}
			} else {
				if err == nil {
					t.Fatalf("Notarize succeeded\n%s", log.String())
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				var ne *NotaryError
				if errors.Is(err, ErrNotAccepted) != tc.notAccepted || errors.As(err, &ne) != tc.notAccepted {
					t.Errorf("errors.Is(err, ErrNotAccepted) = %v, want %v", errors.Is(err, ErrNotAccepted), tc.notAccepted)
				}
				if tc.notAccepted && (ne.ID != id || ne.Status != "Invalid" || len(ne.Log.Issues) != 2) {
					t.Errorf("NotaryError %+v", ne)
				}
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(log.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, log.String())
				}
			}
			got := readCalls(t, calls)
			if len(got) != len(tc.wantCalls) {
				t.Fatalf("calls:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(tc.wantCalls), strings.Join(tc.wantCalls, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.wantCalls[i]) {
					t.Errorf("call %d = %q, want %q…", i, got[i], tc.wantCalls[i])
				}
			}
			if tc.tool == Codesign && !strings.Contains(got[1], "--output-format json") {
				t.Errorf("notarytool submit without a machine-readable answer: %s", got[1])
			}
		})
	}
}

func TestNotarizeCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tool   Tool
		mutate func(*Config)
		err    string
	}{
		{"partial API key", Codesign, func(c *Config) { c.NotaryKey = "k.p8" }, "NOTARY_KEY_ID"},
		{"no credentials", Codesign, func(*Config) {}, "notarytool store-credentials"},
		{"rcodesign without key", Rcodesign, func(c *Config) { c.NotaryProfile = "p" }, "encode-app-store-connect-api-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Bundle: "dist/Attestd.app"}
			tc.mutate(&c)
			err := Notarize(context.Background(), tc.tool, c, &strings.Builder{})
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrCredentials) {
				t.Fatalf("err = %v, want ErrCredentials containing %q", err, tc.err)
			}
		})
	}
	if got, err := notaryAuth(Config{NotaryKey: "AuthKey_K.p8", NotaryKeyID: "K", NotaryIssuer: "I"}); err != nil ||
		strings.Join(got, " ") != "--key AuthKey_K.p8 --key-id K --issuer I" {
		t.Errorf("API key auth = %q, %v", got, err)
	}
}

// TestNotarizeZipBesideTheBundle: the default zip goes beside the bundle,
// also for a path given with a trailing slash (as a shell completes it):
// written inside the signed bundle it would break the bundle's seal, and
// Apple would answer Invalid for a file the pipeline put there itself.
func TestNotarizeZipBesideTheBundle(t *testing.T) {
	for _, suffix := range []string{"", "/"} {
		calls := standIns(t, "accepted")
		dir := t.TempDir()
		b := filepath.Join(dir, "Host.app")
		os.MkdirAll(b, 0o755)
		var log strings.Builder
		if err := Notarize(context.Background(), Codesign, Config{Bundle: b + suffix, NotaryProfile: "p"}, &log); err != nil {
			t.Fatalf("bundle %q: %v\n%s", b+suffix, err, log.String())
		}
		want := filepath.Join(dir, "Host.zip")
		if got := readCalls(t, calls)[0]; !strings.HasSuffix(got, " "+want) {
			t.Errorf("bundle %q: %s, want the zip at %s", b+suffix, got, want)
		}
		if entries, _ := os.ReadDir(b); len(entries) != 0 {
			t.Errorf("bundle %q: notarize wrote %v into the bundle", b+suffix, entries)
		}
	}
}
