package appattestsim_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	vappattest "github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/vmihailenco/msgpack/v5"
)

const appID = "ABCDE12345.dev.attestd.sim"

// regServer speaks the registration protocol (PLAN-WAVE2.md) and checks
// what it is sent for real: attestations with verify/appattest against the
// development root, and, in check, each header's assertion against the
// registered key, with a counter window per key.
type regServer struct {
	*httptest.Server
	events chan event

	mu         sync.Mutex
	challenges map[string][]byte
	keys       map[string]*regKey // by key id, standard base64
	down       bool
}

type regKey struct {
	key    *vappattest.Key
	status string
	window vappattest.Window
}

// event is what the server did: "register" or "check" of a key.
type event struct{ op, keyID, status string }

func newRegServer(t *testing.T) *regServer {
	t.Helper()
	s := &regServer{events: make(chan event, 256), challenges: map[string][]byte{}, keys: map[string]*regKey{}}
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

func (s *regServer) challenge(w http.ResponseWriter, _ *http.Request) {
	b := make([]byte, 32)
	rand.Read(b)
	c := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.challenges[c] = b
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]any{"challenge": c, "expiresInMs": 300000})
}

func (s *regServer) register(w http.ResponseWriter, r *http.Request) {
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
	key, err := vappattest.VerifyAttestation(obj, vappattest.AttestationOptions{AppIDs: []string{appID}, ClientDataHash: cdh[:],
		Environments: []vappattest.Environment{vappattest.Development}, KeyID: rawID, Roots: []*vappattest.Root{devattest.Root()}})
	if err != nil {
		reply(w, http.StatusForbidden, map[string]string{"error": err.Error(), "reason": "bad_attestation"})
		return
	}
	s.mu.Lock()
	code := http.StatusCreated
	if k, ok := s.keys[req.KeyID]; ok && k.status == "active" {
		code = http.StatusOK
	}
	s.keys[req.KeyID] = &regKey{key: key, status: "active"}
	s.mu.Unlock()
	s.events <- event{"register", req.KeyID, "active"}
	reply(w, code, map[string]string{"keyId": req.KeyID, "environment": string(key.Environment), "status": "active"})
}

func (s *regServer) status(w http.ResponseWriter, r *http.Request) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(r.PathValue("id"))
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "reason": "malformed"})
		return
	}
	id := base64.StdEncoding.EncodeToString(raw)
	s.mu.Lock()
	k, ok := s.keys[id]
	st := ""
	if ok {
		st = k.status
	}
	s.mu.Unlock()
	if !ok {
		s.events <- event{"check", id, "unknown"}
		reply(w, http.StatusNotFound, map[string]string{"error": "unknown key", "reason": "unknown_key"})
		return
	}
	s.events <- event{"check", id, st}
	reply(w, http.StatusOK, map[string]string{"keyId": id, "status": st, "environment": string(k.key.Environment)})
}

// expect waits for the server to do op (with status, when not empty) and
// returns the key id it did it for; other events are skipped.
func (s *regServer) expect(t *testing.T, op, status string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-s.events:
			if e.op == op && (status == "" || e.status == status) {
				return e.keyID
			}
		case <-timeout:
			t.Fatalf("the server saw no %s %s", op, status)
		}
	}
}

func (s *regServer) set(f func(s *regServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// aaValue is an "aa" header value's content.
type aaValue struct {
	K string `msgpack:"k"`
	T []byte `msgpack:"t"`
	G int64  `msgpack:"g"`
	B string `msgpack:"b"`
	M string `msgpack:"m"`
	I []byte `msgpack:"i"`
	N []byte `msgpack:"n"`
}

// decodeAA decodes an "aa" header value.
//
// TODO(header aa): header.Decode once bridge/header has the kind.
func decodeAA(value string) (aaValue, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(value, header.Prefix))
	if err != nil || !strings.HasPrefix(value, header.Prefix) {
		return aaValue{}, fmt.Errorf("not a v1. value: %v", err)
	}
	var v aaValue
	if err := msgpack.Unmarshal(raw, &v); err != nil {
		return aaValue{}, err
	}
	if v.K != provider.KindAppAttest || len(v.I) != 32 || len(v.N) != 16 || len(v.T) == 0 {
		return aaValue{}, fmt.Errorf("not an aa value: kind %q, key id %d bytes, nonce %d bytes", v.K, len(v.I), len(v.N))
	}
	return v, nil
}

// clientDataHash is the contract's, written out again from PLAN-WAVE2.md:
// SHA-256("attestd-aa-v1" ‖ key id ‖ g as 8 bytes big-endian Unix ms ‖
// nonce).
func clientDataHash(keyID []byte, g int64, nonce []byte) []byte {
	var b bytes.Buffer
	b.WriteString("attestd-aa-v1")
	b.Write(keyID)
	binary.Write(&b, binary.BigEndian, uint64(g))
	b.Write(nonce)
	h := sha256.Sum256(b.Bytes())
	return h[:]
}

var errNotAA = errors.New("not an App Attest value")

// check verifies a header value as the server side would: an "aa" value
// whose assertion the registered, active key made over the client data of
// its own fields, with a counter not seen before. It returns the key id.
func (s *regServer) check(value string) (string, error) {
	v, err := decodeAA(value)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNotAA, err)
	}
	id := base64.StdEncoding.EncodeToString(v.I)
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok || k.status != "active" {
		return id, fmt.Errorf("key %s is not registered and active", id)
	}
	a, err := vappattest.VerifyAssertion(v.T, k.key, clientDataHash(v.I, v.G, v.N))
	if err != nil {
		return id, err
	}
	if err := k.window.Accept(a.Counter, 0); err != nil {
		return id, err
	}
	return id, nil
}
