package appattest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/internal/clock"
	"github.com/attestd/attestd/bridge/provider"
)

// dcError is an App Attest failure with a DCError code, as darwin's
// errors carry it.
func dcError(code int) error {
	return &provider.Error{Reason: provider.ReasonProviderError, Msg: "fake App Attest", DCCode: code, HasDCCode: true}
}

// fakeService stands in for App Attest: keys are random ids, an
// attestation is "att:" + key id + ":" + hex(clientDataHash), an
// assertion "asr:" + key id + ":" + hex(clientDataHash).
type fakeService struct {
	mu        sync.Mutex
	keys      []string
	attested  int
	asserted  int
	attestErr func(n int) error // the error of attestation n (from 0), if any
	assertErr func(n int) error
	// assertHang makes assertions hang until their context ends.
	assertHang bool
	// invalid keys fail every call with invalidKey.
	invalid map[string]bool
}

func (f *fakeService) GenerateKey(ctx context.Context) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	id := base64.StdEncoding.EncodeToString(b)
	f.mu.Lock()
	f.keys = append(f.keys, id)
	f.mu.Unlock()
	return id, nil
}

func (f *fakeService) AttestKey(ctx context.Context, keyID string, h []byte) ([]byte, error) {
	f.mu.Lock()
	n := f.attested
	f.attested++
	invalid := f.invalid[keyID]
	f.mu.Unlock()
	if invalid {
		return nil, dcError(dcErrorInvalidKey)
	}
	if f.attestErr != nil {
		if err := f.attestErr(n); err != nil {
			return nil, err
		}
	}
	return []byte("att:" + keyID + ":" + hex.EncodeToString(h)), nil
}

func (f *fakeService) GenerateAssertion(ctx context.Context, keyID string, h []byte) ([]byte, error) {
	f.mu.Lock()
	n := f.asserted
	f.asserted++
	invalid, hang := f.invalid[keyID], f.assertHang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, &provider.Error{Reason: provider.ReasonTimeout, Msg: "fake assertion hung", Err: ctx.Err()}
	}
	if invalid {
		return nil, dcError(dcErrorInvalidKey)
	}
	if f.assertErr != nil {
		if err := f.assertErr(n); err != nil {
			return nil, err
		}
	}
	return []byte("asr:" + keyID + ":" + hex.EncodeToString(h)), nil
}

func (f *fakeService) keysMade() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func (f *fakeService) invalidate(keyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.invalid == nil {
		f.invalid = map[string]bool{}
	}
	f.invalid[keyID] = true
}

// memKeys is a KeyStore in memory; getErr and setErr, when set, fail the
// calls.
type memKeys struct {
	mu             sync.Mutex
	id             string
	getErr, setErr error
	sets           int
}

func (m *memKeys) Get(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.getErr != nil {
		return "", m.getErr
	}
	if m.id == "" {
		return "", ErrNoKeyID
	}
	return m.id, nil
}

func (m *memKeys) Set(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets++
	if m.setErr != nil {
		return m.setErr
	}
	m.id = id
	return nil
}

func (m *memKeys) stored() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

func (m *memKeys) set(f func(m *memKeys)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// fakeServer speaks the registration protocol. It checks that an
// attestation was made for the challenge it gave (the fake's format), but
// no signature: the real check is verify/appattest's, in the simulator's
// tests.
type fakeServer struct {
	*httptest.Server
	mu         sync.Mutex
	challenges map[string][]byte
	keys       map[string]string // key id → status
	envs       map[string]string
	// down answers every request with this status (and retryAfter) when
	// not zero.
	down          int
	retryAfter    string
	refuse        string // a 403 with this reason, when set
	registrations int
	checks        int
}

func newFakeServer(t *testing.T) *fakeServer {
	s := &fakeServer{challenges: map[string][]byte{}, keys: map[string]string{}, envs: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /base/appattest/challenge", s.challenge)
	mux.HandleFunc("POST /base/appattest/register", s.register)
	mux.HandleFunc("GET /base/appattest/keys/{id}", s.status)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down, ra := s.down, s.retryAfter
		s.mu.Unlock()
		if down != 0 {
			if ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			http.Error(w, `{"error":"down","reason":"store_down"}`, down)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) base() string { return s.URL + "/base/" }

func (s *fakeServer) challenge(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 32)
	rand.Read(b)
	c := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.challenges[c] = b
	s.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"challenge": c, "expiresInMs": 300000})
}

func (s *fakeServer) register(w http.ResponseWriter, r *http.Request) {
	var req struct{ KeyID, Attestation, Challenge string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad json","reason":"malformed"}`, http.StatusBadRequest)
		return
	}
	att, _ := base64.StdEncoding.DecodeString(req.Attestation)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.challenges[req.Challenge]
	delete(s.challenges, req.Challenge)
	h := sha256.Sum256(ch)
	switch {
	case s.refuse != "":
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]string{"error": "refused", "reason": s.refuse})
		return
	case !ok || string(att) != "att:"+req.KeyID+":"+hex.EncodeToString(h[:]):
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]string{"error": "attestation not for this challenge", "reason": "bad_attestation"})
		return
	}
	code := http.StatusCreated
	if s.keys[req.KeyID] == KeyActive {
		code = http.StatusOK
	}
	s.keys[req.KeyID], s.envs[req.KeyID] = KeyActive, "development"
	s.registrations++
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"keyId": req.KeyID, "environment": "development", "status": KeyActive})
}

func (s *fakeServer) status(w http.ResponseWriter, r *http.Request) {
	raw, err := base64.RawURLEncoding.DecodeString(r.PathValue("id"))
	if err != nil {
		http.Error(w, `{"error":"bad key id","reason":"malformed"}`, http.StatusBadRequest)
		return
	}
	id := base64.StdEncoding.EncodeToString(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	st, ok := s.keys[id]
	if !ok {
		http.Error(w, `{"error":"unknown key","reason":"unknown_key"}`, http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"keyId": id, "status": st, "environment": s.envs[id]})
}

func (s *fakeServer) set(f func(s *fakeServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeServer) counts() (registrations, checks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registrations, s.checks
}

// rig is a provider on a fake clock over the fakes, with a dev fallback.
type rig struct {
	t     *testing.T
	clk   *clock.Fake
	svc   *fakeService
	keys  *memKeys
	srv   *fakeServer
	p     *Provider
	waits chan time.Duration
}

var epoch = time.Date(2026, 9, 14, 9, 0, 0, 0, time.UTC)

func newRig(t *testing.T, change func(c *Config, r *rig)) *rig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewFake(epoch), svc: &fakeService{}, keys: &memKeys{}, srv: newFakeServer(t),
		waits: make(chan time.Duration, 16)}
	cfg := Config{Name: "appattest-test", Start: func() (Service, error) { return r.svc, nil }, Keys: r.keys,
		Server: r.srv.base(), Fallback: provider.Dev{}, Clock: r.clk, Jitter: func() float64 { return 0.5 },
		BackoffMin: time.Second, BackoffMax: time.Minute, CheckEvery: time.Hour}
	if change != nil {
		change(&cfg, r)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.testHookWait = func(d time.Duration) { r.waits <- d }
	r.p = p
	t.Cleanup(func() { p.Close() })
	return r
}

// wait returns the wait the background work chose after its round.
func (r *rig) wait() time.Duration {
	r.t.Helper()
	select {
	case d := <-r.waits:
		return d
	case <-time.After(10 * time.Second):
		r.t.Fatal("the background work did not finish its round")
		return 0
	}
}

// start starts the provider and returns the wait after its first round.
func (r *rig) start() time.Duration {
	r.t.Helper()
	r.p.Start()
	return r.wait()
}

// after moves the clock by d and returns the wait after the round that
// follows.
func (r *rig) after(d time.Duration) time.Duration {
	r.t.Helper()
	r.clk.Advance(d)
	return r.wait()
}

// answer asks for one answer and returns its kind.
func (r *rig) answer() provider.Answer {
	r.t.Helper()
	a, err := r.p.Generate(context.Background())
	if err != nil {
		r.t.Fatalf("Generate: %v", err)
	}
	return a
}

// checkAssertion checks that a is an assertion by key id, made over the
// client data hash of its own key id, g and nonce.
func checkAssertion(t *testing.T, a provider.Answer, keyID string) {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(keyID)
	h := header.AppAttestClientDataHash(raw, a.GeneratedAt, a.Nonce)
	want := "asr:" + keyID + ":" + hex.EncodeToString(h[:])
	if a.Kind != header.KindAppAttest || string(a.Token) != want || string(a.KeyID) != string(raw) || len(a.Nonce) != 16 {
		t.Fatalf("answer %+v; want an assertion by %s", a, keyID)
	}
}

var errLocked = errors.New("the keychain is locked")

// lastErr is the provider's last error.
func (r *rig) lastErr() error {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.p.st.lastErr
}

func sha(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
