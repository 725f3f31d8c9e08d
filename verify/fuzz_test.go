package verify

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

// FuzzParseRetryAfter: any header value gives a wait in [0, 24 h], and a
// date in the past gives none.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "7", "-1", "99999999999999999999", "Sun, 01 Mar 2026 12:00:30 GMT", "Sunday, 01-Mar-26 12:00:30 GMT", "Sun Mar  1 12:00:30 2026", "1.5", " 3 "} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d := parseRetryAfter(s, now)
		if d < 0 || (d > 24*time.Hour && !strings.ContainsAny(s, ",:")) {
			t.Fatalf("parseRetryAfter(%q) = %v", s, d)
		}
	})
}

// FuzzEnvironmentURL: whatever is accepted is https, or http to loopback,
// with no query, fragment or credentials, and accepting it again gives
// the same URL.
func FuzzEnvironmentURL(f *testing.F) {
	for _, s := range []string{"production", "development", "http://127.0.0.1:8080/", "https://proxy.example/apple", "http://10.0.0.1", "https://u:p@x/", "https://x/?q", "https://x/#f", "http://[::1]/", "http://localhost"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := EnvironmentURL(s)
		if err != nil {
			return
		}
		u, perr := url.Parse(out)
		if perr != nil {
			t.Fatalf("EnvironmentURL(%q) = %q, which does not parse: %v", s, out, perr)
		}
		if !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("EnvironmentURL(%q) = %q", s, out)
		}
		if again, err := EnvironmentURL(out); err != nil || again != out {
			t.Fatalf("EnvironmentURL(%q) = %q, then %q, %v", s, out, again, err)
		}
	})
}

// FuzzScrub: what goes into an error is short, valid where the input was,
// and holds no opaque run and no long token.
func FuzzScrub(f *testing.F) {
	f.Add([]byte("Missing or incorrectly formatted device token payload"), []byte("tok"))
	f.Add([]byte(`{"device_token":"`+strings.Repeat("QUJD", 20)+`"}`), []byte("0123456789abcdef0123"))
	f.Add(bytes.Repeat([]byte("x"), 2000), []byte{})
	f.Fuzz(func(t *testing.T, body, token []byte) {
		out := scrub(body, token)
		if len(out) > maxErrorBody+len("…") {
			t.Fatalf("scrub gave %d bytes", len(out))
		}
		if opaqueRun.MatchString(out) {
			t.Fatalf("scrub left an opaque run: %q", out)
		}
		if len(token) >= 16 && bytes.Contains([]byte(out), token) {
			t.Fatalf("scrub left the token: %q", out)
		}
		if utf8.Valid(body) && !utf8.ValidString(out) {
			t.Fatalf("scrub broke UTF-8: %q", out)
		}
	})
}

// FuzzVerifyAppAttest: whatever value arrives, a Verifier with one
// registered App Attest key admits only what that key signed (the key
// id, g and nonce of a genuine value: nobody else can sign), and every
// refusal has a reason of the fixed set (never "error": the memory
// store does not fail).
func FuzzVerifyAppAttest(f *testing.F) {
	dev, err := devattest.NewKey("TEAMID1234.com.example.app")
	if err != nil {
		f.Fatal(err)
	}
	rec := &appattest.Key{ID: dev.ID(), PublicKey: &dev.PrivateKey.PublicKey, AppID: "TEAMID1234.com.example.app",
		Environment: appattest.Production, Root: appattest.AppleRootName}
	genuine := map[string]bool{}
	for i := range 3 {
		v := header.Value{Kind: header.KindAppAttest, KeyID: dev.ID(), Nonce: bytes.Repeat([]byte{byte(i)}, 16), GeneratedAt: time.UnixMilli(int64(1e12 + i))}
		cdh := header.AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce)
		if v.Token, err = dev.Assert(cdh[:]); err != nil {
			f.Fatal(err)
		}
		s, err := header.Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		genuine[string(cdh[:])] = true
		f.Add(s)
		f.Add(envelope(s))
	}
	f.Add("v1.h6FromFhoXTEAf-hacQgAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-hbsQQoKGio6SlpqeoqaqrrK2ur6FnAKFioKFtoA")
	f.Fuzz(func(t *testing.T, s string) {
		keys := &appattest.MemoryKeyStore{}
		if _, _, err := keys.Register(context.Background(), rec, time.Now()); err != nil {
			t.Fatal(err)
		}
		v := &Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}, MaxAge: -1, AllowReplays: true}
		res, err := v.Verify(context.Background(), s)
		if err != nil {
			if r := Reason(err); r == "error" || r == "" {
				t.Fatalf("Verify(%q) = %v, reason %q", s, err, r)
			}
			return
		}
		cdh := header.AppAttestClientDataHash(res.KeyID, res.GeneratedAt, res.Nonce)
		if !genuine[string(cdh[:])] || !res.Valid {
			t.Fatalf("Verify(%q) admitted a value the key did not sign: %v", s, res)
		}
	})
}
