package appattest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/attestd/attestd/verify/appattest"
)

// TestAppleRootPinned: the embedded root is the one whose DER hashes to
// the pin, and it is Apple's App Attestation Root CA.
func TestAppleRootPinned(t *testing.T) {
	t.Parallel()
	r := appattest.AppleRoot()
	sum := sha256.Sum256(r.Certificate.Raw)
	if got := strings.ToUpper(hex.EncodeToString(sum[:])); got != appattest.AppleRootFingerprint {
		t.Fatalf("embedded root hashes to %s, want %s", got, appattest.AppleRootFingerprint)
	}
	if appattest.AppleRootFingerprint != "1CB9823BA28BA6AD2D33A006941DE2AE4F513EF1D4E831B9F7E0FA7B6242C932" {
		t.Fatal("the pin changed")
	}
	if r.Name != appattest.AppleRootName || r.Certificate.Subject.CommonName != "Apple App Attestation Root CA" || r.Certificate.Subject.Organization[0] != "Apple Inc." {
		t.Fatalf("root %q: %v", r.Name, r.Certificate.Subject)
	}
	if err := r.Certificate.CheckSignatureFrom(r.Certificate); err != nil {
		t.Fatalf("self-signature: %v", err)
	}
}

// TestParseRoot: Apple's root reads under its name; a corrupted copy
// (one bit) or another certificate does not pass for Apple's; another
// root reads under another name.
func TestParseRoot(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("apple_app_attestation_root_ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appattest.ParseRoot(appattest.AppleRootName, good); err != nil {
		t.Fatalf("Apple's root: %v", err)
	}
	block, _ := pem.Decode(good)
	der := append([]byte(nil), block.Bytes...)
	der[len(der)-1] ^= 1 // the self-signature's last bit, as the circulating bad copy breaks it
	corrupted := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if _, err := appattest.ParseRoot(appattest.AppleRootName, corrupted); err == nil {
		t.Fatal("a corrupted copy passed as Apple's root")
	}
	other := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newCA(t).Root().Certificate.Raw})
	if _, err := appattest.ParseRoot(appattest.AppleRootName, other); err == nil {
		t.Fatal("another root passed as Apple's")
	}
	if r, err := appattest.ParseRoot("staging", other); err != nil || r.Name != "staging" {
		t.Fatalf("another root: %v, %v", r, err)
	}
	for _, bad := range [][]byte{nil, []byte("not PEM"), append(append([]byte(nil), other...), other...)} {
		if _, err := appattest.ParseRoot("x", bad); err == nil {
			t.Errorf("ParseRoot(%.20q) succeeded", bad)
		}
	}
	if _, err := appattest.ParseRoot("", other); err == nil {
		t.Error("a root without a name was accepted")
	}
}
