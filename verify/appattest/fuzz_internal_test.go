package appattest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"os"
	"runtime"
	"testing"

	"github.com/attestd/attestd/verify/appattest/internal/issuer"
)

// allocBound is how many bytes one parse of n input bytes may allocate:
// a fixed allowance for the decoder's own state plus a small multiple of
// the input. A CBOR header that claims gigabytes must not get them.
func allocBound(n int) uint64 { return 256<<10 + 64*uint64(n) }

// checkAlloc runs f and fails if it allocates more than allocBound(n).
func checkAlloc(t *testing.T, n int, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > allocBound(n) {
		t.Fatalf("%d input bytes allocated %d bytes, more than %d", n, got, allocBound(n))
	}
}

// realAuthData returns the authenticator data of the committed vectors
// (attestations and assertions), as seeds.
func realAuthData(f *testing.F) (attestations, assertions [][]byte) {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var vs []struct {
		Attestation string `json:"attestation_b64"`
		Assertions  []struct {
			Assertion string `json:"assertion_b64"`
		} `json:"assertions"`
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		f.Fatal(err)
	}
	for _, v := range vs {
		raw, _ := base64.StdEncoding.DecodeString(v.Attestation)
		var obj attestationObject
		if err := objectMode.Unmarshal(raw, &obj); err != nil {
			f.Fatal(err)
		}
		attestations = append(attestations, obj.AuthData)
		for _, a := range v.Assertions {
			raw, _ := base64.StdEncoding.DecodeString(a.Assertion)
			var obj assertionObject
			if err := objectMode.Unmarshal(raw, &obj); err != nil {
				f.Fatal(err)
			}
			assertions = append(assertions, obj.AuthenticatorData)
		}
	}
	return attestations, assertions
}

// FuzzAuthData: parsing any bytes as attestation or assertion
// authenticator data never panics, allocates boundedly, and what it
// returns lies within the input: the fixed fields at their offsets, the
// extensions the input's tail.
func FuzzAuthData(f *testing.F) {
	atts, asserts := realAuthData(f)
	for _, b := range append(atts, asserts...) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a, s *authData
		var errA, errS error
		checkAlloc(t, len(b), func() {
			a, errA = parseAttestationAuthData(b)
			s, errS = parseAssertionAuthData(b)
		})
		if errA == nil {
			if !bytes.Equal(a.rpIDHash, b[:32]) || !bytes.Equal(a.aaguid, b[37:53]) || !bytes.Equal(a.credentialID, b[55:87]) || len(a.publicKey) != 65 || a.publicKey[0] != 4 {
				t.Fatalf("attestation authData fields misplaced: %+v", a)
			}
			checkTail(t, b, a.rawExtensions)
		} else if Reason(errA) != "bad_auth_data" {
			t.Fatalf("attestation authData: %v", errA)
		}
		if errS == nil {
			if !bytes.Equal(s.rpIDHash, b[:32]) || s.flags != b[32] {
				t.Fatalf("assertion authData fields misplaced: %+v", s)
			}
			checkTail(t, b, s.rawExtensions)
			if s.rawExtensions == nil && len(b) != 37 {
				t.Fatalf("%d bytes of assertion authData and no extensions", len(b))
			}
		} else if Reason(errS) != "bad_auth_data" {
			t.Fatalf("assertion authData: %v", errS)
		}
	})
}

// checkTail checks that the extensions split off are the tail of b, and
// that decoding them later gives a map or refuses them as bad_auth_data
// within the same allocation bound.
func checkTail(t *testing.T, b, raw []byte) {
	t.Helper()
	if raw != nil && !bytes.HasSuffix(b, raw) {
		t.Fatalf("extensions %x are not the tail of %x", raw, b)
	}
	var e *Extensions
	var err error
	checkAlloc(t, len(raw), func() { e, err = parseExtensions(raw) })
	switch {
	case err != nil && Reason(err) != "bad_auth_data":
		t.Fatalf("extensions %x: %v", raw, err)
	case err == nil && len(raw) > 0 && (e == nil || !bytes.Equal(e.Raw, raw) || e.Values == nil):
		t.Fatalf("extensions %x decoded as %+v", raw, e)
	}
}

// FuzzCOSEKey: parsing any bytes as a COSE key never panics, allocates
// boundedly; a key it accepts re-encodes (in Apple's form) to a key
// that parses to the same point, and the rest is the input's tail.
func FuzzCOSEKey(f *testing.F) {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	cose := issuer.COSEKey(&k.PublicKey)
	f.Add(cose)
	f.Add(append(bytes.Clone(cose), 0xa0))
	atts, _ := realAuthData(f)
	for _, a := range atts {
		f.Add(a[coseKeyAt:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var point, rest []byte
		var err error
		checkAlloc(t, len(b), func() { point, rest, err = parseCOSEKey(b) })
		if err != nil {
			if Reason(err) != "bad_auth_data" {
				t.Fatalf("reason %q: %v", Reason(err), err)
			}
			return
		}
		if !bytes.HasSuffix(b, rest) || len(point) != 65 {
			t.Fatalf("point %x, rest %x of %x", point, rest, b)
		}
		again := append(append(append([]byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}, point[1:33]...), 0x22, 0x58, 0x20), point[33:]...)
		p2, r2, err := parseCOSEKey(again)
		if err != nil || !bytes.Equal(p2, point) || len(r2) != 0 {
			t.Fatalf("re-encoded key: %x, %v", p2, err)
		}
	})
}

// FuzzExtensions: parsing any bytes as the extensions map never panics,
// allocates boundedly, and what it accepts is the whole input, a map.
func FuzzExtensions(f *testing.F) {
	for _, m := range []map[string]any{
		{"apple_bundle_version_01": "1", "apple_validation_category_01": []byte{1, 0, 0, 0}},
		{"apple_cd_hash_hash_01": bytes.Repeat([]byte{0x42}, 32), "apple_cd_hash_type_01": []byte{2}, "apple_validation_category_01": []byte{6, 0, 0, 0}},
		{"nested": map[string]any{"a": []any{1, -2, "x", 1.5, true, nil}}},
	} {
		b, err := issuer.Extensions(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa1, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e *Extensions
		var err error
		checkAlloc(t, len(b), func() { e, err = parseExtensions(b) })
		switch {
		case err != nil && Reason(err) != "bad_auth_data":
			t.Fatalf("reason %q: %v", Reason(err), err)
		case err == nil && len(b) == 0 && e != nil:
			t.Fatal("extensions from nothing")
		case err == nil && len(b) > 0 && (e == nil || !bytes.Equal(e.Raw, b) || e.Values == nil):
			t.Fatalf("extensions %+v of %x", e, b)
		}
		if err == nil {
			e.ValidationCategory()
			e.BundleVersion()
		}
	})
}
