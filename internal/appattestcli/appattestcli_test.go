package appattestcli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

const appID = "TEAMID1234.com.example.app"

// vector is a real iPhone's attestation and assertion (verify/appattest's
// testdata, from veehaitch/devicecheck-appattest), checked at a time
// inside its leaf's three days.
type vector struct {
	AppID          string `json:"app_id"`
	KeyID          string `json:"key_id_b64"`
	ClientDataHash string `json:"client_data_hash_b64"`
	VerifyNow      string `json:"verify_now"`
	Attestation    string `json:"attestation_b64"`
	Assertions     []struct {
		Assertion      string `json:"assertion_b64"`
		ClientDataHash string `json:"client_data_hash_b64"`
	} `json:"assertions"`
}

func realVector(t *testing.T) vector {
	t.Helper()
	b, err := os.ReadFile("../../verify/appattest/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs[0]
}

// files is a directory of test inputs.
type files struct {
	t   *testing.T
	dir string
}

func (f files) write(name string, data []byte) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// devFixture is a development key, its attestation for a challenge and
// its first assertion, in files.
type devFixture struct {
	key                      *devattest.Key
	cdh, assertCDH           []byte
	attestation, assertion   string // files, raw CBOR and URL-safe base64
	root, pubKey, clientData string // files
}

func newDevFixture(t *testing.T) *devFixture {
	f := files{t, t.TempDir()}
	key, err := devattest.NewKey(appID)
	if err != nil {
		t.Fatal(err)
	}
	cd := []byte("the challenge's bytes")
	cdh := sha256.Sum256(cd)
	att, err := key.Attest(cdh[:])
	if err != nil {
		t.Fatal(err)
	}
	acdh := sha256.Sum256([]byte("request"))
	as, err := key.Assert(acdh[:])
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PrivateKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &devFixture{key: key, cdh: cdh[:], assertCDH: acdh[:],
		attestation: f.write("attestation.cbor", att),
		assertion:   f.write("assertion.b64", []byte(base64.RawURLEncoding.EncodeToString(as)+"\n")),
		root:        f.write("dev-root.pem", devattest.RootPEM()),
		pubKey:      f.write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		clientData:  f.write("challenge.bin", cd)}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestReadObject(t *testing.T) {
	t.Parallel()
	f := files{t, t.TempDir()}
	obj := []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0xfb, 0x3e, 0xff}
	for name, content := range map[string]string{
		"raw":                string(obj),
		"std padded":         base64.StdEncoding.EncodeToString(obj) + "\n",
		"std unpadded":       base64.RawStdEncoding.EncodeToString(obj),
		"url padded":         "  " + base64.URLEncoding.EncodeToString(obj),
		"url unpadded, CRLF": base64.RawURLEncoding.EncodeToString(obj) + "\r\n",
	} {
		got, err := ReadObject(nil, f.write("obj", []byte(content)))
		if err != nil || !bytes.Equal(got, obj) {
			t.Errorf("%s: ReadObject = %x, %v", name, got, err)
		}
	}
	if got, err := ReadObject(strings.NewReader(b64(obj)), "-"); err != nil || !bytes.Equal(got, obj) {
		t.Errorf("stdin: %x, %v", got, err)
	}
	for name, path := range map[string]string{
		"empty":     f.write("empty", []byte(" \n")),
		"too large": f.write("large", bytes.Repeat([]byte("A"), MaxInput+1)),
		"missing":   filepath.Join(f.dir, "nothing"),
	} {
		var ue *UsageError
		if _, err := ReadObject(nil, path); !errors.As(err, &ue) {
			t.Errorf("%s: ReadObject = %v, want a usage error", name, err)
		}
	}
}

// TestCheckObject: attestations and assertions of a development key and
// of a real iPhone, and what each refusal reports.
func TestCheckObject(t *testing.T) {
	t.Parallel()
	d := newDevFixture(t)
	v := realVector(t)
	fs := files{t, t.TempDir()}
	realAtt := fs.write("real-att", []byte(v.Attestation))
	realAs := fs.write("real-as", []byte(v.Assertions[0].Assertion))
	dev := func(kind, object string) ObjectArgs {
		return ObjectArgs{Kind: kind, AppIDs: Strings{appID}, ClientDataHash: b64(d.cdh), Roots: Strings{d.root}, Object: object, AfterCounter: -1}
	}
	devAssert := func(edit func(*ObjectArgs)) ObjectArgs {
		a := dev("assertion", d.assertion)
		a.Attestation, a.ClientDataHash = d.attestation, b64(d.assertCDH)
		if edit != nil {
			edit(&a)
		}
		return a
	}
	edit := func(a ObjectArgs, f func(*ObjectArgs)) ObjectArgs { f(&a); return a }
	later := time.Now().Add(devattest.LeafLifetime + time.Hour).UTC().Format(time.RFC3339)
	for _, tt := range []struct {
		name    string
		args    ObjectArgs
		code    int
		reason  string
		hint    string
		counter uint32
	}{
		{"dev attestation", dev("attestation", d.attestation), Valid, "", "", 0},
		{"dev attestation, the challenge file", edit(dev("attestation", d.attestation), func(a *ObjectArgs) { a.ClientDataHash, a.ClientData = "", d.clientData }), Valid, "", "", 0},
		{"dev attestation, another challenge", edit(dev("attestation", d.attestation), func(a *ObjectArgs) { a.ClientDataHash = b64(d.assertCDH) }), NotValid, "bad_nonce", "--client-data", 0},
		{"dev attestation, no --root", edit(dev("attestation", d.attestation), func(a *ObjectArgs) { a.Roots = nil }), NotValid, "bad_chain", "--root", 0},
		{"dev attestation, after its leaf", edit(dev("attestation", d.attestation), func(a *ObjectArgs) { a.At = later }), NotValid, "expired", "--at", 0},
		{"dev attestation, production only", edit(dev("attestation", d.attestation), func(a *ObjectArgs) { a.Environment = "production" }), NotValid, "bad_environment", "--environment", 0},
		{"dev attestation, another app", edit(dev("attestation", d.attestation), func(a *ObjectArgs) { a.AppIDs = Strings{"T.other"} }), NotValid, "bad_app_id", "--app-id", 0},
		{"an assertion given as an attestation", dev("attestation", d.assertion), NotValid, "bad_format", "attestKey", 0},
		{"dev assertion, key from the attestation", devAssert(nil), Valid, "", "", 1},
		{"dev assertion, key from --public-key", devAssert(func(a *ObjectArgs) { a.Attestation, a.PublicKey, a.Roots = "", d.pubKey, nil }), Valid, "", "", 1},
		{"dev assertion, not after counter 1", devAssert(func(a *ObjectArgs) { a.AfterCounter = 1 }), NotValid, "replay", "--after-counter", 1},
		{"dev assertion, after counter 0", devAssert(func(a *ObjectArgs) { a.AfterCounter = 0 }), Valid, "", "", 1},
		{"dev assertion, other client data", devAssert(func(a *ObjectArgs) { a.ClientDataHash = b64(d.cdh) }), NotValid, "bad_signature", "--client-data-hash", 0},
		{"dev assertion, attestation not trusted", devAssert(func(a *ObjectArgs) { a.Roots = nil }), NotChecked, "bad_chain", "--root", 0},
		{"real attestation", ObjectArgs{Kind: "attestation", AppIDs: Strings{v.AppID}, ClientDataHash: v.ClientDataHash, At: v.VerifyNow, Object: realAtt, AfterCounter: -1}, Valid, "", "", 0},
		{"real attestation, today", ObjectArgs{Kind: "attestation", AppIDs: Strings{v.AppID}, ClientDataHash: v.ClientDataHash, Object: realAtt, AfterCounter: -1}, NotValid, "expired", "--at", 0},
		{"real assertion", ObjectArgs{Kind: "assertion", AppIDs: Strings{v.AppID}, ClientDataHash: v.Assertions[0].ClientDataHash, At: v.VerifyNow, Attestation: realAtt, Object: realAs, AfterCounter: -1}, Valid, "", "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckObject(tt.args, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			r := got.Report.(*Report)
			if got.Code != tt.code || r.Reason != tt.reason || r.Valid != (tt.code == Valid) || r.Outcome != outcomes[tt.code] {
				t.Fatalf("code %d, report %+v (%v); want %d, %q", got.Code, r, got.Err, tt.code, tt.reason)
			}
			if h := hint.Of(got.Err); !strings.Contains(h, tt.hint) || (tt.code == Valid) != (got.Err == nil) {
				t.Errorf("hint %q (err %v), want it to name %q", h, got.Err, tt.hint)
			}
			if tt.code == Valid && (r.Counter == nil || *r.Counter != tt.counter || r.KeyID == "") {
				t.Errorf("report %+v, want counter %d and a key id", r, tt.counter)
			}
		})
	}
	// What a development attestation reports.
	got, _ := CheckObject(dev("attestation", d.attestation), nil, time.Now())
	r := got.Report.(*Report)
	if r.KeyID != b64(d.key.ID()) || r.Environment != "development" || r.Root != "development" || r.AppID != appID || r.Leaf == nil || r.KeyPolicy == "" {
		t.Errorf("report %+v", r)
	}
	if got, _ := CheckObject(ObjectArgs{Kind: "attestation", AppIDs: Strings{v.AppID}, ClientDataHash: v.ClientDataHash, At: v.VerifyNow, Object: realAtt, AfterCounter: -1}, nil, time.Now()); got.Report.(*Report).KeyID != v.KeyID {
		t.Errorf("real attestation: key id %s, want %s", got.Report.(*Report).KeyID, v.KeyID)
	}
}

// TestCheckObjectUsage: command lines that cannot be used.
func TestCheckObjectUsage(t *testing.T) {
	t.Parallel()
	d := newDevFixture(t)
	good := ObjectArgs{Kind: "assertion", AppIDs: Strings{appID}, ClientDataHash: "AAAA", Attestation: d.attestation, Object: d.assertion, AfterCounter: -1}
	for name, edit := range map[string]func(*ObjectArgs){
		"no object":                    func(a *ObjectArgs) { a.Object = "" },
		"no App ID":                    func(a *ObjectArgs) { a.AppIDs = nil },
		"two App IDs for an assertion": func(a *ObjectArgs) { a.AppIDs = Strings{appID, appID} },
		"no key":                       func(a *ObjectArgs) { a.Attestation = "" },
		"two keys":                     func(a *ObjectArgs) { a.PublicKey = d.pubKey },
		"--at with --public-key":       func(a *ObjectArgs) { a.Attestation, a.PublicKey, a.At = "", d.pubKey, "2026-01-01T00:00:00Z" },
		"--environment":                func(a *ObjectArgs) { a.Environment = "production" },
		"no client data":               func(a *ObjectArgs) { a.ClientDataHash = "" },
		"both client data":             func(a *ObjectArgs) { a.ClientData = d.root },
		"client data hash not base64":  func(a *ObjectArgs) { a.ClientDataHash = "a b" },
		"a bad --at":                   func(a *ObjectArgs) { a.At = "yesterday" },
		"a bad --root":                 func(a *ObjectArgs) { a.Roots = Strings{d.attestation} },
		"--attestation -":              func(a *ObjectArgs) { a.Attestation = "-" },
		"a public key that is not PEM": func(a *ObjectArgs) { a.Attestation, a.PublicKey = "", d.attestation },
		"--after-counter too large":    func(a *ObjectArgs) { a.AfterCounter = 1 << 32 },
		"an attestation with a key":    func(a *ObjectArgs) { a.Kind = "attestation" },
		"a bad --environment":          func(a *ObjectArgs) { a.Kind, a.Attestation, a.Environment = "attestation", "", "staging" },
	} {
		a := good
		edit(&a)
		var ue *UsageError
		if _, err := CheckObject(a, nil, time.Now()); !errors.As(err, &ue) {
			t.Errorf("%s: CheckObject = %v, want a usage error", name, err)
		}
	}
}

// TestKeys: list, show and revoke on a key store in Redis, and the
// outcomes when the key is unknown or the store is down.
func TestKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	d := newDevFixture(t)
	key, err := appattest.VerifyAttestation(mustRead(t, d.attestation), appattest.AttestationOptions{AppIDs: []string{appID},
		ClientDataHash: d.cdh, Environments: []appattest.Environment{appattest.Development}, Roots: []*appattest.Root{devattest.Root()}})
	if err != nil {
		t.Fatal(err)
	}
	replay, err := redisreplay.Open(srv.URL(), redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	store := appattestredis.New(replay, appattestredis.Options{})
	store.Register(ctx, key, time.Now())
	store.Accept(ctx, key.ID, 7, "check", time.Now())
	cfg := KeysConfig{RedisURL: srv.URL(), Timeout: 5 * time.Second}
	run := func(cfg KeysConfig, args ...string) Verdict {
		t.Helper()
		v, err := RunKeys(ctx, cfg, args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return v
	}
	if v := run(cfg, "list"); v.Code != Valid || len(v.Report.([]*KeyReport)) != 1 || v.Report.([]*KeyReport)[0].KeyID != b64(key.ID) {
		t.Fatalf("list: %d %+v", v.Code, v.Report)
	}
	urlID := base64.RawURLEncoding.EncodeToString(key.ID)
	v := run(cfg, "show", urlID)
	if k := v.Report.(*KeyReport); v.Code != Valid || k.Status != "active" || k.Root != "development" || *k.HighestCounter != 7 || k.ReceiptBytes == 0 {
		t.Fatalf("show: %d %+v", v.Code, v.Report)
	}
	if v := run(cfg, "revoke", b64(key.ID)); v.Code != Valid || v.Report.(*KeyReport).Status != "revoked" || v.Report.(*KeyReport).RevokedAt == "" {
		t.Fatalf("revoke: %d %+v", v.Code, v.Report)
	}
	if v := run(cfg, "show", b64(make([]byte, 32))); v.Code != NotValid || v.Report.(*Report).Reason != "unknown_key" {
		t.Errorf("show an unknown key: %d %+v", v.Code, v.Report)
	}
	down := KeysConfig{RedisURL: "redis://127.0.0.1:1", Timeout: time.Second}
	if v := run(down, "list"); v.Code != NotChecked || !strings.Contains(hint.Of(v.Err), "127.0.0.1:1") {
		t.Errorf("list with Redis down: %d %+v, hint %q", v.Code, v.Report, hint.Of(v.Err))
	}
	for name, args := range map[string][]string{"nothing": nil, "show without id": {"show"}, "list with id": {"list", "x"}, "a bad id": {"show", "x"}, "delete": {"delete", urlID}} {
		var ue *UsageError
		if _, err := RunKeys(ctx, cfg, args); !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if _, err := RunKeys(ctx, KeysConfig{Timeout: time.Second}, []string{"list"}); err == nil {
		t.Errorf("no --replay-redis: no usage error")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := ReadObject(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzReadObject: whatever a file holds, ReadObject gives its bytes back
// as they are, or the base64 they spell (which encodes back to them), or
// a usage error; and a key id is 32 bytes or refused.
func FuzzReadObject(f *testing.F) {
	f.Add([]byte{0xa2, 0x61, 'a', 0x01})
	f.Add([]byte("omlzaWduYXR1cmVYRjBE\n"))
	f.Add([]byte("omlzaWduYXR1cmVYRjBE=="))
	f.Add([]byte("-_-_"))
	f.Add([]byte(" \r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := ReadObject(bytes.NewReader(in), "-")
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ReadObject(%q) = %v, want a usage error", in, err)
			}
			return
		}
		if !bytes.Equal(got, in) {
			s := strings.TrimSpace(string(in))
			encs := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
			ok := false
			for _, e := range encs {
				ok = ok || e.EncodeToString(got) == s
			}
			if !ok {
				t.Fatalf("ReadObject(%q) = %x: neither the input nor its base64", in, got)
			}
		}
		if id, err := ParseKeyID(string(in)); err == nil && len(id) != 32 {
			t.Fatalf("ParseKeyID(%q) = %d bytes", in, len(id))
		}
	})
}

// A key id whose base64url starts with "-" is taken out of the flags;
// flags, values and other key ids stay.
func TestDashKeyIDs(t *testing.T) {
	t.Parallel()
	dash := base64.RawURLEncoding.EncodeToString(append([]byte{0xf8}, make([]byte, 31)...))
	plain := base64.StdEncoding.EncodeToString(make([]byte, 32))
	rest, ids := DashKeyIDs([]string{"revoke", dash, "--replay-redis", "redis://x", "-timeout", "2s", plain, "-" + plain[2:]})
	if strings.Join(rest, " ") != "revoke --replay-redis redis://x -timeout 2s "+plain+" -"+plain[2:] || len(ids) != 1 || ids[0] != dash {
		t.Errorf("DashKeyIDs = %q, %q", rest, ids)
	}
}
