package profile

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"fmt"
)

// appleRootCADER is Apple Root CA (2006), the anchor of the chain Apple
// signs provisioning profiles with. Apple publishes it as
// AppleIncRootCertificate.cer on its PKI page,
// https://www.apple.com/certificateauthority/. This copy was taken from
// the certificate set of a public Mac Developer ID provisioning profile and
// compared with a second, independently published copy; both match the
// fingerprint Apple lists (AppleRootCASHA256), which AppleRoots checks
// before trusting it.
//
//go:embed AppleRootCA.cer
var appleRootCADER []byte

// AppleRootCASHA256 is the SHA-256 fingerprint of Apple Root CA's DER
// encoding, as Apple lists it on https://www.apple.com/certificateauthority/.
const AppleRootCASHA256 = "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024"

// AppleRoots returns a pool holding only Apple Root CA, after checking the
// embedded copy against its pinned fingerprint.
func AppleRoots() (*x509.CertPool, error) {
	sum := sha256.Sum256(appleRootCADER)
	if got := hex.EncodeToString(sum[:]); got != AppleRootCASHA256 {
		return nil, fmt.Errorf("embedded Apple Root CA has SHA-256 %s, want %s", got, AppleRootCASHA256)
	}
	c, err := x509.ParseCertificate(appleRootCADER)
	if err != nil {
		return nil, fmt.Errorf("embedded Apple Root CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool, nil
}

// Signer names: the subjects of the certificates Apple signs provisioning
// profiles with, issued by an Apple intermediate under Apple Root CA. Mac
// profiles (2023 and 2025 Developer ID ones) are signed by "Mac OS X
// Provisioning Profile Signing" under "Apple Worldwide Developer Relations
// Certification Authority" G5; iOS ones by "Apple iPhone OS Provisioning
// Profile Signing" (Apple's Security framework,
// SecPolicyCreateiPhoneProvisioningProfileSigning). Apple's certification
// authorities put the developer's own name in the certificates they issue
// to developers, so a developer cannot obtain a certificate with these
// subjects: a chain to Apple Root CA alone would also admit a profile
// signed with the developer's own Developer ID certificate.
const (
	SignerMac          = "Mac OS X Provisioning Profile Signing"
	SignerIOS          = "Apple iPhone OS Provisioning Profile Signing"
	SignerOrganization = "Apple Inc."
)

func isProfileSigner(c *x509.Certificate) bool {
	if c.Subject.CommonName != SignerMac && c.Subject.CommonName != SignerIOS {
		return false
	}
	return len(c.Subject.Organization) == 1 && c.Subject.Organization[0] == SignerOrganization
}
