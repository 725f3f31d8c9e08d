package verifyprom

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type downStore struct{}

func (downStore) Add(context.Context, string, string, time.Duration) (bool, error) {
	return false, errors.New("down")
}
func (downStore) Extend(context.Context, string, string, time.Duration) error {
	return errors.New("down")
}
func (downStore) Remove(context.Context, string, string) error { return nil }

// Each kind of event lands in its metric with the labels the package doc
// promises, and the Collector registers cleanly.
func TestCollector(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	apple := devicechecktest.NewServer(&key.PublicKey, "TEAM", "KID")
	defer apple.Close()
	apple.ValidTokens(apple.Issued)
	m := New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)

	client, err := verify.NewClient(verify.Config{TeamID: "TEAM", KeyID: "KID", Key: key, BaseURL: apple.URL, Observer: m, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	v := &verify.Verifier{Client: client, Observer: m, Replays: verify.NewMemoryReplayCache()}
	ctx := context.Background()
	enc := func(tok []byte) string {
		s, err := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: tok, GeneratedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := enc(apple.IssueToken())
	v.Verify(ctx, good)                  // valid
	v.Verify(ctx, good)                  // replay
	v.Verify(ctx, enc([]byte("forged"))) // bad_device_token
	v.Verify(ctx, "v1.!!")               // malformed
	first := true
	apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
		if first {
			first = false
			return &devicechecktest.Response{Status: 503}
		}
		return nil
	})
	v.Verify(ctx, enc(apple.IssueToken())) // 503, retried, valid
	apple.Respond(nil)
	(&verify.Verifier{AllowDev: true, Observer: m, Replays: downStore{}}).Verify(ctx, enc([]byte("x"))) // dc without a client
	dev, _ := header.Encode(header.Value{Kind: header.KindDev, Token: []byte("d"), GeneratedAt: time.Now()})
	(&verify.Verifier{AllowDev: true, Observer: m, Replays: downStore{}}).Verify(ctx, dev) // replay store down

	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"dc", "valid", "none"}, 2},
		{[]string{"dc", "rejected", "replay"}, 1},
		{[]string{"dc", "rejected", "bad_device_token"}, 1},
		{[]string{"none", "rejected", "malformed"}, 1},
		{[]string{"dc", "not_checked", "not_validated"}, 1},
		{[]string{"dev", "not_checked", "replay_store"}, 1},
	} {
		if got := testutil.ToFloat64(m.checks.WithLabelValues(tt.labels...)); got != tt.want {
			t.Errorf("checks%v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	if got := testutil.ToFloat64(m.retries.WithLabelValues("validate_device_token", "apple_unavailable")); got != 1 {
		t.Errorf("retries = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.storeErrors); got != 1 {
		t.Errorf("replay store errors = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m, "attestd_verify_apple_request_duration_seconds"); n != 3 {
		t.Errorf("%d Apple request series, want 3 (200, 400, 503)", n)
	}
	out, err := testutil.CollectAndFormat(m, expfmt.TypeTextPlain, "attestd_verify_apple_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`attestd_verify_apple_request_duration_seconds_count{code="200",op="validate_device_token"} 2`,
		`attestd_verify_apple_request_duration_seconds_count{code="400",op="validate_device_token"} 1`,
		`attestd_verify_apple_request_duration_seconds_count{code="503",op="validate_device_token"} 1`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("exposition lacks %s:\n%s", want, out)
		}
	}
	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// A network failure is an Apple request without a status.
func TestNoAnswerHasCodeNone(t *testing.T) {
	m := New()
	m.ObserveAppleRequest("validate_device_token", 0, time.Second)
	if n := testutil.CollectAndCount(m, "attestd_verify_apple_request_duration_seconds"); n != 1 {
		t.Fatalf("%d series", n)
	}
	out, _ := testutil.CollectAndFormat(m, expfmt.TypeTextPlain, "attestd_verify_apple_request_duration_seconds")
	if !strings.Contains(string(out), `code="none"`) {
		t.Errorf("exposition %s", out)
	}
}

// The code label takes a small, fixed set of values, whatever status an
// upstream (or a proxy, or an impostor) sends: Apple's documented ones,
// a class for the rest.
func TestCodeLabelIsBounded(t *testing.T) {
	m := New()
	for status := -1; status < 1200; status++ {
		m.ObserveAppleRequest("validate_device_token", status, time.Millisecond)
	}
	m.ObserveAppleRequest("validate_device_token", 1<<30, time.Millisecond)
	out, err := testutil.CollectAndFormat(m, expfmt.TypeTextPlain, "attestd_verify_apple_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "attestd_verify_apple_request_duration_seconds_count{") {
			codes = append(codes, line[strings.Index(line, `code="`)+6:strings.Index(line, `",op=`)])
		}
	}
	want := "[1xx 200 2xx 3xx 400 401 403 405 429 4xx 500 503 5xx none other]"
	if got := fmt.Sprint(codes); got != want {
		t.Errorf("code labels %s, want %s", got, want)
	}
	for status, code := range map[int]string{0: "none", 200: "200", 204: "2xx", 302: "3xx", 418: "4xx", 502: "5xx", 503: "503", 999: "other", -1: "other"} {
		if got := codeLabel(status); got != code {
			t.Errorf("codeLabel(%d) = %q, want %q", status, got, code)
		}
	}
}

// App Attest checks are counted under kind "aa", with the reasons of
// package verify and the assertion's checks; the kind label takes only
// the kinds package header defines, and "none".
func TestAppAttestLabels(t *testing.T) {
	m := New()
	keys := &appattest.MemoryKeyStore{}
	dev, err := devattest.NewKey("TEAMID1234.com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	keys.Register(context.Background(), &appattest.Key{ID: dev.ID(), PublicKey: &dev.PrivateKey.PublicKey,
		AppID: "TEAMID1234.com.example.app", Environment: appattest.Production, Root: appattest.AppleRootName}, time.Now())
	v := &verify.Verifier{NoClient: true, Keys: keys, Observer: m}
	value := func(keyID []byte, sign bool) string {
		hv := header.Value{Kind: header.KindAppAttest, KeyID: keyID, Nonce: make([]byte, 16), GeneratedAt: time.Now()}
		cdh := header.AppAttestClientDataHash(hv.KeyID, hv.GeneratedAt, hv.Nonce)
		if !sign {
			cdh[0] ^= 1
		}
		hv.Token, _ = dev.Assert(cdh[:])
		s, err := header.Encode(hv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := value(dev.ID(), true)
	ctx := context.Background()
	v.Verify(ctx, good)
	v.Verify(ctx, good)
	v.Verify(ctx, value(make([]byte, 32), true))
	v.Verify(ctx, value(dev.ID(), false))
	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"aa", "valid", "none"}, 1},
		{[]string{"aa", "rejected", "replay"}, 1},
		{[]string{"aa", "rejected", "unknown_key"}, 1},
		{[]string{"aa", "rejected", "bad_signature"}, 1},
	} {
		if got := testutil.ToFloat64(m.checks.WithLabelValues(tt.labels...)); got != tt.want {
			t.Errorf("checks%v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	for kind, want := range map[string]string{"dc": "dc", "aa": "aa", "dev": "dev", "": "none", "AA": "none", "x\x00": "none"} {
		if got := kindLabel(kind); got != want {
			t.Errorf("kindLabel(%q) = %q, want %q", kind, got, want)
		}
	}
}
