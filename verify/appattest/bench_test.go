package appattest_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
)

// benchAssertions returns a device's key and assertions in both shapes
// (2026: flags AT and ED and an extensions map; before: 37 bytes of
// authenticator data), with the baseline's digest and signature: a
// bare ECDSA P-256 verification of a SHA-256 digest, DER signature.
func benchAssertions(b *testing.B) (key *appattest.Key, shape2026, shapeOld []byte, digest, sig []byte) {
	d := newDevice(b, appattest.Production)
	key = keyOf(d)
	var err error
	if shape2026, err = d.Assert(clientDataHash); err != nil {
		b.Fatal(err)
	}
	if shapeOld, err = d.AssertionTemplate(clientDataHash).Issue(); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("baseline"))
	if sig, err = ecdsa.SignASN1(rand.Reader, d.Key, sum[:]); err != nil {
		b.Fatal(err)
	}
	return key, shape2026, shapeOld, sum[:], sig
}

// BenchmarkVerifyAssertion: one assertion check against the floor, a
// bare ecdsa.VerifyASN1 with P-256, each in its own sub-benchmark.
// BenchmarkAssertionRatio measures the ratio in one interleaved run.
//
//	go test -run '^$' -bench . ./verify/appattest/
func BenchmarkVerifyAssertion(b *testing.B) {
	key, shape2026, shapeOld, digest, sig := benchAssertions(b)
	b.Run("baseline=ecdsa.VerifyASN1", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(key.PublicKey, digest, sig) {
				b.Fatal("baseline signature")
			}
		}
	})
	for _, tt := range []struct {
		name   string
		object []byte
	}{{"2026", shape2026}, {"pre-2026", shapeOld}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := appattest.VerifyAssertion(tt.object, key, clientDataHash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAssertionRatio runs batches of VerifyAssertion (2026 shape)
// and of the bare verification alternately, timing each, so both see
// the same machine load, and reports their ratio as "x-ecdsa" (the aim:
// at most 1.3).
func BenchmarkAssertionRatio(b *testing.B) {
	key, shape2026, _, digest, sig := benchAssertions(b)
	const batch = 32
	var bare, full time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		for range batch {
			ecdsa.VerifyASN1(key.PublicKey, digest, sig)
		}
		mid := time.Now()
		for range batch {
			if _, err := appattest.VerifyAssertion(shape2026, key, clientDataHash); err != nil {
				b.Fatal(err)
			}
		}
		bare += mid.Sub(start)
		full += time.Since(mid)
		n += batch
	}
	b.ReportMetric(float64(bare.Nanoseconds())/float64(n), "ns/ecdsa")
	b.ReportMetric(float64(full.Nanoseconds())/float64(n), "ns/assertion")
	b.ReportMetric(float64(full)/float64(bare), "x-ecdsa")
}

// BenchmarkVerifyAttestation: one attestation check, a real one against
// Apple's root and a 2026-shape one from the test CA.
func BenchmarkVerifyAttestation(b *testing.B) {
	v := loadVectors(b)[0]
	ca := newCA(b)
	d := newDevice(b, appattest.Production)
	now := time.Now()
	obj, err := ca.Issue(d.Template2026(clientDataHash, now))
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		object []byte
		opts   appattest.AttestationOptions
	}{
		{"apple", v.Object, v.options()},
		{"2026-test-ca", obj, appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Now: now, Roots: []*appattest.Root{ca.Root()}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := appattest.VerifyAttestation(tt.object, tt.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
