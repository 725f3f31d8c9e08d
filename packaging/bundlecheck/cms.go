package bundlecheck

import (
	"crypto/x509"
	"slices"
	"strings"
)

// Certificate is what the rules need from the signing certificate.
type Certificate struct {
	CommonName string // "Developer ID Application: Example Inc (ABCDE12345)"
	OrgUnit    string // the Team ID Apple puts in OU
	// Raw is the certificate's DER, to find it among a provisioning
	// profile's DeveloperCertificates.
	Raw []byte
}

// signingCertificate finds the signing certificate in a CMS signature
// blob: the first non-CA certificate for code signing (the CMS also holds
// the CA chain and, inside the timestamp token, the time-stamping
// authority's certificate). Apple's CMS blobs use BER indefinite lengths,
// which encoding/asn1 does not read, but the certificates inside are DER,
// so each "30 82 hi lo" SEQUENCE is tried as a certificate. It returns nil
// when none is found.
func signingCertificate(cms []byte) *Certificate {
	var first *x509.Certificate
	for i := 0; i+4 <= len(cms); i++ {
		if cms[i] != 0x30 || cms[i+1] != 0x82 {
			continue
		}
		n := int(cms[i+2])<<8 | int(cms[i+3])
		if i+4+n > len(cms) {
			continue
		}
		c, err := x509.ParseCertificate(cms[i : i+4+n])
		if err != nil {
			continue
		}
		i += 3 + n
		if c.IsCA {
			continue
		}
		if slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) {
			first = c
			break
		}
		if first == nil {
			first = c
		}
	}
	if first == nil {
		return nil
	}
	leaf := &Certificate{CommonName: first.Subject.CommonName, Raw: first.Raw}
	if len(first.Subject.OrganizationalUnit) > 0 {
		leaf.OrgUnit = first.Subject.OrganizationalUnit[0]
	}
	return leaf
}

// developerIDPrefix starts the common name of the certificates that
// notarization accepts for apps and helpers.
const developerIDPrefix = "Developer ID Application:"

func isDeveloperID(c *Certificate) bool { return strings.HasPrefix(c.CommonName, developerIDPrefix) }
