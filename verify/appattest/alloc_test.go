package appattest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
)

// extensionsBomb returns a CBOR map of at most n bytes, well formed and
// within the decoder's limits (64 pairs, 64 elements, 8 levels), whose
// decoding allocates some 60 times its length: text keys, each holding
// an array of up to 60 arrays of 60 empty maps (one byte each, a Go map
// each).
func extensionsBomb(n int) []byte {
	const width = 60
	inner := append([]byte{0x98, width}, make([]byte, width)...) // an array of empty maps
	for i := 2; i < len(inner); i++ {
		inner[i] = 0xa0
	}
	b := []byte{0xb8, 0} // a map of b[1] pairs
	for b[1] < width && len(b)+5+2+len(inner) <= n {
		b = append(b, 0x62, 'a'+b[1]/26, 'a'+b[1]%26, 0x98, 0) // a key, an array of b[at] arrays
		at := len(b) - 1
		for b[at] < width && len(b)+len(inner) <= n {
			b = append(b, inner...)
			b[at]++
		}
		b[1]++
	}
	return b
}

// allocated returns the bytes f allocates, the least of a few runs (a
// collection in another goroutine only adds).
func allocated(f func()) uint64 {
	least := ^uint64(0)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// forgedBound is what checking a forged object of n bytes may allocate:
// a small multiple of its length and a constant for the parsers'
// state, issue 20's bound for anything an attacker can send.
func forgedBound(n int) uint64 { return 4*uint64(n) + 64<<10 }

// A forged object (an assertion not signed by the key, an attestation
// not chained to a given root) whose authenticator data ends in a map
// made to be expensive cost 60 times its length to refuse: the map was
// decoded before the signature or the chain was checked. An attacker who
// knows one registered key id (it is in every header) could send such
// assertions at any rate, and registrations from many addresses. Now the
// bytes are checked to be one well-formed map, and decoded only once
// the object verified.
func TestForgedObjectsAllocateLittle(t *testing.T) {
	d := newDevice(t, appattest.Production)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := d.AssertionTemplate(clientDataHash)
	a.Flags, a.Extensions, a.Key = 0xc0, extensionsBomb(appattest.MaxAssertionSize-200), other
	forged := assertion(t, a)
	var verr error
	got := allocated(func() { _, verr = appattest.VerifyAssertion(forged, keyOf(d), clientDataHash) })
	if appattest.Reason(verr) != "bad_signature" {
		t.Fatalf("the forged assertion: %v, want bad_signature", verr)
	}
	if got > forgedBound(len(forged)) {
		t.Errorf("refusing a forged assertion of %d bytes allocated %d bytes, more than %d", len(forged), got, forgedBound(len(forged)))
	}

	ca, err := appattesttest.NewCA() // not Apple's root
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Template2026(clientDataHash, time.Now())
	spec.Extensions = extensionsBomb(appattest.MaxAttestationSize - 8<<10)
	att, err := ca.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	opts := appattest.AttestationOptions{AppIDs: []string{d.AppID}, ClientDataHash: clientDataHash}
	got = allocated(func() { _, verr = appattest.VerifyAttestation(att, opts) })
	if appattest.Reason(verr) != "bad_chain" {
		t.Fatalf("the forged attestation: %v, want bad_chain", verr)
	}
	if got > forgedBound(len(att)) {
		t.Errorf("refusing a forged attestation of %d bytes allocated %d bytes, more than %d", len(att), got, forgedBound(len(att)))
	}

	// Signed by the key, the same bytes verify, their map decoded.
	a.Key = d.Key
	res, err := appattest.VerifyAssertion(assertion(t, a), keyOf(d), clientDataHash)
	if err != nil || res.Extensions == nil || len(res.Extensions.Values) == 0 {
		t.Fatalf("the signed assertion: %+v, %v", res, err)
	}
}
