package registration_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/appattest/registration"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const appID = "TEAMID1234.com.example.app"

// server is a Handler and its stores, called in-process.
type server struct {
	h    http.Handler
	keys appattest.KeyStore
}

func newServer(t testing.TB, cfg registration.Config) *server {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = &appattest.MemoryKeyStore{}
	}
	if cfg.Challenges == nil {
		cfg.Challenges = &appattest.MemoryChallengeStore{}
	}
	if cfg.AppIDs == nil {
		cfg.AppIDs = []string{appID}
	}
	if cfg.Roots == nil {
		cfg.Roots = []*appattest.Root{appattest.AppleRoot(), devattest.Root()}
	}
	if cfg.Environments == nil {
		cfg.Environments = []appattest.Environment{appattest.Development, appattest.Production}
	}
	h, err := registration.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &server{h: h, keys: cfg.Keys}
}

// do sends one request and returns the answer's code, body and headers.
func (s *server) do(t testing.TB, method, path, body string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.1:1234"
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec.Code, strings.TrimSpace(rec.Body.String()), rec.Header()
}

// challenge asks for a challenge and returns it.
func (s *server) challenge(t *testing.T) string {
	t.Helper()
	code, body, _ := s.do(t, "POST", "/appattest/challenge", "")
	var c struct {
		Challenge   string `json:"challenge"`
		ExpiresInMs int64  `json:"expiresInMs"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &c) != nil || len(c.Challenge) != 43 || c.ExpiresInMs != 300000 {
		t.Fatalf("challenge: %d %s", code, body)
	}
	return c.Challenge
}

// attestFor makes key's attestation for challenge, as the app does:
// clientDataHash = SHA-256 of the challenge's decoded bytes.
func attestFor(t *testing.T, key *devattest.Key, challenge string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(challenge)
	if err != nil {
		t.Fatal(err)
	}
	cdh := sha256.Sum256(raw)
	obj, err := key.Attest(cdh[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(obj)
}

func registerBody(keyID []byte, attestation, challenge string) string {
	b, _ := json.Marshal(map[string]string{"keyId": base64.StdEncoding.EncodeToString(keyID), "attestation": attestation, "challenge": challenge})
	return string(b)
}

func newDevKey(t testing.TB, env appattest.Environment) *devattest.Key {
	t.Helper()
	k, err := devattest.NewKey(appID)
	if err != nil {
		t.Fatal(err)
	}
	k.Environment = env
	return k
}

// TestRegistration: a key's life through the endpoints, and every answer
// they give, each in a case that changes one thing.
func TestRegistration(t *testing.T) {
	t.Parallel()
	s := newServer(t, registration.Config{Burst: 1000})
	key := newDevKey(t, appattest.Development)
	keyPath := "/appattest/keys/" + base64.RawURLEncoding.EncodeToString(key.ID())

	code, body, _ := s.do(t, "GET", keyPath, "")
	expect(t, "status of a key never registered", code, body, 404, `{"error":"not_found","reason":"unknown_key"}`)
	c := s.challenge(t)
	att := attestFor(t, key, c)
	code, body, _ = s.do(t, "POST", "/appattest/register", registerBody(key.ID()[:31], att, c))
	expect(t, "a malformed registration", code, body, 400, `{"error":"bad_request","reason":"bad_key_id"}`)
	code, body, _ = s.do(t, "POST", "/appattest/register", registerBody(key.ID(), att, c)) // the 400 left the challenge
	want := fmt.Sprintf(`{"keyId":"%s","environment":"development","status":"active"}`, base64.StdEncoding.EncodeToString(key.ID()))
	expect(t, "register", code, body, 201, want)
	code, body, _ = s.do(t, "POST", "/appattest/register", registerBody(key.ID(), att, c))
	expect(t, "the same registration again: its challenge is spent", code, body, 403, `{"error":"registration_refused","reason":"unknown_challenge"}`)
	c = s.challenge(t)
	code, body, _ = s.do(t, "POST", "/appattest/register", registerBody(key.ID(), attestFor(t, key, c), c))
	expect(t, "the same key with a new challenge", code, body, 200, want)
	code, body, _ = s.do(t, "GET", keyPath, "")
	expect(t, "status", code, body, 200, want)
	code, _, _ = s.do(t, "HEAD", keyPath, "")
	expect(t, "HEAD of the status", code, "", 200, "")

	if err := s.keys.Revoke(context.Background(), key.ID(), time.Now()); err != nil {
		t.Fatal(err)
	}
	code, body, _ = s.do(t, "GET", keyPath, "")
	expect(t, "status once revoked", code, body, 200, strings.Replace(want, "active", "revoked", 1))
	c = s.challenge(t)
	code, body, _ = s.do(t, "POST", "/appattest/register", registerBody(key.ID(), attestFor(t, key, c), c))
	expect(t, "a revoked key registered again", code, body, 403, `{"error":"registration_refused","reason":"revoked_key"}`)
}

func expect(t *testing.T, what string, code int, body string, wantCode int, wantBody string) {
	t.Helper()
	if code != wantCode || (wantBody != "" && body != wantBody) {
		t.Errorf("%s: %d %s, want %d %s", what, code, body, wantCode, wantBody)
	}
}

// TestRegisterRefusals: each malformed or refused registration, with the
// answer it gets.
func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	ca, err := appattesttest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	conflicting := newDevKey(t, appattest.Development)
	cfgs := map[string]registration.Config{
		"both":            {},
		"production only": {Environments: []appattest.Environment{appattest.Production}},
		"Apple's root":    {Roots: []*appattest.Root{appattest.AppleRoot()}},
		"another app":     {AppIDs: []string{"TEAMID1234.com.example.other"}},
		"test CA too":     {Roots: []*appattest.Root{devattest.Root(), ca.Root()}},
	}
	servers := map[string]*server{}
	for name, cfg := range cfgs {
		cfg.Burst = 1000
		servers[name] = newServer(t, cfg)
	}
	s := servers["both"]
	c := s.challenge(t)

	dev := newDevKey(t, appattest.Development)
	other := newDevKey(t, appattest.Development)
	type req struct{ server, body string }
	fresh := func(server string, k *devattest.Key) req {
		c := servers[server].challenge(t)
		return req{server, registerBody(k.ID(), attestFor(t, k, c), c)}
	}
	tests := []struct {
		name   string
		req    func() req
		code   int
		reason string
	}{
		{"not JSON", func() req { return req{"both", "keyId="} }, 400, "bad_json"},
		{"a JSON array", func() req { return req{"both", "[]"} }, 400, "bad_json"},
		{"key id not base64", func() req { return req{"both", `{"keyId":"!!","attestation":"AAAA","challenge":"` + c + `"}`} }, 400, "bad_key_id"},
		{"key id of 31 bytes", func() req { return req{"both", registerBody(dev.ID()[:31], "AAAA", c)} }, 400, "bad_key_id"},
		{"key id base64url", func() req {
			return req{"both", `{"keyId":"` + base64.RawURLEncoding.EncodeToString(append([]byte{0xff, 0xfe}, dev.ID()[2:]...)) + `","attestation":"AAAA","challenge":"` + c + `"}`}
		}, 400, "bad_key_id"},
		{"attestation missing", func() req { return req{"both", registerBody(dev.ID(), "", c)} }, 400, "bad_attestation"},
		{"attestation not base64", func() req { return req{"both", registerBody(dev.ID(), "a b", c)} }, 400, "bad_attestation"},
		{"challenge missing", func() req { return req{"both", registerBody(dev.ID(), "AAAA", "")} }, 400, "bad_challenge"},
		{"challenge padded", func() req { return req{"both", registerBody(dev.ID(), "AAAA", c+"=")} }, 400, "bad_challenge"},
		{"challenge of 31 bytes", func() req { return req{"both", registerBody(dev.ID(), "AAAA", c[:42])} }, 400, "bad_challenge"},
		{"too large", func() req {
			return req{"both", `{"attestation":"` + strings.Repeat("A", registration.MaxBodySize) + `"}`}
		}, 400, "too_large"},
		{"a challenge never issued", func() req {
			never := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
			return req{"both", registerBody(dev.ID(), attestFor(t, dev, never), never)}
		}, 403, "unknown_challenge"},
		{"a challenge issued by another server", func() req {
			c := servers["production only"].challenge(t)
			return req{"both", registerBody(dev.ID(), attestFor(t, dev, c), c)}
		}, 403, "unknown_challenge"},
		{"attested for another challenge", func() req {
			c, c2 := s.challenge(t), s.challenge(t)
			return req{"both", registerBody(dev.ID(), attestFor(t, dev, c2), c)}
		}, 403, "bad_nonce"},
		{"another key's attestation", func() req {
			r := fresh("both", other)
			r.body = strings.Replace(r.body, base64.StdEncoding.EncodeToString(other.ID()), base64.StdEncoding.EncodeToString(dev.ID()), 1)
			return r
		}, 403, "bad_key_id"},
		{"not an attestation", func() req { return req{"both", registerBody(dev.ID(), "oA==", s.challenge(t))} }, 403, "bad_format"},
		{"development key, production only", func() req { return fresh("production only", dev) }, 403, "bad_environment"},
		{"development root not trusted", func() req { return fresh("Apple's root", dev) }, 403, "bad_chain"},
		{"another App ID", func() req { return fresh("another app", dev) }, 403, "bad_app_id"},
		{"registered from another root", func() req {
			return req{"test CA too", conflictingBody(t, servers["test CA too"], ca, conflicting)}
		}, 403, "key_conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			code, body, _ := servers[r.server].do(t, "POST", "/appattest/register", r.body)
			errName := map[int]string{400: "bad_request", 403: "registration_refused"}[tt.code]
			expect(t, tt.name, code, body, tt.code, fmt.Sprintf(`{"error":"%s","reason":"%s"}`, errName, tt.reason))
		})
	}
}

// conflictingBody registers key on s from the development root, then
// returns a registration of the same key id certified by another CA.
func conflictingBody(t *testing.T, s *server, ca *appattesttest.CA, key *devattest.Key) string {
	t.Helper()
	c := s.challenge(t)
	if code, body, _ := s.do(t, "POST", "/appattest/register", registerBody(key.ID(), attestFor(t, key, c), c)); code != 201 {
		t.Fatalf("setup: %d %s", code, body)
	}
	c = s.challenge(t)
	raw, _ := base64.RawURLEncoding.DecodeString(c)
	cdh := sha256.Sum256(raw)
	obj, err := ca.Attest(&appattesttest.Device{Key: key.PrivateKey, AppID: appID, Environment: appattest.Development}, cdh[:])
	if err != nil {
		t.Fatal(err)
	}
	return registerBody(key.ID(), base64.StdEncoding.EncodeToString(obj), c)
}

// TestRoutes: paths, methods and prefixes.
func TestRoutes(t *testing.T) {
	t.Parallel()
	s := newServer(t, registration.Config{Prefix: "/base", Burst: 1000})
	for _, tt := range []struct {
		method, path string
		code         int
		body, allow  string
	}{
		{"POST", "/base/appattest/challenge", 200, "", ""},
		{"POST", "/appattest/challenge", 404, `{"error":"not_found","reason":"no_such_endpoint"}`, ""},
		{"POST", "/base/appattest/nothing", 404, `{"error":"not_found","reason":"no_such_endpoint"}`, ""},
		{"GET", "/base/appattest/keys/a/b", 404, `{"error":"not_found","reason":"no_such_endpoint"}`, ""},
		{"GET", "/base/appattest/challenge", 405, `{"error":"method_not_allowed","reason":"use_post"}`, "POST"},
		{"PUT", "/base/appattest/register", 405, `{"error":"method_not_allowed","reason":"use_post"}`, "POST"},
		{"POST", "/base/appattest/keys/x", 405, `{"error":"method_not_allowed","reason":"use_get"}`, "GET"},
		{"GET", "/base/appattest/keys/notakeyid", 400, `{"error":"bad_request","reason":"bad_key_id"}`, ""},
		{"GET", "/base/appattest/keys/" + base64.StdEncoding.EncodeToString(make([]byte, 32)), 400, `{"error":"bad_request","reason":"bad_key_id"}`, ""},
		{"GET", "/base/appattest/keys/" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), 404, `{"error":"not_found","reason":"unknown_key"}`, ""},
	} {
		code, body, h := s.do(t, tt.method, tt.path, "")
		expect(t, tt.method+" "+tt.path, code, body, tt.code, tt.body)
		if h.Get("Allow") != tt.allow || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: headers %v", tt.method, tt.path, h)
		}
	}
	for _, bad := range []string{"base", "/base/"} {
		if _, err := registration.NewHandler(registration.Config{Keys: &appattest.MemoryKeyStore{}, Challenges: &appattest.MemoryChallengeStore{}, AppIDs: []string{appID}, Prefix: bad}); err == nil {
			t.Errorf("Prefix %q accepted", bad)
		}
	}
	for name, cfg := range map[string]registration.Config{
		"no stores":           {AppIDs: []string{appID}},
		"no App ID":           {Keys: &appattest.MemoryKeyStore{}, Challenges: &appattest.MemoryChallengeStore{}},
		"unknown environment": {Keys: &appattest.MemoryKeyStore{}, Challenges: &appattest.MemoryChallengeStore{}, AppIDs: []string{appID}, Environments: []appattest.Environment{"staging"}},
		"a root without name": {Keys: &appattest.MemoryKeyStore{}, Challenges: &appattest.MemoryChallengeStore{}, AppIDs: []string{appID}, Roots: []*appattest.Root{{Certificate: appattest.AppleRoot().Certificate}}},
	} {
		if _, err := registration.NewHandler(cfg); err == nil {
			t.Errorf("%s: NewHandler accepted it", name)
		}
	}
}

// TestRateLimit: each client has its own bucket; past it, 429 with
// Retry-After, while another client still gets through; the bucket
// refills with time.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	s := newServer(t, registration.Config{Rate: 0.5, Burst: 3, Now: func() time.Time { return time.Unix(0, now.Load()) },
		Client: func(r *http.Request) string { return r.Header.Get("X-Client") }})
	do := func(client string) (int, string, http.Header) {
		req := httptest.NewRequest("POST", "/appattest/challenge", nil)
		req.Header.Set("X-Client", client)
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String()), rec.Header()
	}
	for i := range 3 {
		if code, body, _ := do("flood"); code != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, code, body)
		}
	}
	code, body, h := do("flood")
	expect(t, "past the burst", code, body, 429, `{"error":"rate_limited","reason":"rate_limited"}`)
	if h.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2 (a token every 2 s)", h.Get("Retry-After"))
	}
	if code, _, _ := do("someone else"); code != 200 {
		t.Errorf("another client: %d, want 200", code)
	}
	now.Add(int64(2 * time.Second))
	if code, _, _ := do("flood"); code != 200 {
		t.Errorf("after 2 s: %d, want 200", code)
	}
}

// downChallenges and downKeys are stores that fail.
type downChallenges struct{}

var errDown = errors.New("down")

func (downChallenges) Put(context.Context, string, time.Duration) error { return errDown }
func (downChallenges) Take(context.Context, string) (bool, error)       { return false, errDown }

type downKeys struct{ appattest.MemoryKeyStore }

func (*downKeys) Register(context.Context, *appattest.Key, time.Time) (*appattest.KeyRecord, bool, error) {
	return nil, false, errDown
}
func (*downKeys) Get(context.Context, []byte) (*appattest.KeyRecord, error) { return nil, errDown }

// TestStoresDown: a store that fails is 503 with Retry-After, never a
// refusal or a registration.
func TestStoresDown(t *testing.T) {
	t.Parallel()
	dev := newDevKey(t, appattest.Development)
	down := newServer(t, registration.Config{Challenges: downChallenges{}, Burst: 100})
	challenges := &appattest.MemoryChallengeStore{}
	keysDown := newServer(t, registration.Config{Keys: &downKeys{}, Challenges: challenges, Burst: 100})
	c := keysDown.challenge(t)
	for _, tt := range []struct {
		name         string
		s            *server
		method, path string
		body         string
	}{
		{"challenge, challenge store down", down, "POST", "/appattest/challenge", ""},
		{"register, challenge store down", down, "POST", "/appattest/register", registerBody(dev.ID(), attestFor(t, dev, c), c)},
		{"register, key store down", keysDown, "POST", "/appattest/register", registerBody(dev.ID(), attestFor(t, dev, c), c)},
		{"status, key store down", keysDown, "GET", "/appattest/keys/" + base64.RawURLEncoding.EncodeToString(dev.ID()), ""},
	} {
		code, body, h := tt.s.do(t, tt.method, tt.path, tt.body)
		expect(t, tt.name, code, body, 503, `{"error":"unavailable","reason":"store"}`)
		if h.Get("Retry-After") != "1" {
			t.Errorf("%s: Retry-After %q", tt.name, h.Get("Retry-After"))
		}
	}
}
