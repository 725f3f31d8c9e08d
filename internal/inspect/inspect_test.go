package inspect

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify"
)

func devValue(t testing.TB, at time.Time) string {
	t.Helper()
	v, err := header.Encode(header.Value{Kind: header.KindDev, Token: []byte("0123456789abcdef"), GeneratedAt: at, BundleID: "com.example.h", TeamID: "ABCDE12345"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecode(t *testing.T) {
	t.Parallel()
	value := devValue(t, time.UnixMilli(1_700_000_000_000))
	for _, tc := range []struct {
		name, in   string
		wantKind   string
		wantStatus string
		wantErr    error
	}{
		{name: "value", in: value, wantKind: header.KindDev},
		{name: "white space around", in: "\n  " + value + " \n", wantKind: header.KindDev},
		{name: "envelope", in: `{"v":1,"s":0,"t":"` + value + `"}`, wantKind: header.KindDev, wantStatus: "ok"},
		{name: "envelope without a token", in: `{"v":1,"s":1}`, wantStatus: "timeout"},
		{name: "empty", in: " \n", wantErr: ErrEmpty},
		{name: "garbage", in: "v1.!!!", wantErr: header.ErrBase64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Decode = %+v, %v; want %v", d, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind != tc.wantKind {
				t.Errorf("kind %q, want %q", d.Kind, tc.wantKind)
			}
			if tc.wantStatus != "" && (d.Envelope == nil || d.Envelope.StatusName != tc.wantStatus) {
				t.Errorf("envelope %+v, want status %s", d.Envelope, tc.wantStatus)
			}
			if d.Kind != "" && (d.Fingerprint != header.Fingerprint(value) || d.TokenBytes != 16 || d.GeneratedAt != "2023-11-14T22:13:20Z") {
				t.Errorf("decoded %+v", d)
			}
		})
	}
}

func TestReadValue(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxInput+1)
	for _, tc := range []struct {
		name, arg, stdin, want string
		wantErr                error
	}{
		{name: "argument", arg: "v1.abc", want: "v1.abc"},
		{name: "stdin", arg: "-", stdin: "v1.abc\n", want: "v1.abc\n"},
		{name: "stdin without dash", stdin: "v1.abc", want: "v1.abc"},
		{name: "argument at the limit", arg: long[:MaxInput], want: long[:MaxInput]},
		{name: "argument too long", arg: long, wantErr: ErrInputTooLong},
		{name: "stdin too long", stdin: long, wantErr: ErrInputTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadValue(strings.NewReader(tc.stdin), tc.arg)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("ReadValue = %.20q, %v; want %.20q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestTrimHeaderName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"v1.abc":                           "v1.abc",
		"  v1.abc \n":                      "v1.abc",
		"x-oai-attestation: v1.abc":        "v1.abc",
		"X-Oai-Attestation:{\"v\":1}":      "{\"v\":1}",
		"authorization: v1.abc":            "authorization: v1.abc",
		`{"v":1,"s":0,"t":"v1.a:b"}`:       `{"v":1,"s":0,"t":"v1.a:b"}`,
		" x-oai-attestation :  v1.abc   ":  "v1.abc",
		"x-oai-attestation-other: v1.abc ": "x-oai-attestation-other: v1.abc",
	} {
		if got := TrimHeaderName(in); got != want {
			t.Errorf("TrimHeaderName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheckLocally: without Apple a check decodes and applies the policy,
// and ends in the exit status and hint "attestd verify" reports.
func TestCheckLocally(t *testing.T) {
	t.Parallel()
	fresh := devValue(t, time.Now())
	for _, tc := range []struct {
		name     string
		cfg      CheckConfig
		in       string
		code     int
		reason   string
		hintPart string
	}{
		{"dev allowed: decoded only", CheckConfig{AllowDev: true, Timeout: time.Second}, fresh, NotValidated, "not_validated", ""},
		{"dev refused", CheckConfig{Timeout: time.Second}, fresh, NotValid, "dev_token", "--allow-dev"},
		{"too old", CheckConfig{AllowDev: true, MaxAge: time.Minute, Timeout: time.Second}, devValue(t, time.Now().Add(-time.Hour)), NotValid, "too_old", "raise --max-age"},
		{"no limit", CheckConfig{AllowDev: true, Timeout: time.Second}, devValue(t, time.Now().Add(-time.Hour)), NotValidated, "not_validated", ""},
		{"malformed", CheckConfig{AllowDev: true, Timeout: time.Second}, "v1.%%%", NotValid, "malformed", "x-oai-attestation"},
		{"too long", CheckConfig{AllowDev: true, Timeout: time.Second}, strings.Repeat("v", MaxInput+1), NotValid, "malformed", "at most 9472 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Check(context.Background(), tc.cfg, strings.NewReader(""), tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if v.Code != tc.code || v.Report.Reason != tc.reason || v.Report.Outcome != Outcome(tc.code) || v.Report.Valid {
				t.Errorf("verdict %d %+v, want code %d reason %s", v.Code, v.Report, tc.code, tc.reason)
			}
			if h := hint.Of(v.Err); !strings.Contains(h, tc.hintPart) {
				t.Errorf("hint %q, want it to contain %q", h, tc.hintPart)
			}
			if strings.Contains(v.Report.Error+v.Report.Fingerprint, "0123456789abcdef") {
				t.Errorf("the report carries the token: %+v", v.Report)
			}
		})
	}
}

func TestCheckRefusesABadReplayURL(t *testing.T) {
	t.Parallel()
	_, err := Check(context.Background(), CheckConfig{ReplayRedis: "ftp://nowhere", Timeout: time.Second, Apple: &Apple{}}, strings.NewReader(""), "v1.x")
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--replay-redis") {
		t.Errorf("Check = %v, want a *ConfigError naming --replay-redis", err)
	}
}

func TestHintNamesNoPassword(t *testing.T) {
	t.Parallel()
	h := Hint(verify.ErrReplayStore, "redis://:s3cret@127.0.0.1:6379/0")
	if strings.Contains(h, "s3cret") || !strings.Contains(h, "redis://:xxxxx@127.0.0.1:6379/0") {
		t.Errorf("Hint = %q", h)
	}
	if h := Hint(errors.New("something else"), ""); h != "" {
		t.Errorf("Hint of an unknown error = %q, want none", h)
	}
}

// FuzzDecode: whatever is pasted, Decode and TrimHeaderName neither panic
// nor show a value that header.Decode would refuse.
func FuzzDecode(f *testing.F) {
	f.Add(devValue(f, time.UnixMilli(1_700_000_000_000)))
	f.Add(`{"v":1,"s":0,"t":"v1.AA"}`)
	f.Add("x-oai-attestation: v1.")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := Decode(TrimHeaderName(in))
		if err == nil && d.Kind != "" {
			if _, err := header.Decode(strings.TrimSpace(TrimHeaderName(in))); err != nil && d.Envelope == nil {
				t.Fatalf("Decode showed %+v for a value header.Decode refuses: %v", d, err)
			}
		}
	})
}
