package appattest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// AppleRootFingerprint is the SHA-256 of the DER of Apple's App
// Attestation Root CA, in upper-case hex. A corrupted copy of the root
// (O="Apple Aps.", a broken self-signature) circulates; this pin is what
// tells the real one apart.
const AppleRootFingerprint = "1CB9823BA28BA6AD2D33A006941DE2AE4F513EF1D4E831B9F7E0FA7B6242C932"

// AppleRootName is the Root.Name of Apple's root, and so the Key.Root of
// every key whose chain ends there.
const AppleRootName = "apple"

// appleRootPEM is Apple's App Attestation Root CA (valid 2020-03-18 to
// 2045-03-15), from https://www.apple.com/certificateauthority/private/.
//
//go:embed apple_app_attestation_root_ca.pem
var appleRootPEM []byte

// A Root is a certificate an attestation's chain may end at, and the
// name a key verified through it is recorded with.
type Root struct {
	// Name is copied into Key.Root: "apple" for Apple's root, a name of
	// the caller's choosing (e.g. "development") for any other.
	Name string
	// Certificate is the root certificate.
	Certificate *x509.Certificate
}

var appleRoot = mustParseAppleRoot(appleRootPEM)

// AppleRoot returns Apple's App Attestation Root CA, the one root
// VerifyAttestation trusts when given none. Its fingerprint is checked
// against AppleRootFingerprint when the package loads.
func AppleRoot() *Root {
	return &Root{Name: AppleRootName, Certificate: appleRoot}
}

func mustParseAppleRoot(p []byte) *x509.Certificate {
	cert, err := parsePinnedRoot(p, AppleRootFingerprint)
	if err != nil {
		panic("appattest: embedded Apple root: " + err.Error())
	}
	return cert
}

// parsePinnedRoot parses one PEM certificate whose DER must hash to pin.
func parsePinnedRoot(p []byte, pin string) (*x509.Certificate, error) {
	block, rest := pem.Decode(p)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("not one PEM certificate")
	}
	if !isApple(block.Bytes, pin) {
		sum := sha256.Sum256(block.Bytes)
		return nil, fmt.Errorf("fingerprint %X, want %s", sum[:], pin)
	}
	return x509.ParseCertificate(block.Bytes)
}

// isApple reports whether der hashes to pin (upper- or lower-case hex).
func isApple(der []byte, pin string) bool {
	want, err := hex.DecodeString(pin)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(der)
	return bytes.Equal(sum[:], want)
}

// ParseRoot reads a root for VerifyAttestation from PEM (one
// certificate), with the name its keys will be recorded with. A root
// named "apple" must be Apple's own (checked against the pin).
func ParseRoot(name string, pemBytes []byte) (*Root, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("appattest: root: not one PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("appattest: root: %w", err)
	}
	r := &Root{Name: name, Certificate: cert}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// check refuses a root that would mislabel keys: no name, no
// certificate, or the name "apple" on a certificate that is not Apple's.
func (r *Root) check() error {
	switch {
	case r == nil || r.Certificate == nil:
		return errors.New("appattest: a root has no certificate")
	case r.Name == "":
		return errors.New("appattest: a root has no name: name it (e.g. \"development\") so keys record where they came from")
	case r.Name == AppleRootName && !isApple(r.Certificate.Raw, AppleRootFingerprint):
		return errors.New("appattest: a root named \"apple\" is not Apple's App Attestation Root CA (fingerprint mismatch): use AppleRoot()")
	}
	return nil
}
