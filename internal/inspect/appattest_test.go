package inspect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// aaValue makes key's next App Attest value, generated at g.
func aaValue(t *testing.T, key *devattest.Key, g time.Time) string {
	t.Helper()
	v := header.Value{Kind: header.KindAppAttest, KeyID: key.ID(), Nonce: []byte("0123456789abcdef"), GeneratedAt: g}
	cdh := header.AppAttestClientDataHash(v.KeyID, g, v.Nonce)
	var err error
	if v.Token, err = key.Assert(cdh[:]); err != nil {
		t.Fatal(err)
	}
	s, err := header.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecodeAppAttest(t *testing.T) {
	t.Parallel()
	key, err := devattest.NewKey("TEAMID1234.com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	g := time.UnixMilli(1_700_000_000_000)
	d, err := Decode(aaValue(t, key, g))
	if err != nil {
		t.Fatal(err)
	}
	cdh := header.AppAttestClientDataHash(key.ID(), g, []byte("0123456789abcdef"))
	if d.Kind != "aa" || d.KeyID != base64.StdEncoding.EncodeToString(key.ID()) || d.Nonce != "MDEyMzQ1Njc4OWFiY2RlZg==" ||
		d.ClientDataHash != base64.StdEncoding.EncodeToString(cdh[:]) {
		t.Errorf("decoded %+v", d)
	}
}

// TestCheckAppAttest: without a key store an App Attest value is decoded
// only, with a hint naming --replay-redis; with the key store in Redis
// it is checked as a server would, and its counter used.
func TestCheckAppAttest(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	key, err := devattest.NewKey("TEAMID1234.com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	register(t, srv, key)
	stranger, _ := devattest.NewKey("TEAMID1234.com.example.app")
	first := aaValue(t, key, time.Now())
	cfg := CheckConfig{AllowDev: true, Timeout: 5 * time.Second, ReplayRedis: srv.URL()}
	for _, tc := range []struct {
		name     string
		cfg      CheckConfig
		in       string
		code     int
		reason   string
		hintPart string
	}{
		{"no key store: decoded only", CheckConfig{Timeout: time.Second}, first, NotValidated, "not_validated", "--replay-redis"},
		{"valid", cfg, first, Valid, "", ""},
		{"the same value again", cfg, first, NotValid, "replay", "counter was already accepted"},
		{"development key refused", CheckConfig{Timeout: 5 * time.Second, ReplayRedis: srv.URL()}, aaValue(t, key, time.Now()), NotValid, "dev_key", "--allow-dev"},
		{"unknown key", cfg, aaValue(t, stranger, time.Now()), NotValid, "unknown_key", "registers its key"},
		{"key store down", CheckConfig{AllowDev: true, Timeout: time.Second, ReplayRedis: "redis://127.0.0.1:1"}, aaValue(t, key, time.Now()), NotChecked, "key_store", "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Check(context.Background(), tc.cfg, strings.NewReader(""), tc.in)
			if err != nil {
				t.Fatal(err)
			}
			r := v.Report
			if v.Code != tc.code || r.Reason != tc.reason || r.Kind != "aa" || r.AppAttest == nil || r.AppAttest.KeyID == "" {
				t.Fatalf("verdict %d %+v (%v), want code %d reason %q", v.Code, r, v.Err, tc.code, tc.reason)
			}
			if h := hint.Of(v.Err); !strings.Contains(h, tc.hintPart) {
				t.Errorf("hint %q, want it to contain %q", h, tc.hintPart)
			}
			if tc.code == Valid && (r.AppAttest.Environment != "development" || r.AppAttest.Counter == nil || *r.AppAttest.Counter != 1) {
				t.Errorf("valid, but the report says %+v", r.AppAttest)
			}
		})
	}
}

// register registers key in the key store of srv, as the registration
// handler would after verifying its attestation.
func register(t *testing.T, srv *redistest.Server, key *devattest.Key) {
	t.Helper()
	challenge := sha256.Sum256([]byte("challenge"))
	obj, err := key.Attest(challenge[:])
	if err != nil {
		t.Fatal(err)
	}
	k, err := appattest.VerifyAttestation(obj, appattest.AttestationOptions{AppIDs: []string{key.AppID}, ClientDataHash: challenge[:],
		Environments: []appattest.Environment{appattest.Development}, Roots: []*appattest.Root{devattest.Root()}})
	if err != nil {
		t.Fatal(err)
	}
	replay, err := redisreplay.Open(srv.URL(), redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	if _, _, err := appattestredis.New(replay, appattestredis.Options{}).Register(context.Background(), k, time.Now()); err != nil {
		t.Fatal(err)
	}
}
