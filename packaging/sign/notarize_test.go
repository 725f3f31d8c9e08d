package sign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standIns puts scripted stand-ins for Apple's tools (xcrun notarytool and
// stapler, ditto) and for rcodesign first on PATH. $NOTARY_SCENARIO picks
// Apple's answer: accepted, invalid (submit exits 0, as notarytool does),
// or submit-fails (no submission at all). Every call is appended to the
// returned file.
func standIns(t *testing.T, scenario string) (calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	const id = "2efe2717-52ef-43a5-96dc-0797e4ca1041"
	invalidLog := `{"logFormatVersion":1,"jobId":"` + id + `","status":"Invalid","statusSummary":"Archive contains critical validation errors","statusCode":4000,` +
		`"issues":[{"severity":"error","code":null,"path":"Attestd.zip/Attestd.app/Contents/MacOS/attestd","message":"The binary is not signed with a valid Developer ID certificate.",` +
		`"docUrl":"https://developer.apple.com/documentation/security/resolving-common-notarization-issues","architecture":"x86_64"},` +
		`{"severity":"error","code":null,"path":"Attestd.zip/Attestd.app/Contents/MacOS/attestd","message":"The signature does not include a secure timestamp.","docUrl":null,"architecture":"arm64"}]}`
	acceptedLog := `{"logFormatVersion":1,"jobId":"` + id + `","status":"Accepted","statusSummary":"Ready for distribution","statusCode":0,"issues":null}`
	scripts := map[string]string{
		"ditto": `echo "ditto $*" >> "$CALLS"; for last; do :; done; : > "$last"`,
		"xcrun": `echo "xcrun $*" >> "$CALLS"
case "$1 $2" in
"notarytool submit")
  echo "Conducting pre-submission checks for Attestd.zip and initiating connection to the Apple notary service..." >&2
  case "$NOTARY_SCENARIO" in
  accepted) echo '{"id":"` + id + `","status":"Accepted","message":"Processing complete"}' ;;
  invalid)  echo '{"id":"` + id + `","status":"Invalid","message":"Processing complete"}' ;;
  *) echo "Error: HTTP status code: 401. Unable to authenticate. Invalid credentials." >&2; exit 69 ;;
  esac ;;
"notarytool log")
  case "$NOTARY_SCENARIO" in
  accepted) echo '` + acceptedLog + `' ;;
  *) echo '` + invalidLog + `' ;;
  esac ;;
"stapler staple"|"stapler validate") echo "The staple and validate action worked!" ;;
*) echo "xcrun stand-in: unexpected $*" >&2; exit 64 ;;
esac`,
		"rcodesign": `echo "rcodesign $*" >> "$CALLS"
case "$1" in
notary-submit)
  echo "uploading asset to s3://notary-submissions-prod/prod/AAA" >&2
  case "$NOTARY_SCENARIO" in
  accepted) echo "created submission ID: ` + id + `" >&2; echo "Notary API Server has finished processing the uploaded asset" >&2 ;;
  invalid) echo "created submission ID: ` + id + `" >&2; echo "notary log> {" >&2; echo "Error: notarization invalid" >&2; exit 1 ;;
  *) echo "Error: API key error: invalid key" >&2; exit 1 ;;
  esac ;;
notary-log)
  case "$NOTARY_SCENARIO" in
  accepted) echo '` + acceptedLog + `' ;;
  *) echo '` + invalidLog + `' ;;
  esac ;;
staple) echo "stapling ok" >&2 ;;
*) echo "rcodesign stand-in: unexpected $*" >&2; exit 64 ;;
esac`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
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
