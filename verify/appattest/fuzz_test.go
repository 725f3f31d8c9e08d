package appattest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

// fuzzNow is when the development seeds are made and checked, so that
// their chain verifies and fuzzing reaches every check.
var fuzzNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fuzzDevKey is a development key with a fixed private key.
func fuzzDevKey(tb testing.TB) *devattest.Key {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return &devattest.Key{AppID: testAppID, Environment: appattest.Production, PrivateKey: k,
		Extensions: map[string]any{appattest.ExtBundleVersion: "1", appattest.ExtValidationCategory: []byte{6, 0, 0, 0}}}
}

// fuzzCase is one set of options an input is verified with: a vector's,
// or the development key's.
type fuzzCase struct {
	opts appattest.AttestationOptions
	key  *appattest.Key
	cdh  []byte
}

func fuzzCases(f *testing.F) (cases []fuzzCase, attestations, assertions [][]byte) {
	for _, v := range loadVectors(f) {
		opts := v.options()
		key, err := appattest.VerifyAttestation(v.Object, opts)
		if err != nil {
			f.Fatal(err)
		}
		c := fuzzCase{opts: opts, key: key, cdh: v.ClientDataHashBytes}
		attestations = append(attestations, v.Object)
		for _, a := range v.Assertions {
			assertions = append(assertions, b64(f, a.Assertion))
			c.cdh = b64(f, a.ClientDataHash)
		}
		cases = append(cases, c)
	}
	dev := fuzzDevKey(f)
	cdh := sha256.Sum256([]byte("fuzz"))
	obj, err := dev.AttestAt(cdh[:], fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	opts := appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: cdh[:], Now: fuzzNow, Roots: []*appattest.Root{devattest.Root()}}
	key, err := appattest.VerifyAttestation(obj, opts)
	if err != nil {
		f.Fatal(err)
	}
	a, err := dev.Assert(cdh[:])
	if err != nil {
		f.Fatal(err)
	}
	cases = append(cases, fuzzCase{opts: opts, key: key, cdh: cdh[:]})
	return cases, append(attestations, obj), append(assertions, a)
}

// measure runs f and returns how many bytes it allocated.
func measure(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// FuzzVerifyAttestation: any bytes, verified with any vector's options,
// never panic, allocate boundedly (parsing and verifying two
// certificates allocates a few hundred kilobytes at most), and are
// either refused with a reason or accepted with a key whose id is
// SHA-256 of its public key.
func FuzzVerifyAttestation(f *testing.F) {
	cases, attestations, _ := fuzzCases(f)
	for i, a := range attestations {
		f.Add(a, uint8(i))
	}
	f.Fuzz(func(t *testing.T, object []byte, sel uint8) {
		c := cases[int(sel)%len(cases)]
		var key *appattest.Key
		var err error
		if n := measure(func() { key, err = appattest.VerifyAttestation(object, c.opts) }); n > 2<<20+64*uint64(len(object)) {
			t.Fatalf("%d bytes allocated for %d input bytes", n, len(object))
		}
		if err != nil {
			if !appattest.Rejected(err) {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		point, perr := key.PublicKey.Bytes()
		sum := sha256.Sum256(point)
		if perr != nil || !bytes.Equal(sum[:], key.ID) || key.Root == "" || key.AppID == "" {
			t.Fatalf("accepted key %+v", key)
		}
	})
}

// FuzzVerifyAssertion: any bytes, verified with any vector's key, never
// panic, allocate boundedly, and are refused with a reason or accepted.
func FuzzVerifyAssertion(f *testing.F) {
	cases, _, assertions := fuzzCases(f)
	for i, a := range assertions {
		for j := range cases {
			f.Add(a, uint8(i+j))
		}
	}
	f.Fuzz(func(t *testing.T, object []byte, sel uint8) {
		c := cases[int(sel)%len(cases)]
		var err error
		if n := measure(func() { _, err = appattest.VerifyAssertion(object, c.key, c.cdh) }); n > 64<<10+64*uint64(len(object)) {
			t.Fatalf("%d bytes allocated for %d input bytes", n, len(object))
		}
		if err != nil && !appattest.Rejected(err) {
			t.Fatalf("not a refusal: %v", err)
		}
	})
}
