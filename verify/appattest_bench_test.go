package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// aaStream hands out one device's App Attest values in counter order,
// made 1,024 at a time with the timer stopped (making one costs an ECDSA
// signature, which is the device's work, not the server's).
type aaStream struct {
	b     *testing.B
	d     *aaDevice
	chunk []string
	next  int
}

func newAAStream(b *testing.B, keys appattest.KeyStore) *aaStream {
	return &aaStream{b: b, d: newAADevice(b, keys, appattest.AppleRootName, appattest.Production)}
}

func (s *aaStream) value() string {
	if s.next == len(s.chunk) {
		s.b.StopTimer()
		s.chunk, s.next = s.chunk[:0], 0
		for range 1024 {
			s.chunk = append(s.chunk, s.d.value(s.b, time.Now()))
		}
		s.b.StartTimer()
	}
	s.next++
	return s.chunk[s.next-1]
}

// BenchmarkAppAttestCheck: one App Attest check with the memory key
// store (parse the header, find the key, verify the assertion, accept
// its counter), as Verifier.Verify makes it. With -cpu 1, 1e9 / ns/op is
// the checks one core makes a second.
//
//	go test -run '^$' -bench AppAttestCheck -cpu 1 ./verify/
func BenchmarkAppAttestCheck(b *testing.B) {
	keys := &appattest.MemoryKeyStore{}
	v := &Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}}
	s := newAAStream(b, keys)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := v.Verify(ctx, s.value()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// BenchmarkAppAttestRatio runs, in one interleaved loop so that all see
// the same machine load: batches of App Attest checks with the memory
// store (Verifier.Verify), batches of bare ECDSA P-256 verifications
// (the floor), and one DeviceCheck check against the fake Apple
// answering after 50 ms. It reports each one's time and the ratios
// x-ecdsa (App Attest over the floor; the aim is at most 1.3) and
// dc-over-aa.
//
//	go test -run '^$' -bench AppAttestRatio -cpu 1 -benchtime 40x ./verify/
func BenchmarkAppAttestRatio(b *testing.B) {
	keys := &appattest.MemoryKeyStore{}
	v := &Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}}
	s := newAAStream(b, keys)
	digest := sha256.Sum256([]byte("floor"))
	sig, err := ecdsa.SignASN1(rand.Reader, s.d.key.PrivateKey, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	dc, dcValue := dcAt50ms(b)
	ctx := context.Background()
	const batch = 64
	var bare, full, apple time.Duration
	values := make([]string, batch)
	for range b.N {
		for i := range values {
			values[i] = s.value()
		}
		start := time.Now()
		for range batch {
			ecdsa.VerifyASN1(&s.d.key.PrivateKey.PublicKey, digest[:], sig)
		}
		mid := time.Now()
		for _, val := range values {
			if _, err := v.Verify(ctx, val); err != nil {
				b.Fatal(err)
			}
		}
		end := time.Now()
		if _, err := dc.Verify(ctx, dcValue()); err != nil {
			b.Fatal(err)
		}
		bare, full, apple = bare+mid.Sub(start), full+end.Sub(mid), apple+time.Since(end)
	}
	n := float64(b.N * batch)
	b.ReportMetric(float64(bare.Nanoseconds())/n, "ns/ecdsa")
	b.ReportMetric(float64(full.Nanoseconds())/n, "ns/aa")
	b.ReportMetric(float64(apple.Nanoseconds())/float64(b.N), "ns/dc")
	b.ReportMetric(float64(full)/float64(bare), "x-ecdsa")
	b.ReportMetric((float64(apple)/float64(b.N))/(float64(full)/n), "dc-over-aa")
}

// dcAt50ms returns a Verifier asking a fake Apple that answers after 50
// ms, and a maker of fresh DeviceCheck values it accepts.
func dcAt50ms(b *testing.B) (*Verifier, func() string) {
	key := newKey(b)
	apple := devicechecktest.NewServer(&key.PublicKey, testTeamID, testKeyID)
	b.Cleanup(apple.Close)
	apple.ValidTokens(apple.Issued)
	apple.SetLatency(50 * time.Millisecond)
	client, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: key, BaseURL: apple.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.CloseIdleConnections)
	return &Verifier{Client: client, Replays: NewMemoryReplayCache()}, func() string {
		return mustEncode(b, header.Value{Kind: header.KindDeviceCheck, Token: apple.IssueToken(), GeneratedAt: time.Now()})
	}
}
