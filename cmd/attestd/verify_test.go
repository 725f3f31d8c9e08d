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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/internal/inspect"
	"github.com/attestd/attestd/verify/devicechecktest"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
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

func parseVerifyOutput(t *testing.T, out string) inspect.Report {
	t.Helper()
	var o inspect.Report
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
	devEnv := encodeValue(t, header.KindDeviceCheck, apple.IssueTokenFor(devicechecktest.Development), now)

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
		{"token of the development environment", append([]string{devEnv}, keyFlags...), "", 1, "bad_device_token", true, "ok", "--environment development"},
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
			if o.Outcome != inspect.Outcome(tt.code) {
				t.Errorf("outcome %q for exit %d", o.Outcome, tt.code)
			}
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

// Every answer that is not Apple's yes or Apple's no is "could not
// check" (exit 4), never "valid": our key refused, Apple failing or
// rate-limiting, and what a hostile network answers in Apple's place.
func TestVerifyAppleFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*devicechecktest.Server)
		status   int
		body     string
		reason   string
		attempts int
		hint     string
	}{
		{"our key refused", respond(401, devicechecktest.BodyBadAuthorization), 401, devicechecktest.BodyBadAuthorization, "bad_authorization", 1, "DeviceCheck enabled"},
		{"a bearer that is not a JWT", respond(400, devicechecktest.BodyBadAuthorizationFormat), 400, devicechecktest.BodyBadAuthorizationFormat, "bad_authorization", 1, "DeviceCheck enabled"},
		{"forbidden", respond(403, ""), 403, "", "forbidden", 1, "DeviceCheck enabled"},
		// 503 is retried with the client's real backoff (jittered, about
		// a second in all for three attempts).
		{"Apple down", respond(503, "Service Unavailable"), 503, "Service Unavailable", "apple_unavailable", 3, "try again"},
		{"rate-limited", respond(429, "Too Many Requests"), 429, "Too Many Requests", "rate_limited", 1, "try again later"},
		{"200 with an error page", func(a *devicechecktest.Server) { a.SetSuccessBody("<html>Please log in to the hotel Wi-Fi</html>") },
			200, "<html>Please log in to the hotel Wi-Fi</html>", "unexpected_response", 1, "captive portal"},
		{"redirect", func(a *devicechecktest.Server) { a.Redirect(302) }, 302, "", "unexpected_response", 1, "captive portal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apple, keyFlags := fakeApple(t)
			tt.setup(apple)
			value := encodeValue(t, header.KindDeviceCheck, apple.IssueToken(), time.Now())
			code, out, errOut := runCLI(t, nil, value, append([]string{"verify", "-"}, keyFlags...)...)
			o := parseVerifyOutput(t, out)
			if code != inspect.NotChecked || o.Valid || o.Validated || o.Outcome != "not_checked" || o.Reason != tt.reason {
				t.Errorf("exit %d, output %+v", code, o)
			}
			if o.Apple == nil || o.Apple.HTTPStatus != tt.status || o.Apple.Body != tt.body || o.Apple.Attempts != tt.attempts {
				t.Errorf("apple %+v", o.Apple)
			}
			if !strings.HasPrefix(errOut, "attestd: error: could not check the token: ") || !strings.Contains(errOut, "attestd: hint: ") || !strings.Contains(errOut, tt.hint) {
				t.Errorf("stderr %q", errOut)
			}
			for _, r := range apple.Requests() {
				if r.Op == devicechecktest.PortalPath {
					t.Errorf("the redirect was followed: %+v", r)
				}
			}
		})
	}
}

func respond(status int, body string) func(*devicechecktest.Server) {
	return func(a *devicechecktest.Server) {
		a.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: status, Body: body}
		})
	}
}

// A key file that cannot be used is "could not check" too, and the JSON
// still says what the header held.
func TestVerifyBadKeyFile(t *testing.T) {
	value := encodeValue(t, header.KindDeviceCheck, []byte("tok"), time.Now())
	notAKey := filepath.Join(t.TempDir(), "AuthKey.p8")
	os.WriteFile(notAKey, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	for _, key := range []string{filepath.Join(t.TempDir(), "missing.p8"), notAKey} {
		code, out, errOut := runCLI(t, nil, value, "verify", "--team-id", "T", "--key-id", "K", "--key", key)
		o := parseVerifyOutput(t, out)
		if code != inspect.NotChecked || o.Valid || o.Outcome != "not_checked" || o.Reason != "bad_key" || o.Kind != "dc" || o.Fingerprint != header.Fingerprint(value) || o.Error == "" {
			t.Errorf("%s: exit %d, output %+v", key, code, o)
		}
		if !strings.Contains(errOut, "attestd: hint: give the .p8 file") {
			t.Errorf("%s: stderr %q", key, errOut)
		}
	}
}

// Input past the limit is refused whole, never cut to its first part: a
// value followed by ten thousand spaces and garbage is not that value.
func TestVerifyAndDecodeRefuseOverlongInput(t *testing.T) {
	value := encodeValue(t, header.KindDev, []byte("tok"), time.Now())
	overlong := value + strings.Repeat(" ", 10000) + "garbage"
	for _, args := range [][]string{{"verify", "--allow-dev"}, {"verify", "-", "--allow-dev"}, {"verify", overlong, "--allow-dev"}} {
		stdin := ""
		if len(args) < 3 || args[1] == "-" {
			stdin = overlong
		}
		code, out, errOut := runCLI(t, nil, stdin, args...)
		o := parseVerifyOutput(t, out)
		if code != 1 || o.Valid || o.Reason != "malformed" || !strings.Contains(o.Error, "longer than 9472 bytes") || !strings.Contains(errOut, "at most 9472 bytes") {
			t.Errorf("%.20q: exit %d, output %+v, stderr %q", args, code, o, errOut)
		}
	}
	for _, args := range [][]string{{"decode"}, {"decode", "-"}, {"decode", overlong}} {
		stdin := ""
		if len(args) == 1 || args[1] == "-" {
			stdin = overlong
		}
		code, out, errOut := runCLI(t, nil, stdin, args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "attestd: error: ") || !strings.Contains(errOut, "longer than 9472 bytes") {
			t.Errorf("%.20q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// Up to the limit, white space around a value is still fine.
	padded := value + strings.Repeat(" ", inspect.MaxInput-len(value)-1) + "\n"
	if code, _, errOut := runCLI(t, nil, padded, "decode"); code != 0 {
		t.Errorf("decode of a value padded to the limit: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, padded, "verify", "--allow-dev"); code != inspect.NotValidated {
		t.Errorf("verify of a value padded to the limit: exit %d, %s", code, errOut)
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
		{[]string{value, "--timeout", "0s"}, "--timeout"},
		{[]string{value, "--environment", "http://devicecheck.example"}, "loopback"},
	} {
		code, out, errOut := runCLI(t, nil, "", append([]string{"verify"}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, nil, "", "verify", value, "--replay-redis", "redis://127.0.0.1:1")
	if code != 2 || out != "" || !strings.Contains(errOut, "--replay-redis needs") {
		t.Errorf("--replay-redis without a key: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "", "verify", value, "--team-id", "T", "--key-id", "K", "--key", "k.p8", "--replay-redis", "http://x")
	if code != 2 || out != "" || !strings.Contains(errOut, "--replay-redis: ") {
		t.Errorf("bad --replay-redis URL: exit %d, stdout %q, stderr %q", code, out, errOut)
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
		fs := newFlagSet(&streams{err: &bytes.Buffer{}}, c)
		allow := fs.Bool("allow-dev", false, "")
		fs.Duration("max-age", 0, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || !*allow {
			t.Errorf("%q: positional %q, allow-dev %v, err %v", tc.args, pos, *allow, err)
		}
	}
}

// TestVerifyRoundTripDaemon is the issue's round trip without codex: a
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

	verifyProc := func(extra ...string) (int, inspect.Report, string) {
		return runVerifyProcess(t, codexEnvelope(value)+"\n", append(append([]string{"--max-age", "1m"}, extra...), keyFlags...)...)
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

// runVerifyProcess runs "attestd verify" as its own process with stdin
// and args, and returns its exit status, parsed output and stderr.
func runVerifyProcess(t *testing.T, stdin string, args ...string) (int, inspect.Report, string) {
	t.Helper()
	cmd := exec.Command(attestdBinary(t), append([]string{"verify"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
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

// TestVerifyReplayRedisTwoProcesses is issue 12's scale-out promise with
// the real binary: two separate "attestd verify --replay-redis" processes
// given the same header accept it once; re-encoding it with a fresh g
// does not help; with Redis stopped the check fails closed and says why.
func TestVerifyReplayRedisTwoProcesses(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	redis := redistest.Start(t)
	args := append([]string{"-", "--replay-redis", redis.URL()}, keyFlags...)
	token := apple.IssueToken()
	captured := codexEnvelope(encodeValue(t, header.KindDeviceCheck, token, time.Now()))

	code, o, errOut := runVerifyProcess(t, captured, args...)
	if code != 0 || !o.Valid || !o.Validated || o.Outcome != "valid" {
		t.Fatalf("first process: exit %d, %+v\n%s", code, o, errOut)
	}
	code, o, errOut = runVerifyProcess(t, captured, args...)
	if code != 1 || o.Valid || o.Reason != "replay" || o.Outcome != "not_valid" || !strings.Contains(errOut, "already used") {
		t.Errorf("second process, same header: exit %d, %+v\n%s", code, o, errOut)
	}
	reencoded := codexEnvelope(encodeValue(t, header.KindDeviceCheck, token, time.Now().Add(time.Second)))
	if code, o, errOut = runVerifyProcess(t, reencoded, args...); code != 1 || o.Reason != "replay" {
		t.Errorf("third process, same token with a fresh g: exit %d, %+v\n%s", code, o, errOut)
	}
	if n := len(apple.Requests()); n != 1 {
		t.Errorf("Apple asked %d times, want once: replays are refused before Apple", n)
	}

	redis.Stop()
	fresh := codexEnvelope(encodeValue(t, header.KindDeviceCheck, apple.IssueToken(), time.Now()))
	code, o, errOut = runVerifyProcess(t, fresh, args...)
	if code != inspect.NotChecked || o.Valid || o.Reason != "replay_store" || o.Outcome != "not_checked" {
		t.Errorf("Redis stopped: exit %d, %+v\n%s", code, o, errOut)
	}
	if !strings.Contains(errOut, "attestd: error: could not check the token: ") || !strings.Contains(errOut, "redis replay store") ||
		!strings.Contains(errOut, "attestd: hint: the replay store did not answer, and the check fails closed without it: check that Redis runs at "+redis.URL()) {
		t.Errorf("Redis stopped: stderr %q", errOut)
	}
	if n := len(apple.Requests()); n != 1 {
		t.Errorf("Apple asked %d times with Redis stopped, want no more", n-1)
	}
}

// TestVerifyReplayRedisHidesPassword: a --replay-redis URL may carry
// Redis's password; what verify prints (the JSON, the error and the hint,
// which CI logs keep) names the store without it, whether the URL is
// refused or Redis does not answer.
func TestVerifyReplayRedisHidesPassword(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	const password = "s3cret-redis-pw"
	value := encodeValue(t, header.KindDeviceCheck, apple.IssueToken(), time.Now())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "redis://:" + password + "@" + ln.Addr().String() + "/0" // nobody listens once closed
	ln.Close()
	for _, tc := range []struct {
		url  string
		code int
		want string
	}{
		{down, inspect.NotChecked, "check that Redis runs at redis://:xxxxx@" + ln.Addr().String() + "/0"},
		{"redis://:" + password + "@127.0.0.1:notaport/0", 2, "--replay-redis: "},
	} {
		code, out, errOut := runCLI(t, nil, "", append([]string{"verify", value, "--replay-redis", tc.url}, keyFlags...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d (want %d), stderr %q lacks %q", tc.url, code, tc.code, errOut, tc.want)
		}
		if strings.Contains(out+errOut, password) {
			t.Errorf("%s: the output shows Redis's password:\nstdout: %s\nstderr: %s", tc.url, out, errOut)
		}
	}
}

// Secrets never need the command line: --key and --replay-redis also
// come from ATTESTD_KEY / ATTESTD_REPLAY_REDIS, or from the files their
// _FILE variables name; the command line wins, and both variables at
// once is a usage error naming them.
func TestVerifySecretsFromEnvironment(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	redis := redistest.Start(t)
	keyPath := keyFlags[5]
	urlFile := filepath.Join(t.TempDir(), "redis-url")
	if err := os.WriteFile(urlFile, []byte(redis.URL()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ATTESTD_KEY": keyPath, "ATTESTD_REPLAY_REDIS_FILE": urlFile}
	args := []string{"verify", "-", "--team-id", verifyTeamID, "--key-id", verifyKeyID, "--environment", apple.URL}
	value := encodeValue(t, header.KindDeviceCheck, apple.IssueToken(), time.Now())
	code, out, errOut := runCLI(t, env, value, args...)
	if o := parseVerifyOutput(t, out); code != 0 || !o.Valid || o.ReplayStore == nil {
		t.Fatalf("key and Redis from the environment: exit %d, %+v\n%s", code, o, errOut)
	}
	code, out, _ = runCLI(t, env, value, args...)
	if o := parseVerifyOutput(t, out); code != 1 || o.Reason != "replay" {
		t.Errorf("the same header again: exit %d, %+v; want a replay (recorded in the Redis of ATTESTD_REPLAY_REDIS_FILE)", code, o)
	}
	// The command line wins: a key that does not exist, given as a flag.
	code, out, _ = runCLI(t, env, value, append(args, "--key", filepath.Join(t.TempDir(), "none.p8"))...)
	if o := parseVerifyOutput(t, out); code != inspect.NotChecked || o.Reason != "bad_key" {
		t.Errorf("--key on the command line: exit %d, %+v; want its (missing) file used", code, o)
	}
	env["ATTESTD_REPLAY_REDIS"] = redis.URL()
	code, out, errOut = runCLI(t, env, value, args...)
	if code != 2 || out != "" || !strings.Contains(errOut, "ATTESTD_REPLAY_REDIS and ATTESTD_REPLAY_REDIS_FILE are both set") {
		t.Errorf("both variables: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// --replay-redis reports each master's maxmemory-policy; one that may
// evict replay records fails the check closed, naming the policy and the
// fix; one that cannot be read is a warning.
func TestVerifyReportsEvictionPolicy(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	for _, tt := range []struct {
		name, policy string
		config       []string
		code         int
		stderr       string
	}{
		{"noeviction", "noeviction", nil, 0, ""},
		{"allkeys-lru", "allkeys-lru", []string{"maxmemory-policy allkeys-lru"}, inspect.NotChecked, "maxmemory-policy allkeys-lru"},
		{"unreadable", "", []string{`rename-command INFO ""`}, 0, "attestd: warning: redis replay store: redis eviction policy could not be read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			redis := redistest.Start(t, tt.config...)
			value := encodeValue(t, header.KindDeviceCheck, apple.IssueToken(), time.Now())
			code, out, errOut := runCLI(t, nil, value, append([]string{"verify", "-", "--replay-redis", redis.URL()}, keyFlags...)...)
			o := parseVerifyOutput(t, out)
			if code != tt.code || o.ReplayStore == nil || len(o.ReplayStore.Masters) != 1 || o.ReplayStore.Masters[0].Policy != tt.policy {
				t.Fatalf("exit %d (want %d), output %+v\n%s", code, tt.code, o, errOut)
			}
			if !strings.Contains(errOut, tt.stderr) || (tt.stderr == "") != (errOut == "") {
				t.Errorf("stderr %q, want %q", errOut, tt.stderr)
			}
			if code == inspect.NotChecked && (o.Reason != "replay_store" || !strings.Contains(errOut, "attestd: hint: Redis may evict") || len(apple.Requests()) > 0 && o.Validated) {
				t.Errorf("policy that may evict: %+v\n%s", o, errOut)
			}
		})
	}
}

// A key file every user can read is used, with a warning naming it and
// its mode; one others can write is refused.
func TestVerifyKeyFilePermissions(t *testing.T) {
	apple, keyFlags := fakeApple(t)
	keyPath := keyFlags[5]
	for _, tt := range []struct {
		mode   os.FileMode
		code   int
		stderr string
	}{
		{0o644, 0, "attestd: warning: " + keyPath + ": key file is readable by every user (mode 0644); chmod 600 " + keyPath},
		{0o664, inspect.NotChecked, "key file is writable by group or others (mode 0664)"},
	} {
		if err := os.Chmod(keyPath, tt.mode); err != nil {
			t.Fatal(err)
		}
		value := encodeValue(t, header.KindDeviceCheck, apple.IssueToken(), time.Now())
		code, out, errOut := runCLI(t, nil, value, append([]string{"verify", "-"}, keyFlags...)...)
		if o := parseVerifyOutput(t, out); code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("mode %v: exit %d, %+v, stderr %q; want exit %d and %q", tt.mode, code, o, errOut, tt.code, tt.stderr)
		}
	}
}
