// Package regtest is a registration server for tests of the helper's App
// Attest side: PLAN-WAVE2.md's protocol (challenge, register, key status)
// on a loopback httptest server, which checks attestations for real with
// verify/appattest against the development root, and checks header
// values' assertions against the registered keys with a counter window
// per key. The server side's own registration handlers replace it where a
// test runs the whole path through attestd gate.
package regtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

// Server is the registration server; URL is its base URL.
type Server struct {
	*httptest.Server
	appID  string
	events chan Event

	mu         sync.Mutex
	challenges map[string][]byte
	keys       map[string]*key // by key id, standard base64
	down       bool
}

type key struct {
	key    *appattest.Key
	status string
	window appattest.Window
}

// Event is what the server did: Op "register" or "check" of KeyID
// (standard base64), whose Status is "active", "revoked" or "unknown".
type Event struct{ Op, KeyID, Status string }

// New starts a server that registers development keys of appID; it stops
// when the test ends.
func New(t testing.TB, appID string) *Server {
	t.Helper()
	s := &Server{appID: appID, events: make(chan Event, 1024), challenges: map[string][]byte{}, keys: map[string]*key{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /appattest/challenge", s.challenge)
	mux.HandleFunc("POST /appattest/register", s.register)
	mux.HandleFunc("GET /appattest/keys/{id}", s.status)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			w.Header().Set("Retry-After", "0")
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": "store down", "reason": "store_unavailable"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// event records e; a test that does not wait for events loses none that
// matter (the channel holds 1024).
func (s *Server) event(e Event) {
	select {
	case s.events <- e:
	default:
	}
}

func (s *Server) challenge(w http.ResponseWriter, _ *http.Request) {
	b := make([]byte, 32)
	rand.Read(b)
	c := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.challenges[c] = b
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]any{"challenge": c, "expiresInMs": 300000})
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req struct{ KeyID, Attestation, Challenge string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "reason": "malformed"})
		return
	}
	rawID, err1 := base64.StdEncoding.DecodeString(req.KeyID)
	obj, err2 := base64.StdEncoding.DecodeString(req.Attestation)
	s.mu.Lock()
	ch, ok := s.challenges[req.Challenge]
	delete(s.challenges, req.Challenge)
	s.mu.Unlock()
	if err1 != nil || err2 != nil || !ok {
		reply(w, http.StatusBadRequest, map[string]string{"error": "bad key id, attestation or challenge", "reason": "malformed"})
		return
	}
	cdh := sha256.Sum256(ch)
	k, err := appattest.VerifyAttestation(obj, appattest.AttestationOptions{AppIDs: []string{s.appID}, ClientDataHash: cdh[:],
		Environments: []appattest.Environment{appattest.Development}, KeyID: rawID, Roots: []*appattest.Root{devattest.Root()}})
	if err != nil {
		reply(w, http.StatusForbidden, map[string]string{"error": err.Error(), "reason": "bad_attestation"})
		return
	}
	s.mu.Lock()
	code := http.StatusCreated
	if old, ok := s.keys[req.KeyID]; ok && old.status == "active" {
		code = http.StatusOK
	}
	s.keys[req.KeyID] = &key{key: k, status: "active"}
	s.mu.Unlock()
	s.event(Event{"register", req.KeyID, "active"})
	reply(w, code, map[string]string{"keyId": req.KeyID, "environment": string(k.Environment), "status": "active"})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(r.PathValue("id"))
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "reason": "malformed"})
		return
	}
	id := base64.StdEncoding.EncodeToString(raw)
	s.mu.Lock()
	k, ok := s.keys[id]
	var st, env string
	if ok {
		st, env = k.status, string(k.key.Environment)
	}
	s.mu.Unlock()
	if !ok {
		s.event(Event{"check", id, "unknown"})
		reply(w, http.StatusNotFound, map[string]string{"error": "unknown key", "reason": "unknown_key"})
		return
	}
	s.event(Event{"check", id, st})
	reply(w, http.StatusOK, map[string]string{"keyId": id, "status": st, "environment": env})
}

// Expect waits up to 20 s for the server to do op (with status, when not
// empty) and returns the key id it did it for; other events are skipped.
func (s *Server) Expect(t testing.TB, op, status string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-s.events:
			if e.Op == op && (status == "" || e.Status == status) {
				return e.KeyID
			}
		case <-timeout:
			t.Fatalf("the registration server saw no %s %s", op, status)
			return ""
		}
	}
}

// SetDown makes every request get a 503 (Retry-After: 0) while down.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Revoke revokes the key keyID names.
func (s *Server) Revoke(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[keyID]; ok {
		k.status = "revoked"
	}
}

// Forget loses every key, as a server whose store was emptied.
func (s *Server) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.keys)
}

// Kind returns a header value's kind, or "" when it does not decode.
func Kind(value string) string {
	v, err := header.Decode(value)
	if err != nil {
		return ""
	}
	return v.Kind
}

// Check verifies a header value as the server side would: an "aa" value
// whose assertion the registered, active key made over the client data of
// its own fields, with a counter not accepted before. It returns the key
// id (standard base64).
func (s *Server) Check(value string) (string, error) {
	v, err := header.Decode(value)
	if err != nil {
		return "", err
	}
	if v.Kind != header.KindAppAttest {
		return "", fmt.Errorf("a %q value, not an App Attest one", v.Kind)
	}
	id := base64.StdEncoding.EncodeToString(v.KeyID)
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok || k.status != "active" {
		return id, fmt.Errorf("key %s is not registered and active", id)
	}
	cdh := header.AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce)
	a, err := appattest.VerifyAssertion(v.Token, k.key, cdh[:])
	if err != nil {
		return id, err
	}
	if err := k.window.Accept(a.Counter, 0); err != nil {
		return id, err
	}
	return id, nil
}
