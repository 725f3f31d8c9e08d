package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/devicechecktest"
)

const (
	verifyTeamID = "TEAMID1234"
	verifyKeyID  = "ABC123DEFG"
)

// fakeApple starts a fake DeviceCheck server and writes the .p8 key it
// trusts; it returns the server and the flags that point verify at it.
func fakeApple(t *testing.T) (*devicechecktest.Server, []string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "AuthKey_"+verifyKeyID+".p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	apple := devicechecktest.NewServer(&key.PublicKey, verifyTeamID, verifyKeyID)
	t.Cleanup(apple.Close)
	return apple, []string{"--team-id", verifyTeamID, "--key-id", verifyKeyID, "--key", path, "--environment", apple.URL}
}

func encodeValue(t *testing.T, kind string, token []byte, gen time.Time) string {
	t.Helper()
	v, err := header.Encode(header.Value{Kind: kind, Token: token, GeneratedAt: gen, BundleID: "com.example.attestd", TeamID: verifyTeamID})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// codexEnvelope is the header value codex app-server sends upstream.
func codexEnvelope(value string) string {
	b, _ := json.Marshal(map[string]any{"v": 1, "s": 0, "t": value})
	return string(b)
}

func parseVerifyOutput(t *testing.T, out string) verifyOutput {
	t.Helper()
	var o verifyOutput
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return o
}

func TestVerifyCommand(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	apple.ValidTokens(func(tok []byte) bool { return string(tok) != "forged" })
	now := time.Now()
	genuine := []byte("genuine DeviceCheck token")
	dc := encodeValue(t, header.KindDeviceCheck, genuine, now)
	dev := encodeValue(t, header.KindDev, []byte("random bytes"), now)
	forged := encodeValue(t, header.KindDeviceCheck, []byte("forged"), now)
	old := encodeValue(t, header.KindDeviceCheck, genuine, now.Add(-time.Hour))

	tests := []struct {
		name      string
		args      []string
		stdin     string
		code      int
		reason    string
		validated bool
		status    string // statusName
		stderr    string
	}{
		// No key flags: decode and local policy only.
		{"decode only", []string{dc}, "", 3, "not_validated", false, "ok", "nothing was validated"},
		{"decode only, stdin", []string{"-"}, dc + "\n", 3, "not_validated", false, "ok", ""},
		{"decode only, stdin without dash", nil, "x-oai-attestation: " + codexEnvelope(dc), 3, "not_validated", false, "ok", ""},
		{"decode only, dev refused", []string{dev}, "", 1, "dev_token", false, "ok", "--allow-dev"},
		{"decode only, dev allowed", []string{dev, "--allow-dev"}, "", 3, "not_validated", false, "ok", ""},
		{"decode only, too old", []string{"--max-age", "5m", old}, "", 1, "too_old", false, "ok", "--max-age"},
		{"decode only, s=1", []string{`{"v":1,"s":1}`}, "", 1, "client_status", false, "timeout", "attestd doctor"},
		{"decode only, s=2", []string{`{"v":1,"s":2}`}, "", 1, "client_status", false, "client_error", ""},
		{"decode only, s=3", []string{`{"v":1,"s":3}`}, "", 1, "client_status", false, "canceled", ""},
		{"decode only, s=4", []string{`{"v":1,"s":4}`}, "", 1, "client_status", false, "malformed_response", ""},
		{"malformed", []string{"v1.!!!"}, "", 1, "malformed", false, "", "envelope"},
		{"malformed envelope", []string{`{"v":1,"s":7}`}, "", 1, "malformed", false, "", ""},
		{"empty", nil, "", 1, "missing", false, "", ""},

		// With Apple.
		{"valid", append([]string{dc}, keyFlags...), "", 0, "", true, "ok", ""},
		{"valid envelope, flags first", append(append([]string{}, keyFlags...), codexEnvelope(dc)), "", 0, "", true, "ok", ""},
		{"valid from stdin", append([]string{"-"}, keyFlags...), codexEnvelope(dc), 0, "", true, "ok", ""},
		{"forged", append([]string{forged}, keyFlags...), "", 1, "bad_device_token", true, "ok", "--environment development"},
		{"dev refused before Apple", append([]string{dev}, keyFlags...), "", 1, "dev_token", false, "ok", ""},
		{"dev allowed, fake Apple asked", append([]string{dev, "--allow-dev"}, keyFlags...), "", 0, "", true, "ok", ""},
		{"too old before Apple", append([]string{old, "--max-age", "10m"}, keyFlags...), "", 1, "too_old", false, "ok", ""},
		{"client status before Apple", append([]string{`{"v":1,"s":1}`}, keyFlags...), "", 1, "client_status", false, "timeout", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(apple.Requests())
			code, out, errOut := runCLI(t, nil, tt.stdin, append([]string{"verify"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			o := parseVerifyOutput(t, out)
			if o.Valid != (tt.code == 0) || o.Reason != tt.reason || o.Validated != tt.validated || o.StatusName != tt.status {
				t.Errorf("output %+v; want valid %v, reason %q, validated %v, status %q", o, tt.code == 0, tt.reason, tt.validated, tt.status)
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.stderr)
			}
			if tt.code == 0 && errOut != "" {
				t.Errorf("stderr %q for a valid token", errOut)
			}
			if strings.Contains(out+errOut, base64.StdEncoding.EncodeToString(genuine)) || strings.Contains(out+errOut, string(genuine)) {
				t.Errorf("output reveals the token:\n%s\n%s", out, errOut)
			}
			asked := len(apple.Requests()) - before
			if (asked > 0) != tt.validated {
				t.Errorf("Apple got %d requests; validated %v", asked, tt.validated)
			}
		})
	}
}

func TestVerifyOutputFields(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	gen := time.Now().Add(-2 * time.Second)
	value := encodeValue(t, header.KindDeviceCheck, []byte{1, 2, 3, 4}, gen)
	code, out, errOut := runCLI(t, nil, "", append([]string{"verify", codexEnvelope(value)}, keyFlags...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	o := parseVerifyOutput(t, out)
	if o.Form != "envelope" || o.Kind != "dc" || o.TokenBytes != 4 || o.Fingerprint != header.Fingerprint(value) ||
		o.BundleID != "com.example.attestd" || o.TeamID != verifyTeamID || o.Environment != apple.URL ||
		o.GeneratedAt != gen.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano) || o.Age == "" || o.Status == nil || *o.Status != 0 {
		t.Errorf("output %+v", o)
	}
}

func TestVerifyAppleFailures(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	value := encodeValue(t, header.KindDeviceCheck, []byte("tok"), time.Now())
	for _, tc := range []struct {
		status   int
		body     string
		reason   string
		attempts int
		hint     string
	}{
		{401, devicechecktest.BodyBadAuthorization, "bad_authorization", 1, "DeviceCheck enabled"},
		{403, "", "forbidden", 1, "DeviceCheck enabled"},
		{503, "Service Unavailable", "apple_unavailable", 3, "try again"},
	} {
		apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: tc.status, Body: tc.body}
		})
		// 503 is retried with the client's real backoff (jittered, under
		// a second in all for three attempts).
		code, out, errOut := runCLI(t, nil, "", append([]string{"verify", value}, keyFlags...)...)
		o := parseVerifyOutput(t, out)
		if code != 1 || o.Reason != tc.reason || o.Apple == nil || o.Apple.HTTPStatus != tc.status || o.Apple.Body != tc.body || o.Apple.Attempts != tc.attempts {
			t.Errorf("HTTP %d: exit %d, output %+v apple %+v", tc.status, code, o, o.Apple)
		}
		if !strings.Contains(errOut, "attestd: hint: ") || !strings.Contains(errOut, tc.hint) {
			t.Errorf("HTTP %d: stderr %q", tc.status, errOut)
		}
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	value := encodeValue(t, header.KindDeviceCheck, []byte("tok"), time.Now())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{value, "--team-id", "T"}, "give all of --team-id, --key-id and --key"},
		{[]string{value, "--key", "k.p8", "--key-id", "K"}, "give all of"},
		{[]string{value, value}, "give one value"},
		{[]string{value, "--environment", "staging"}, "--environment"},
		{[]string{value, "--max-age", "-1s"}, "--max-age"},
	} {
		code, out, errOut := runCLI(t, nil, "", append([]string{"verify"}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
	}
	code, _, errOut := runCLI(t, nil, "", "verify", value, "--team-id", "T", "--key-id", "K", "--key", filepath.Join(t.TempDir(), "missing.p8"))
	if code != 1 || !strings.Contains(errOut, "attestd: hint: give the .p8 file") {
		t.Errorf("missing key: exit %d, stderr %q", code, errOut)
	}
}

func TestParseInterleaved(t *testing.T) {
	c := commands["verify"]
	for _, tc := range []struct {
		args []string
		pos  string
	}{
		{[]string{"V", "--allow-dev"}, "V"},
		{[]string{"--allow-dev", "V"}, "V"},
		{[]string{"--max-age", "1m", "V", "--allow-dev"}, "V"},
		{[]string{"--allow-dev", "--", "-x"}, "-x"},
		{[]string{"-", "--allow-dev"}, "-"},
		{[]string{"--allow-dev"}, ""},
	} {
		fs := newFlagSet(&stdio{err: &bytes.Buffer{}}, c)
		allow := fs.Bool("allow-dev", false, "")
		fs.Duration("max-age", 0, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || !*allow {
			t.Errorf("%q: positional %q, allow-dev %v, err %v", tc.args, pos, *allow, err)
		}
	}
}

// TestVerifyRoundTripDaemon is the round trip without codex: a
// token from the real daemon (dev provider), wrapped in the envelope codex
// app-server sends, checked by the real binary against the fake Apple.
func TestVerifyRoundTripDaemon(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	startDaemon(t, sock)
	out, err := exec.Command(attestdBinary(t), "token", "--socket", sock).Output()
	if err != nil {
		t.Fatalf("attestd token: %v", err)
	}
	value := strings.TrimSpace(string(out))

	verifyProc := func(extra ...string) (int, verifyOutput, string) {
		cmd := exec.Command(attestdBinary(t), append(append([]string{"verify", "--max-age", "1m"}, extra...), keyFlags...)...)
		cmd.Stdin = strings.NewReader(codexEnvelope(value) + "\n")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, parseVerifyOutput(t, stdout.String()), stderr.String()
	}

	code, o, errOut := verifyProc("--allow-dev")
	if code != 0 || !o.Valid || !o.Validated || o.Kind != header.KindDev || o.Form != "envelope" {
		t.Fatalf("verify --allow-dev: exit %d, %+v\n%s", code, o, errOut)
	}
	reqs := apple.Requests()
	if len(reqs) != 1 || reqs[0].Op != "validate_device_token" || reqs[0].Problem != "" {
		t.Fatalf("Apple got %+v", reqs)
	}
	v, _ := header.Decode(value)
	if !bytes.Equal(reqs[0].DeviceToken, v.Token) {
		t.Error("Apple got another token than the daemon made")
	}

	code, o, errOut = verifyProc()
	if code != 1 || o.Reason != "dev_token" || !strings.Contains(errOut, "--allow-dev") {
		t.Errorf("verify without --allow-dev: exit %d, %+v\n%s", code, o, errOut)
	}
}

// TestVerifyRoundTripCodex is the full round trip: the daemon (dev
// provider) answers the real codex app-server through the bridge, codex
// sends x-oai-attestation to a fake backend, and attestd verify checks
// every header it sent against the fake Apple. Skipped without codex.
func TestVerifyRoundTripCodex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts codex app-server")
	}
	codexBinary(t) // skip before starting a daemon
	apple, keyFlags := fakeApple(t)
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	startDaemon(t, sock)
	b := newBackend(t)
	c := startBridgeClient(t, codexHome(t, b, false), "--socket", sock)
	thread := c.session(t.TempDir())
	c.turn(thread, "hi")
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d", code)
	}
	reqs := b.modelRequests()
	if len(reqs) == 0 {
		t.Fatalf("codex sent no model request; all requests: %v", b.all())
	}
	for _, r := range reqs {
		if !r.hasHeader {
			t.Errorf("%s %s: no x-oai-attestation", r.method, r.path)
			continue
		}
		cmd := exec.Command(attestdBinary(t), append([]string{"verify", "--allow-dev", "--max-age", "5m", r.attestation}, keyFlags...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("verify %s: %v\n%s", header.Fingerprint(r.attestation), err, out)
			continue
		}
		if o := parseVerifyOutput(t, string(out)); !o.Valid || !o.Validated || o.Form != "envelope" || o.StatusName != "ok" {
			t.Errorf("verify: %+v", o)
		}
	}
	if n := len(apple.Requests()); n != len(reqs) {
		t.Errorf("Apple got %d requests for %d headers", n, len(reqs))
	}
}
