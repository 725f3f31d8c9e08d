package devattest_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

const appID = "ABCDE12345.com.example.simulator"

var cdh = func() []byte { h := sha256.Sum256([]byte("challenge")); return h[:] }()

func newKey(t *testing.T) *devattest.Key {
	t.Helper()
	k, err := devattest.NewKey(appID)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDevelopmentKey: a development attestation verifies only with the
// development root passed explicitly, records where it came from, and
// the key's assertions verify with the attested key.
func TestDevelopmentKey(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	k.Extensions = map[string]any{appattest.ExtBundleVersion: "42"}
	obj, err := k.Attest(cdh)
	if err != nil {
		t.Fatal(err)
	}
	opts := appattest.AttestationOptions{AppIDs: []string{appID}, ClientDataHash: cdh, Environments: []appattest.Environment{appattest.Development}, KeyID: k.ID()}
	if _, err := appattest.VerifyAttestation(obj, opts); !errors.Is(err, appattest.ErrBadChain) {
		t.Fatalf("without the development root: err = %v, want ErrBadChain", err)
	}
	opts.Roots = []*appattest.Root{appattest.AppleRoot(), devattest.Root()}
	key, err := appattest.VerifyAttestation(obj, opts)
	if err != nil {
		t.Fatal(err)
	}
	if key.Root != devattest.RootName || key.Environment != appattest.Development || key.KeyPolicy == nil {
		t.Fatalf("key: root %q, environment %q, policy %x", key.Root, key.Environment, key.KeyPolicy)
	}
	if v, ok := key.Extensions.BundleVersion(); !ok || v != "42" {
		t.Fatalf("bundle version %q, %v", v, ok)
	}
	var w appattest.Window
	for i := range 3 {
		a, err := k.Assert(cdh)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appattest.VerifyAssertion(a, key, cdh)
		if err != nil {
			t.Fatal(err)
		}
		if got.Counter != uint32(i+1) || w.Accept(got.Counter, 0) != nil {
			t.Fatalf("assertion %d: counter %d", i, got.Counter)
		}
	}
}

// TestDevelopmentKeyProduction: a key may ask for the production AAGUID;
// it still comes from the development root.
func TestDevelopmentKeyProduction(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	k.Environment = appattest.Production
	now := time.Now().Add(-24 * time.Hour)
	obj, err := k.AttestAt(cdh, now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := appattest.VerifyAttestation(obj, appattest.AttestationOptions{AppIDs: []string{appID}, ClientDataHash: cdh, Now: now, Roots: []*appattest.Root{devattest.Root()}})
	if err != nil || key.Environment != appattest.Production || key.Root != devattest.RootName {
		t.Fatalf("%+v, %v", key, err)
	}
	if _, err := appattest.VerifyAttestation(obj, appattest.AttestationOptions{AppIDs: []string{appID}, ClientDataHash: cdh, Now: now.Add(devattest.LeafLifetime + time.Minute), Roots: []*appattest.Root{devattest.Root()}}); !errors.Is(err, appattest.ErrExpired) {
		t.Fatalf("after the leaf's lifetime: %v", err)
	}
}

// TestDevelopmentKeyConcurrentAssertions: concurrent Asserts each get
// their own counter.
func TestDevelopmentKeyConcurrentAssertions(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	key := &appattest.Key{PublicKey: &k.PrivateKey.PublicKey, AppID: appID}
	var wg sync.WaitGroup
	counters := make(chan uint32, 32)
	for range 32 {
		wg.Go(func() {
			a, err := k.Assert(cdh)
			if err != nil {
				t.Error(err)
				return
			}
			got, err := appattest.VerifyAssertion(a, key, cdh)
			if err != nil {
				t.Error(err)
				return
			}
			counters <- got.Counter
		})
	}
	wg.Wait()
	close(counters)
	var w appattest.Window
	for c := range counters {
		if err := w.Accept(c, 0); err != nil {
			t.Fatalf("counter %d twice: %v", c, err)
		}
	}
	if k.Counter != 32 {
		t.Fatalf("counter %d, want 32", k.Counter)
	}
}

// TestCommittedRoot: the committed files are the development root and
// its key, the intermediate chains to it, and none of it claims to be
// Apple.
func TestCommittedRoot(t *testing.T) {
	t.Parallel()
	root := readCert(t, "development-only/root.pem")
	inter := readCert(t, "development-only/intermediate.pem")
	if !root.Equal(devattest.Root().Certificate) || string(devattest.RootPEM()) != string(mustRead(t, "development-only/root.pem")) {
		t.Fatal("Root() is not development-only/root.pem")
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Fatal(err)
	}
	for _, pair := range []struct {
		cert *x509.Certificate
		key  string
	}{{root, "development-only/root-key.pem"}, {inter, "development-only/intermediate-key.pem"}} {
		block, _ := pem.Decode(mustRead(t, pair.key))
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !k.(*ecdsa.PrivateKey).PublicKey.Equal(pair.cert.PublicKey) {
			t.Fatalf("%s is not the key of %s", pair.key, pair.cert.Subject)
		}
		if o := pair.cert.Subject.Organization; len(o) != 1 || o[0] == "Apple Inc." {
			t.Fatalf("organization %q", o)
		}
	}
	if root.NotAfter.Before(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the development root expires %v", root.NotAfter)
	}
}

func readCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(mustRead(t, name))
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
