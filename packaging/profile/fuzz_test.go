package profile_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile"
)

// fuzzCorpus adds the seeds (testdata/fuzzseed: profiles signed as Apple
// signs them, with and without signed attributes, a development one, a
// tampered one) and broken ones, and returns the seeds' root.
func fuzzCorpus(f *testing.F) *x509.CertPool {
	dir := filepath.Join("testdata", "fuzzseed")
	rootDER, err := os.ReadFile(filepath.Join(dir, "root.cer"))
	if err != nil {
		f.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		f.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	for _, s := range fuzzSeeds {
		data, err := os.ReadFile(filepath.Join(dir, s.name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x00, 0x00, 0x00, 0x00})
	return roots
}

// FuzzParse feeds the profile reader untrusted bytes: it must never panic.
func FuzzParse(f *testing.F) {
	fuzzCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := profile.Parse(data)
		if err != nil {
			return
		}
		p.Kind()
		p.Allows(plists.AppAttestEnvironment, "production")
		p.Allows(plists.ApplicationIdentifier, []any{"a", "b"})
	})
}

// FuzzVerify checks what parses (signature, chain, signer): it must never
// panic, and whatever verifies was signed by the seeds' profile signer.
// Each input costs a few RSA verifications, so it runs far fewer inputs a
// second than FuzzParse.
func FuzzVerify(f *testing.F) {
	roots := fuzzCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := profile.Parse(data)
		if err != nil {
			return
		}
		if err := p.Verify(profile.VerifyOptions{Roots: roots}); err == nil {
			if p.Signer == nil || p.Signer.Subject.CommonName != profile.SignerMac {
				t.Errorf("verified a profile signed by %v", p.Signer)
			}
		}
	})
}

// TestFuzzSeedsVerify keeps the committed seeds meaningful: the good ones
// verify against the committed root, the tampered one does not.
func TestFuzzSeedsVerify(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "fuzzseed")
	rootDER, err := os.ReadFile(filepath.Join(dir, "root.cer"))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	for _, s := range fuzzSeeds {
		data, err := os.ReadFile(filepath.Join(dir, s.name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		err = p.Verify(profile.VerifyOptions{Roots: roots})
		if (err == nil) == (s.name == "tampered.der") {
			t.Errorf("%s: Verify = %v", s.name, err)
		}
	}
}
