package appattesttest_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
)

// apple returns a real object from appattest's testdata by name.
func apple(t *testing.T, name string) *appattesttest.Object {
	t.Helper()
	b, err := os.ReadFile("../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Name        string `json:"name"`
		Attestation string `json:"attestation_b64"`
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Name == name {
			raw, err := base64.StdEncoding.DecodeString(v.Attestation)
			if err != nil {
				t.Fatal(err)
			}
			o, err := appattesttest.ParseObject(raw)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
	}
	t.Fatalf("no vector %q", name)
	return nil
}

func cert(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// extensionShape lists a certificate's extensions as OID and
// criticality, in order.
func extensionShape(c *x509.Certificate) []string {
	var s []string
	for _, e := range c.Extensions {
		s = append(s, e.Id.String()+map[bool]string{true: "!", false: ""}[e.Critical])
	}
	return s
}

// TestShapeMatchesApple: the test CA's 2026 objects are laid out as
// Apple's 2026 sample, byte for byte where no key or time differs; the
// leaf's extensions in Apple's order, the intermediate's as a set.
func TestShapeMatchesApple(t *testing.T) {
	t.Parallel()
	ref := apple(t, "Apple doc sample 2026 (example_server_challenge)")
	ca, err := appattesttest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	d, err := appattesttest.NewDevice("1234567890.com.example.myapp", appattest.Production)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ca.Attest(d, []byte("example_server_challenge"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := appattesttest.ParseObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	refRaw, _ := ref.Marshal()
	// The envelope up to the first certificate's length.
	if n := len("\xa3cfmtoapple-appattestgattStmt\xa2cx5c\x82Y"); !bytes.Equal(raw[:n], refRaw[:n]) {
		t.Errorf("envelope %x, Apple's %x", raw[:n], refRaw[:n])
	}
	// authData: all but the key-dependent bytes (credential id, x, y).
	if len(got.AuthData) != len(ref.AuthData) {
		t.Fatalf("authData %d bytes, Apple's %d", len(got.AuthData), len(ref.AuthData))
	}
	for _, r := range [][2]int{{0, 55 + 0}, {87, 97}, {129, 132}, {164, len(ref.AuthData)}} {
		if !bytes.Equal(got.AuthData[r[0]:r[1]], ref.AuthData[r[0]:r[1]]) {
			t.Errorf("authData[%d:%d] = %x, Apple's %x", r[0], r[1], got.AuthData[r[0]:r[1]], ref.AuthData[r[0]:r[1]])
		}
	}
	leaf, refLeaf := cert(t, got.X5C[0]), cert(t, ref.X5C[0])
	if a, b := extensionShape(leaf), extensionShape(refLeaf); !slices.Equal(a, b) {
		t.Errorf("leaf extensions %v, Apple's %v", a, b)
	}
	if leaf.KeyUsage != refLeaf.KeyUsage || !slices.EqualFunc(leaf.UnknownExtKeyUsage, refLeaf.UnknownExtKeyUsage, asn1.ObjectIdentifier.Equal) ||
		leaf.SignatureAlgorithm != refLeaf.SignatureAlgorithm || !slices.Equal(leaf.Subject.OrganizationalUnit, refLeaf.Subject.OrganizationalUnit) {
		t.Errorf("leaf: key usage %v/%v, EKU %v/%v, signature %v/%v, OU %v/%v", leaf.KeyUsage, refLeaf.KeyUsage, leaf.UnknownExtKeyUsage, refLeaf.UnknownExtKeyUsage,
			leaf.SignatureAlgorithm, refLeaf.SignatureAlgorithm, leaf.Subject.OrganizationalUnit, refLeaf.Subject.OrganizationalUnit)
	}
	keyID := sha256.Sum256(mustBytes(t, leaf))
	if leaf.Subject.CommonName != hex.EncodeToString(keyID[:]) {
		t.Errorf("leaf CN %q, want the key id in hex", leaf.Subject.CommonName)
	}
	inter, refInter := cert(t, got.X5C[1]), cert(t, ref.X5C[1])
	if a, b := extensionShape(inter), extensionShape(refInter); !slices.Equal(sorted(a), sorted(b)) || inter.KeyUsage != refInter.KeyUsage ||
		inter.MaxPathLen != refInter.MaxPathLen || inter.SignatureAlgorithm != refInter.SignatureAlgorithm || inter.PublicKeyAlgorithm != refInter.PublicKeyAlgorithm {
		t.Errorf("intermediate: extensions %v/%v, key usage %v/%v, path %d/%d", a, b, inter.KeyUsage, refInter.KeyUsage, inter.MaxPathLen, refInter.MaxPathLen)
	}
}

// TestMacKeyPolicyIsReal: MacKeyPolicy is the value a real macOS 27 leaf
// carries.
func TestMacKeyPolicyIsReal(t *testing.T) {
	t.Parallel()
	leaf := cert(t, apple(t, "hellas macOS 27").X5C[0])
	for _, e := range leaf.Extensions {
		if e.Id.String() == "1.2.840.113635.100.8.6" {
			if !bytes.Equal(e.Value, appattesttest.MacKeyPolicy) {
				t.Fatalf("macOS leaf policy %x, MacKeyPolicy %x", e.Value, appattesttest.MacKeyPolicy)
			}
			return
		}
	}
	t.Fatal("the macOS leaf has no key policy")
}

// TestAssertionShape: the test device's 2026 assertion is laid out as a
// real macOS 27 one (flags AT and ED, the map after the counter).
func TestAssertionShape(t *testing.T) {
	t.Parallel()
	d, err := appattesttest.NewDevice("1234567890.com.example.myapp", appattest.Production)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := d.Assert([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, ad, err := appattesttest.AssertionParts(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("\xa2isignatureX")) || ad[32] != 0xc0 || ad[36] != 1 || ad[37] != 0xa2 {
		t.Fatalf("assertion %x, authData %x", raw[:16], ad)
	}
	if _, err := appattest.VerifyAssertion(raw, &appattest.Key{PublicKey: &d.Key.PublicKey, AppID: d.AppID}, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func mustBytes(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	k, ok := c.PublicKey.(interface{ Bytes() ([]byte, error) })
	if !ok {
		t.Fatal("not an ECDSA key")
	}
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
