package verify

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

const aaAppID = "TEAMID1234.com.example.app"

// aaDevice is an app's App Attest key (a devattest software key) and the
// record a server keeps of it.
type aaDevice struct {
	key *devattest.Key
	rec *appattest.Key
}

// newAADevice makes a key and registers it in keys as coming from root
// (appattest.AppleRootName: as if Apple had attested it).
func newAADevice(t testing.TB, keys appattest.KeyStore, root string, env appattest.Environment) *aaDevice {
	t.Helper()
	k, err := devattest.NewKey(aaAppID)
	if err != nil {
		t.Fatal(err)
	}
	d := &aaDevice{key: k, rec: &appattest.Key{ID: k.ID(), PublicKey: &k.PrivateKey.PublicKey, AppID: aaAppID,
		Environment: env, Root: root, Receipt: []byte("receipt")}}
	if keys != nil {
		if _, _, err := keys.Register(context.Background(), d.rec, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// value makes the device's next header value, generated at g, as the
// helper does: a fresh nonce, the assertion over the value's
// clientDataHash.
func (d *aaDevice) value(t testing.TB, g time.Time) string {
	t.Helper()
	v := header.Value{Kind: header.KindAppAttest, KeyID: d.key.ID(), Nonce: make([]byte, header.NonceLen), GeneratedAt: g}
	rand.Read(v.Nonce)
	cdh := header.AppAttestClientDataHash(v.KeyID, g, v.Nonce)
	var err error
	if v.Token, err = d.key.Assert(cdh[:]); err != nil {
		t.Fatal(err)
	}
	return mustEncode(t, v)
}

// reencode decodes value, changes it, and encodes it again, keeping the
// assertion.
func reencode(t *testing.T, value string, change func(v *header.Value)) string {
	t.Helper()
	v, err := header.Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	change(&v)
	return mustEncode(t, v)
}

// TestVerifyAppAttest: every outcome of a value of kind "aa", checked
// against a memory key store with no call to Apple.
func TestVerifyAppAttest(t *testing.T) {
	h := newHarness(t, oneAttempt)
	now := h.clock.Now()
	keys := &appattest.MemoryKeyStore{}
	apple := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	dev := newAADevice(t, keys, devattest.RootName, appattest.Development)
	revoked := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	keys.Revoke(context.Background(), revoked.key.ID(), now)
	unknown := newAADevice(t, nil, appattest.AppleRootName, appattest.Production)
	otherApp := newAADevice(t, nil, appattest.AppleRootName, appattest.Production)
	otherApp.rec.AppID = "TEAMID1234.com.example.other"
	keys.Register(context.Background(), otherApp.rec, now)

	first := apple.value(t, now)
	base := Verifier{Client: h.client, Keys: keys, Now: h.clock.Now, Replays: NewMemoryReplayCache()}
	with := func(change func(v *Verifier)) Verifier { v := base; change(&v); return v }
	tests := []struct {
		name   string
		v      Verifier
		in     string
		want   error  // nil: valid
		reason string // Reason(err)
		env    string // Result.Environment
	}{
		{"valid", base, first, nil, "", "production"},
		{"valid in an envelope", base, envelope(apple.value(t, now)), nil, "", "production"},
		{"the same header again", base, first, ErrReplay, "replay", "production"},
		{"the same assertion with another g", base, reencode(t, first, func(v *header.Value) { v.GeneratedAt = now.Add(time.Second) }), ErrAssertion, "bad_signature", "production"},
		{"the same assertion with another nonce", base, reencode(t, first, func(v *header.Value) { v.Nonce[0] ^= 1 }), ErrAssertion, "bad_signature", "production"},
		{"the assertion of another key", base, reencode(t, dev.value(t, now), func(v *header.Value) { v.KeyID = apple.key.ID() }), ErrAssertion, "bad_signature", "production"},
		{"a bit flipped in the signature", base, reencode(t, apple.value(t, now), func(v *header.Value) { v.Token = flipSignature(t, v.Token) }), ErrAssertion, "bad_signature", "production"},
		{"a key registered for another App ID", base, otherApp.value(t, now), ErrAssertion, "bad_app_id", "production"},
		{"unknown key", base, unknown.value(t, now), ErrUnknownKey, "unknown_key", ""},
		{"revoked key", base, revoked.value(t, now), ErrRevokedKey, "revoked_key", "production"},
		{"development key", base, dev.value(t, now), ErrDevKey, "dev_key", "development"},
		{"development key, AllowDev", with(func(v *Verifier) { v.AllowDev = true }), dev.value(t, now), nil, "", "development"},
		{"too old", base, apple.value(t, now.Add(-DefaultMaxAge-time.Millisecond)), ErrTooOld, "too_old", ""},
		{"no generation time", base, apple.value(t, time.Time{}), ErrTooOld, "too_old", ""},
		{"in the future", base, apple.value(t, now.Add(MaxClockSkew+time.Second)), ErrFuture, "future", ""},
		{"no key store", with(func(v *Verifier) { v.Keys = nil }), apple.value(t, now), ErrKindNotAccepted, "kind_not_accepted", ""},
		{"kinds: dc only", with(func(v *Verifier) { v.Kinds = []string{header.KindDeviceCheck} }), apple.value(t, now), ErrKindNotAccepted, "kind_not_accepted", ""},
		{"kinds: aa only, no Client needed", with(func(v *Verifier) { v.Kinds = []string{header.KindAppAttest}; v.Client = nil }), apple.value(t, now), nil, "", "production"},
		{"kinds: aa only refuses dc", with(func(v *Verifier) { v.Kinds = []string{header.KindAppAttest} }),
			mustEncode(t, header.Value{Kind: header.KindDeviceCheck, Token: []byte("genuine"), GeneratedAt: now}), ErrKindNotAccepted, "kind_not_accepted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.apple.Requests())
			res, err := tt.v.Verify(context.Background(), tt.in)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Verify: %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			case tt.reason != "" && Reason(err) != tt.reason:
				t.Errorf("Reason = %q, want %q (%v)", Reason(err), tt.reason, err)
			case err != nil && !Rejected(err):
				t.Errorf("Rejected(%v) = false: a refusal, not a failure to check", err)
			case res == nil || res.Valid != (err == nil) || res.AppleChecked:
				t.Fatalf("Result %+v with error %v", res, err)
			case res.Environment != tt.env:
				t.Errorf("Environment %q, want %q", res.Environment, tt.env)
			case !bytes.Equal(res.KeyID, mustDecode(t, tt.in).KeyID) || res.Kind != mustDecode(t, tt.in).Kind:
				t.Errorf("Result names key %x, kind %q; the value %x", res.KeyID, res.Kind, mustDecode(t, tt.in).KeyID)
			}
			if n := len(h.apple.Requests()) - before; n != 0 {
				t.Errorf("%d calls to Apple, want 0", n)
			}
			if s := res.String(); strings.Contains(s, string(mustDecode(t, tt.in).Token)) {
				t.Errorf("Result prints the assertion: %s", s)
			}
		})
	}
}

// flipSignature flips a bit of an assertion's signature, leaving its
// authenticator data (and counter) as they are.
func flipSignature(t *testing.T, assertion []byte) []byte {
	t.Helper()
	sig, ad, err := appattesttest.AssertionParts(assertion)
	if err != nil {
		t.Fatal(err)
	}
	sig = bytes.Clone(sig)
	sig[len(sig)-1] ^= 1
	out, err := appattesttest.AssertionObject(sig, ad)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustDecode(t *testing.T, s string) header.Value {
	t.Helper()
	a, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return header.Value{Kind: a.Kind, Token: a.Token, KeyID: a.KeyID, Nonce: a.Nonce}
}

// TestAppAttestCounters: requests arrive out of order and each is
// accepted once; a forged assertion with a counter to come does not
// touch the window, so the genuine one still passes; a counter below the
// window is a replay.
func TestAppAttestCounters(t *testing.T) {
	t.Parallel()
	keys := &appattest.MemoryKeyStore{}
	d := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	v := &Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}}
	now := time.Now()
	values := make([]string, 80) // counters 1…80
	for i := range values {
		values[i] = d.value(t, now)
	}
	check := func(i int, want error) {
		t.Helper()
		if _, err := v.Verify(context.Background(), values[i-1]); !errors.Is(err, want) && (want != nil || err != nil) {
			t.Fatalf("counter %d: Verify = %v, want %v", i, err, want)
		}
	}
	for _, i := range []int{3, 1, 2, 5, 4} {
		check(i, nil)
	}
	check(1, ErrReplay)
	forged := reencode(t, values[9], func(v *header.Value) { v.Token = flipSignature(t, v.Token) })
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrAssertion) {
		t.Fatalf("forged counter 10: %v", err)
	}
	check(10, nil)
	check(80, nil)
	check(17, nil) // 63 below 80: the bottom of the window
	check(16, ErrReplay)
	check(6, ErrReplay)
}

// TestAppAttestConcurrentReplay: 100 concurrent uses of one header, on
// one key store: one passes.
func TestAppAttestConcurrentReplay(t *testing.T) {
	t.Parallel()
	keys := &appattest.MemoryKeyStore{}
	d := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	v := &Verifier{NoClient: true, Keys: keys}
	value := d.value(t, time.Now())
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		passed int
	)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), value); err == nil {
				mu.Lock()
				passed++
				mu.Unlock()
			} else if !errors.Is(err, ErrReplay) {
				t.Errorf("Verify: %v", err)
			}
		}()
	}
	wg.Wait()
	if passed != 1 {
		t.Errorf("%d of 100 concurrent uses passed, want 1", passed)
	}
}

// failingKeys is a key store that cannot answer.
type failingKeys struct{ appattest.MemoryKeyStore }

var errStoreDown = errors.New("store down")

func (*failingKeys) Get(context.Context, []byte) (*appattest.KeyRecord, error) {
	return nil, errStoreDown
}

// lostReplyKeys is a key store whose Accept makes the accept and then
// fails, as a shared store whose reply was lost does.
type lostReplyKeys struct{ appattest.MemoryKeyStore }

func (s *lostReplyKeys) Accept(ctx context.Context, id []byte, counter uint32, check string, now time.Time) error {
	if err := s.MemoryKeyStore.Accept(ctx, id, counter, check, now); err != nil {
		return err
	}
	return errStoreDown
}

// TestAppAttestUnknownOutcome: when the key store accepted the counter
// but said so in an error (its reply lost), a check that answers 503
// gives the counter back, so that the client's retry of the header is
// checked again, not refused as a replay; a check whose request may be
// let through (Annotate) leaves it spent.
func TestAppAttestUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		policy          Policy
		code, retryCode int
		reason          string // the retry's, as the next handler sees it
	}{
		{Reject, 503, 200, ""},
		{Annotate, 200, 200, "replay"},
	} {
		lossy := &lostReplyKeys{}
		d := newAADevice(t, lossy, appattest.AppleRootName, appattest.Production)
		value := d.value(t, time.Now())
		replays := NewMemoryReplayCache()
		send := func(keys appattest.KeyStore) (int, error) {
			var got error
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, got = FromContext(r.Context()) })
			v := &Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}, Replays: replays}
			req := httptest.NewRequest("POST", "/", nil)
			req.Header.Set(HeaderName, value)
			rec := httptest.NewRecorder()
			Middleware(next, MiddlewareOptions{Verifier: v, Policy: tt.policy}).ServeHTTP(rec, req)
			return rec.Code, got
		}
		if code, got := send(lossy); code != tt.code || (tt.policy == Annotate && Reason(got) != "key_store") {
			t.Fatalf("policy %d, the reply lost: %d (%v), want %d", tt.policy, code, got, tt.code)
		}
		// The retry reaches the store when it answers.
		if code, got := send(&lossy.MemoryKeyStore); code != tt.retryCode || Reason(got) != tt.reason {
			t.Fatalf("policy %d, the retry: %d (%v), want %d (%q)", tt.policy, code, got, tt.retryCode, tt.reason)
		}
	}
}

// TestAppAttestMiddleware: the status codes of App Attest values through
// the middleware, on a Verifier with no Client that accepts only "aa".
// Under Annotate a check the store could not make spends the token.
func TestAppAttestMiddleware(t *testing.T) {
	t.Parallel()
	keys := &appattest.MemoryKeyStore{}
	d := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	unknown := newAADevice(t, nil, appattest.AppleRootName, appattest.Production)
	now := time.Now()
	good := d.value(t, now)
	down := d.value(t, now)
	dc := mustEncode(t, header.Value{Kind: header.KindDeviceCheck, Token: []byte("tok"), GeneratedAt: now})
	for _, tt := range []struct {
		name   string
		keys   appattest.KeyStore
		in     string
		policy Policy
		code   int
		body   string
	}{
		{"valid", keys, good, Reject, 200, ""},
		{"replayed", keys, good, Reject, 403, `{"error":"attestation_rejected","reason":"replay"}`},
		{"unknown key", keys, unknown.value(t, now), Reject, 403, `{"error":"attestation_rejected","reason":"unknown_key"}`},
		{"a DeviceCheck token", keys, dc, Reject, 403, `{"error":"attestation_rejected","reason":"kind_not_accepted"}`},
		{"store down", &failingKeys{}, down, Reject, 503, `{"error":"attestation_unavailable","reason":"key_store"}`},
		{"store down, Annotate", &failingKeys{}, down, Annotate, 200, ""},
		{"store down, Annotate, again: spent", &failingKeys{}, down, Annotate, 200, "replay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, got = FromContext(r.Context()) })
			v := &Verifier{NoClient: true, Keys: tt.keys, Kinds: []string{header.KindAppAttest}, Replays: sharedReplays}
			mw := Middleware(next, MiddlewareOptions{Verifier: v, Policy: tt.policy})
			req := httptest.NewRequest("POST", "/", nil)
			req.Header.Set(HeaderName, tt.in)
			rec := httptest.NewRecorder()
			mw.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d (%s)", rec.Code, tt.code, rec.Body)
			}
			if tt.policy == Reject && tt.code != 200 && strings.TrimSpace(rec.Body.String()) != tt.body {
				t.Errorf("body %s, want %s", rec.Body, tt.body)
			}
			if tt.policy == Annotate && tt.body != "" && Reason(got) != tt.body {
				t.Errorf("the next handler got %v, want reason %q", got, tt.body)
			}
		})
	}
}

// malleate returns value with its assertion's signature (r, s) made
// (r, n-s), which verifies as well: the same assertion, other bytes.
func malleate(t *testing.T, value string) string {
	t.Helper()
	return reencode(t, value, func(v *header.Value) {
		sig, authData, err := appattesttest.AssertionParts(v.Token)
		if err != nil {
			t.Fatal(err)
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(sig, &rs); err != nil {
			t.Fatal(err)
		}
		rs.S.Sub(elliptic.P256().Params().N, rs.S)
		if sig, err = asn1.Marshal(rs); err != nil {
			t.Fatal(err)
		}
		if v.Token, err = appattesttest.AssertionObject(sig, authData); err != nil {
			t.Fatal(err)
		}
	})
}

// An assertion's bytes can be changed without breaking its signature
// (its ECDSA s for n-s, its CBOR spelled otherwise). When a check the
// key store could not make spent the token for a handler that may admit
// it (Annotate), the record was keyed by those bytes, so the same
// assertion with its signature malleated was not a replay: a handler
// that let key_store failures through admitted it twice. The record is
// now keyed by what the signature covers: the value's clientDataHash.
func TestAppAttestSpendSurvivesMalleation(t *testing.T) {
	t.Parallel()
	keys := &appattest.MemoryKeyStore{}
	d := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	value := d.value(t, time.Now())
	twin := malleate(t, value)
	if twin == value {
		t.Fatal("malleate changed nothing")
	}
	v := &Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}, Replays: NewMemoryReplayCache()}
	if res, err := v.Verify(context.Background(), twin); err != nil || res.Counter != 1 {
		t.Fatalf("the malleated assertion verifies: %+v, %v", res, err)
	}
	down := &Verifier{NoClient: true, Keys: &failingKeys{}, Kinds: []string{header.KindAppAttest}, Replays: NewMemoryReplayCache()}
	var got []string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := FromContext(r.Context())
		got = append(got, Reason(err))
	})
	mw := Middleware(next, MiddlewareOptions{Verifier: down, Policy: Annotate})
	for _, in := range []string{value, twin} {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set(HeaderName, in)
		mw.ServeHTTP(httptest.NewRecorder(), req)
	}
	if len(got) != 2 || got[0] != "key_store" || got[1] != "replay" {
		t.Fatalf("the value, then its twin, under Annotate with the key store down: %q, want key_store then replay", got)
	}
}

// sharedReplays is TestAppAttestMiddleware's replay cache: its cases run
// in order and share it.
var sharedReplays = NewMemoryReplayCache()

// TestAppAttestMiddlewareConfig: a Verifier whose Kinds it cannot check
// is refused when the middleware is made.
func TestAppAttestMiddlewareConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		v     *Verifier
		panic bool
	}{
		{"aa only, keys, no Client", &Verifier{Kinds: []string{"aa"}, Keys: &appattest.MemoryKeyStore{}}, false},
		{"aa listed without keys", &Verifier{Kinds: []string{"aa"}, NoClient: true}, true},
		{"an unknown kind", &Verifier{Kinds: []string{"aa", "AA"}, Keys: &appattest.MemoryKeyStore{}}, true},
		{"dc by default, no Client", &Verifier{Keys: &appattest.MemoryKeyStore{}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); (r != nil) != tt.panic {
					t.Errorf("panic %v, want a panic: %v", r, tt.panic)
				}
			}()
			Middleware(http.NotFoundHandler(), MiddlewareOptions{Verifier: tt.v})
		})
	}
}

// kindObserver records the kinds it is told of.
type kindObserver struct {
	mu    sync.Mutex
	kinds []string
}

func (o *kindObserver) ObserveCheck(error, time.Duration)              { o.ObserveCheckKind("plain", nil, 0) }
func (o *kindObserver) ObserveAppleRequest(string, int, time.Duration) {}
func (o *kindObserver) ObserveRetry(string, error)                     {}
func (o *kindObserver) ObserveReplayStoreError(error)                  {}
func (o *kindObserver) ObserveCheckKind(kind string, _ error, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kinds = append(o.kinds, kind)
}

func TestKindObserver(t *testing.T) {
	t.Parallel()
	keys := &appattest.MemoryKeyStore{}
	d := newAADevice(t, keys, appattest.AppleRootName, appattest.Production)
	o := &kindObserver{}
	v := &Verifier{NoClient: true, Keys: keys, Observer: o}
	v.Verify(context.Background(), d.value(t, time.Now()))
	v.Verify(context.Background(), "v1.x")
	v.Verify(context.Background(), mustEncode(t, header.Value{Kind: header.KindDeviceCheck, Token: []byte("t"), GeneratedAt: time.Now()}))
	if got := strings.Join(o.kinds, ","); got != "aa,,dc" {
		t.Errorf("kinds observed %q, want aa,,dc", got)
	}
}
