package appattest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
)

func keyOf(d *appattesttest.Device) *appattest.Key {
	return &appattest.Key{PublicKey: &d.Key.PublicKey, AppID: d.AppID}
}

func assertion(t testing.TB, a appattesttest.Assertion) []byte {
	t.Helper()
	b, err := a.Issue()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyAssertionAccepts: both shapes verify and give the counter
// and the extensions.
func TestVerifyAssertionAccepts(t *testing.T) {
	t.Parallel()
	d := newDevice(t, appattest.Production)
	old := d.AssertionTemplate(clientDataHash)
	got, err := appattest.VerifyAssertion(assertion(t, old), keyOf(d), clientDataHash)
	if err != nil || got.Counter != 1 || got.Extensions != nil {
		t.Fatalf("pre-2026: %+v, %v", got, err)
	}
	obj, err := d.Assert([]byte("raw challenge, 24 bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = appattest.VerifyAssertion(obj, keyOf(d), []byte("raw challenge, 24 bytes!"))
	if err != nil || got.Counter != 2 {
		t.Fatalf("2026: %+v, %v", got, err)
	}
	if c, ok := got.Extensions.ValidationCategory(); !ok || c != 1 {
		t.Errorf("category %d, %v", c, ok)
	}
	if v, ok := got.Extensions.BundleVersion(); !ok || v != "1" {
		t.Errorf("bundle version %q, %v", v, ok)
	}
	for _, counter := range []uint32{0, 0xffffffff} {
		a := d.AssertionTemplate(clientDataHash)
		a.Counter = counter
		if got, err := appattest.VerifyAssertion(assertion(t, a), keyOf(d), clientDataHash); err != nil || got.Counter != counter {
			t.Errorf("counter %d: %+v, %v", counter, got, err)
		}
	}
}

// TestVerifyAssertionRefuses: for every check, an assertion in which
// only that check fails.
func TestVerifyAssertionRefuses(t *testing.T) {
	t.Parallel()
	d := newDevice(t, appattest.Production)
	other := newKey(t, elliptic.P256())
	good := func() appattesttest.Assertion {
		a := d.AssertionTemplate(clientDataHash)
		a.Flags, a.Extensions = 0xc0, appattesttest.Extensions2026(1, "1")
		return a
	}
	spec := func(edit func(*appattesttest.Assertion)) []byte {
		a := good()
		edit(&a)
		return assertion(t, a)
	}
	goodObject := assertion(t, good())
	sig, ad, err := appattesttest.AssertionParts(goodObject)
	if err != nil {
		t.Fatal(err)
	}
	parts := func(s, a []byte) []byte {
		b, err := appattesttest.AssertionObject(s, a)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	otherHash := sha256.Sum256([]byte("other"))
	otherApp := keyOf(d)
	otherApp.AppID = "ABCDE12345.com.example.other"
	for _, tt := range []struct {
		name   string
		object []byte
		key    *appattest.Key
		cdh    []byte
		want   error
	}{
		{"not CBOR", []byte("hello"), keyOf(d), clientDataHash, appattest.ErrBadFormat},
		{"trailing bytes", append(bytes.Clone(goodObject), 0), keyOf(d), clientDataHash, appattest.ErrBadFormat},
		{"no signature", parts(nil, ad), keyOf(d), clientDataHash, appattest.ErrBadFormat},
		{"no authenticatorData", parts(sig, nil), keyOf(d), clientDataHash, appattest.ErrBadFormat},
		{"too large", parts(sig, make([]byte, appattest.MaxAssertionSize)), keyOf(d), clientDataHash, appattest.ErrBadFormat},
		{"authenticatorData of 36 bytes", spec(func(a *appattesttest.Assertion) { a.RPIDHash, a.Extensions = a.RPIDHash[:31], nil }), keyOf(d), clientDataHash, appattest.ErrBadAuthData},
		{"bytes after the counter that are not a map", spec(func(a *appattesttest.Assertion) { a.Extensions = []byte{0x61, 'x'} }), keyOf(d), clientDataHash, appattest.ErrBadAuthData},
		{"a map and more after the counter", spec(func(a *appattesttest.Assertion) { a.Extensions = append(bytes.Clone(a.Extensions), 0x00) }), keyOf(d), clientDataHash, appattest.ErrBadAuthData},
		{"another app's rpIdHash", spec(func(a *appattesttest.Assertion) { a.RPIDHash = otherHash[:] }), keyOf(d), clientDataHash, appattest.ErrBadAppID},
		{"a key of another app", goodObject, otherApp, clientDataHash, appattest.ErrBadAppID},
		{"signed by another key", spec(func(a *appattesttest.Assertion) { a.Key = other }), keyOf(d), clientDataHash, appattest.ErrBadSignature},
		{"other client data", goodObject, keyOf(d), otherHash[:], appattest.ErrBadSignature},
		{"a bit of the signature", parts(lastBit(bytes.Clone(sig)), ad), keyOf(d), clientDataHash, appattest.ErrBadSignature},
		{"a bit of the authenticatorData", parts(sig, flipBit(ad, 36)), keyOf(d), clientDataHash, appattest.ErrBadSignature},
		{"a raw (r ‖ s) signature", spec(func(a *appattesttest.Assertion) { a.Signature = bytes.Repeat([]byte{1}, 64) }), keyOf(d), clientDataHash, appattest.ErrBadSignature},
		{"signed over the nonce without hashing it again", spec(func(a *appattesttest.Assertion) { a.Signature = signOnce(t, *a) }), keyOf(d), clientDataHash, appattest.ErrBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := appattest.VerifyAssertion(tt.object, tt.key, tt.cdh)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if appattest.Reason(err) == "error" || !appattest.Rejected(err) {
				t.Fatalf("err %v: reason %q", err, appattest.Reason(err))
			}
		})
	}
}

// TestVerifyAssertionMisuse: a key without its public key or App ID is a
// caller's mistake.
func TestVerifyAssertionMisuse(t *testing.T) {
	t.Parallel()
	d := newDevice(t, appattest.Production)
	obj := assertion(t, d.AssertionTemplate(clientDataHash))
	p384 := newKey(t, elliptic.P384())
	for _, key := range []*appattest.Key{nil, {AppID: testAppID}, {PublicKey: &d.Key.PublicKey}, {PublicKey: &p384.PublicKey, AppID: testAppID}} {
		if _, err := appattest.VerifyAssertion(obj, key, clientDataHash); err == nil || appattest.Rejected(err) {
			t.Errorf("key %+v: err = %v, want a usage error", key, err)
		}
	}
}

// signOnce signs SHA-256(authData ‖ clientDataHash) directly, the
// mistake of a client that hashes once: Apple's keys hash the nonce.
func signOnce(t testing.TB, a appattesttest.Assertion) []byte {
	t.Helper()
	h := sha256.New()
	h.Write(a.AuthData())
	h.Write(a.ClientDataHash)
	sig, err := signDigest(a.Key, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func signDigest(k *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, k, digest)
}
