package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// The token never leaks through a Result or an Attestation: not in JSON,
// not with any fmt verb, not through log/slog. Each shows the fingerprint.
func TestResultNeverShowsToken(t *testing.T) {
	token := make([]byte, 64)
	rand.Read(token)
	value := mustEncode(t, header.Value{Kind: "dev", Token: token, GeneratedAt: time.Now(), BundleID: "com.example.h"})
	res, err := (&Verifier{AllowDev: true, AllowReplays: true}).Verify(context.Background(), value)
	if err != nil {
		t.Fatal(err)
	}
	fp := header.Fingerprint(value)
	att := res.Attestation

	var outputs []string
	for _, v := range []any{res, *res, att, &att} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %[1]v"} {
			outputs = append(outputs, fmt.Sprintf(verb, v))
		}
		outputs = append(outputs, fmt.Sprint(v), fmt.Sprintln(v))
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
		b, _ = json.Marshal(struct{ V any }{v})
		outputs = append(outputs, string(b))
		for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			var buf bytes.Buffer
			slog.New(newHandler(&buf)).Info("checked", "res", v, slog.Any("any", v))
			outputs = append(outputs, buf.String())
		}
	}
	forms := []string{
		string(token), base64.StdEncoding.EncodeToString(token), base64.RawStdEncoding.EncodeToString(token),
		base64.RawURLEncoding.EncodeToString(token), hex.EncodeToString(token), strings.ToUpper(hex.EncodeToString(token)),
		fmt.Sprint(token), fmt.Sprintf("%#v", token), value,
	}
	for _, out := range outputs {
		for _, f := range forms {
			if strings.Contains(out, f[:24]) {
				t.Fatalf("output reveals the token:\n%s", out)
			}
		}
		if !strings.Contains(out, fp) {
			t.Errorf("output lacks the fingerprint %s:\n%s", fp, out)
		}
	}
	var back map[string]any
	b, _ := json.Marshal(res)
	json.Unmarshal(b, &back)
	if back["valid"] != true || back["fingerprint"] != fp || back["tokenBytes"] != float64(64) || back["kind"] != "dev" || back["bundleId"] != "com.example.h" {
		t.Errorf("JSON %s", b)
	}
}

// AppleChecked means Apple answered about the token: its yes, or its
// "bad device token". Nothing else counts.
func TestAppleCheckedIsHonest(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*harness)
		checked bool
	}{
		{"valid", func(*harness) {}, true},
		{"bad device token", func(h *harness) { h.apple.ValidTokens(func([]byte) bool { return false }) }, true},
		{"503", func(h *harness) { h.apple.Respond(status(503, "")) }, false},
		{"429", func(h *harness) { h.apple.Respond(status(429, "")) }, false},
		{"our key refused", func(h *harness) { h.apple.Respond(status(401, devicechecktest.BodyBadAuthorization)) }, false},
		{"200 with a page", func(h *harness) { h.apple.SetSuccessBody("<html>portal</html>") }, false},
		{"redirect", func(h *harness) { h.apple.Redirect(302) }, false},
		{"400 other than the token", func(h *harness) { h.apple.Respond(status(400, devicechecktest.BodyBadTimestamp)) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, oneAttempt)
			tt.setup(h)
			v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
			res, err := v.Verify(context.Background(), mustEncode(t, header.Value{Kind: "dc", Token: []byte("tok"), GeneratedAt: h.clock.Now()}))
			if res == nil || res.AppleChecked != tt.checked || res.Valid != (err == nil) || (tt.name != "valid") != (err != nil) {
				t.Errorf("Result %v, error %v; want AppleChecked %v", res, err, tt.checked)
			}
		})
	}
}

func status(code int, body string) func(devicechecktest.Request) *devicechecktest.Response {
	return func(devicechecktest.Request) *devicechecktest.Response {
		return &devicechecktest.Response{Status: code, Body: body}
	}
}
