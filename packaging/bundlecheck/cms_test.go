package bundlecheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func makeCert(t *testing.T, cn, ou string, ca bool, eku x509.ExtKeyUsage, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}, Organization: []string{"Example Incorporated With A Long Name"}, Country: []string{"US"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
	}
	if !ca {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{eku}
	} else {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	if der[1] != 0x82 {
		t.Fatalf("test certificate of %d bytes is not in the 30 82 form", len(der))
	}
	c, _ := x509.ParseCertificate(der)
	return c, key, der
}

func TestSigningCertificate(t *testing.T) {
	ca, caKey, caDER := makeCert(t, "Developer ID Certification Authority", "G2", true, 0, nil, nil)
	_, _, leafDER := makeCert(t, "Developer ID Application: Example Inc (ABCDE12345)", "ABCDE12345", false, x509.ExtKeyUsageCodeSigning, ca, caKey)
	_, _, devDER := makeCert(t, "Apple Development: me@example.com (ZZZZZ99999)", "ABCDE12345", false, x509.ExtKeyUsageCodeSigning, ca, caKey)
	_, _, tsaDER := makeCert(t, "Apple Timestamp Authority", "TSA", false, x509.ExtKeyUsageTimeStamping, ca, caKey)

	ber := []byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x01, 0xa0, 0x80}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		cms  []byte
		want *Certificate
	}{
		{"chain then timestamp", cat(ber, leafDER, caDER, []byte{0, 0, 0x30, 0x82, 0xff}, timeStampTokenOID, tsaDER),
			&Certificate{CommonName: "Developer ID Application: Example Inc (ABCDE12345)", OrgUnit: "ABCDE12345"}},
		{"CA first", cat(ber, caDER, leafDER, tsaDER), &Certificate{CommonName: "Developer ID Application: Example Inc (ABCDE12345)", OrgUnit: "ABCDE12345"}},
		{"development certificate", cat(ber, caDER, devDER), &Certificate{CommonName: "Apple Development: me@example.com (ZZZZZ99999)", OrgUnit: "ABCDE12345"}},
		{"only the TSA", cat(ber, tsaDER), &Certificate{CommonName: "Apple Timestamp Authority", OrgUnit: "TSA"}},
		{"only a CA", cat(ber, caDER), nil},
		{"truncated", cat(ber, leafDER[:len(leafDER)-1]), nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := signingCertificate(tc.cms)
			if (got == nil) != (tc.want == nil) || (got != nil && (got.CommonName != tc.want.CommonName || got.OrgUnit != tc.want.OrgUnit)) {
				t.Errorf("signingCertificate = %+v, want %+v", got, tc.want)
			}
		})
	}
}
