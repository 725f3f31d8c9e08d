// Package issuer builds App Attest objects byte for byte as Apple's
// attestation service and a Secure Enclave key make them: the
// certificate chain, the authenticator data, the COSE key, the CBOR
// attestation and assertion objects. Packages appattesttest (a test CA)
// and devattest (the development root) are built on it.
package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// OIDs of Apple's credential certificate.
var (
	OIDNonce     = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}
	OIDAppInfo   = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 5}
	OIDKeyPolicy = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 6}
	OIDOSVersion = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 7}
	// OIDAppAttestEKU is the extended key usage Apple's 2026 leaves carry.
	OIDAppAttestEKU = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 24}
)

// The AAGUIDs.
var (
	AAGUIDDevelopment = []byte("appattestdevelop")
	AAGUIDProduction  = append([]byte("appattest"), 0, 0, 0, 0, 0, 0, 0)
)

// CA is a two-level App Attest CA: a P-384 root and a P-384
// intermediate, as Apple's "Apple App Attestation Root CA" and "Apple
// App Attestation CA 1".
type CA struct {
	Root            *x509.Certificate
	RootKey         *ecdsa.PrivateKey
	Intermediate    *x509.Certificate
	IntermediateKey *ecdsa.PrivateKey
}

// Names of a CA's two certificates and of its organization (which a
// CA other than Apple's must not give as "Apple Inc.").
type Names struct {
	Root, Intermediate, Organization string
}

// NewCA makes a fresh CA whose certificates are valid from notBefore to
// notAfter.
func NewCA(names Names, notBefore, notAfter time.Time) (*CA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	root, err := SelfSigned(name(names.Root, names.Organization), rootKey, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	inter, err := IssueIntermediate(root, rootKey, name(names.Intermediate, names.Organization), &interKey.PublicKey, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	return &CA{Root: root, RootKey: rootKey, Intermediate: inter, IntermediateKey: interKey}, nil
}

// name is a subject laid out as Apple's (CN, O, ST).
func name(cn, org string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{org}, Province: []string{"California"}}
}

// SelfSigned makes a root certificate as Apple's: CA, key usage
// certSign and CRLSign, ECDSA with SHA-384.
func SelfSigned(subject pkix.Name, key *ecdsa.PrivateKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	t := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	return create(t, t, &key.PublicKey, key)
}

// IssueIntermediate makes the intermediate as Apple's: CA with path
// length 0, certSign and CRLSign, ECDSA with SHA-384.
func IssueIntermediate(root *x509.Certificate, rootKey *ecdsa.PrivateKey, subject pkix.Name, pub *ecdsa.PublicKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	t := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	return create(t, root, pub, rootKey)
}

// Leaf is what goes into a credential certificate.
type Leaf struct {
	// PublicKey is the certified key (any ECDSA key: tests certify a
	// P-384 one to see it refused).
	PublicKey *ecdsa.PublicKey
	// NonceExtension is the value of extension 1.2.840.113635.100.8.2,
	// nil for none (NonceValue makes Apple's).
	NonceExtension []byte
	// KeyPolicy is the value of extension 1.2.840.113635.100.8.6, nil for
	// none.
	KeyPolicy []byte
	// AppAttestEKU adds the extended key usage 1.2.840.113635.100.4.24.
	AppAttestEKU bool
	// AppID goes into extension 1.2.840.113635.100.8.5; OSVersion into
	// 1.2.840.113635.100.8.7. Empty leaves each out.
	AppID, OSVersion string
	// NotBefore and NotAfter bound the leaf's validity.
	NotBefore, NotAfter time.Time
}

// IssueLeaf makes a credential certificate as Apple's: subject CN the
// key id in hex, OU "AAA Certification", O the intermediate's; no key
// identifiers; extensions in Apple's order: basic constraints CA:FALSE
// and key usage digitalSignature, nonRepudiation, keyEncipherment and
// dataEncipherment (both critical), the extended key usage when asked,
// then 1.2.840.113635.100.8.5, .7, .2 and .6; signed ECDSA with SHA-256
// by the intermediate. It returns the DER.
func (ca *CA) IssueLeaf(l Leaf) ([]byte, error) {
	point, err := l.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	keyID := sha256.Sum256(point)
	subject := name(hex.EncodeToString(keyID[:]), firstOr(ca.Intermediate.Subject.Organization, ""))
	subject.OrganizationalUnit = []string{"AAA Certification"}
	t := &x509.Certificate{
		SerialNumber:       serial(),
		Subject:            subject,
		NotBefore:          l.NotBefore,
		NotAfter:           l.NotAfter,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	add := func(id asn1.ObjectIdentifier, critical bool, v []byte) {
		if v != nil {
			t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: id, Critical: critical, Value: v})
		}
	}
	add(oidBasicConstraints, true, []byte{0x30, 0x00})
	add(oidKeyUsage, true, []byte{0x03, 0x02, 0x04, 0xf0})
	if l.AppAttestEKU {
		eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{OIDAppAttestEKU})
		add(oidExtKeyUsage, false, eku)
	}
	if l.AppID != "" {
		add(OIDAppInfo, false, der(0x30, tagged(1204, der(0x04, []byte(l.AppID)))))
	}
	if l.OSVersion != "" {
		add(OIDOSVersion, false, der(0x30, tagged(1400, der(0x04, []byte(l.OSVersion)))))
	}
	add(OIDNonce, false, l.NonceExtension)
	add(OIDKeyPolicy, false, l.KeyPolicy)
	// Apple's leaves carry no authority key identifier: sign as an
	// intermediate without a subject key identifier.
	parent := *ca.Intermediate
	parent.SubjectKeyId = nil
	c, err := create(t, &parent, l.PublicKey, ca.IntermediateKey)
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
)

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// NonceValue is Apple's nonce extension value:
// SEQUENCE { [1] EXPLICIT OCTET STRING nonce }.
func NonceValue(nonce []byte) []byte {
	return der(0x30, der(0xa1, der(0x04, nonce)))
}

// Nonce is SHA-256(authData ‖ clientDataHash).
func Nonce(authData, clientDataHash []byte) []byte {
	h := sha256.New()
	h.Write(authData)
	h.Write(clientDataHash)
	return h.Sum(nil)
}

func create(t, parent *x509.Certificate, pub crypto.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	raw, err := x509.CreateCertificate(rand.Reader, t, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", t.Subject.CommonName, err)
	}
	return x509.ParseCertificate(raw)
}

// serial is a random positive 48-bit serial, as Apple's leaves have.
func serial() *big.Int {
	var b [6]byte
	rand.Read(b[:])
	b[0] |= 1
	return new(big.Int).SetBytes(b[:])
}

// der encodes one DER element with a one-byte tag.
func der(tag byte, content []byte) []byte {
	return append(append([]byte{tag}, derLength(len(content))...), content...)
}

// tagged encodes a constructed context-specific element with a
// high tag number (Apple's private fields, e.g. [1204]).
func tagged(n int, content []byte) []byte {
	tag := []byte{0xbf}
	var groups []byte
	for ; n > 0; n >>= 7 {
		groups = append([]byte{byte(n & 0x7f)}, groups...)
	}
	for i := range len(groups) - 1 {
		groups[i] |= 0x80
	}
	tag = append(tag, groups...)
	return append(append(tag, derLength(len(content))...), content...)
}

func derLength(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	default:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
}

// KeyID is SHA-256 of the key as an X9.62 uncompressed point.
func KeyID(pub *ecdsa.PublicKey) []byte {
	point, err := pub.Bytes()
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(point)
	return sum[:]
}

// RPIDHash is SHA-256 of the App ID.
func RPIDHash(appID string) []byte {
	sum := sha256.Sum256([]byte(appID))
	return sum[:]
}

// COSEKey encodes a P-256 key as Apple's COSE_Key, in Apple's order:
// {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
func COSEKey(pub *ecdsa.PublicKey) []byte {
	point, err := pub.Bytes()
	if err != nil || len(point) != 65 {
		return nil
	}
	b := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}
	b = append(b, point[1:33]...)
	b = append(b, 0x22, 0x58, 0x20)
	return append(b, point[33:]...)
}

// AuthData is the authenticator data of an attestation.
type AuthData struct {
	RPIDHash     []byte
	Flags        byte
	Counter      uint32
	AAGUID       []byte
	CredentialID []byte
	COSEKey      []byte
	// Extensions is appended after the COSE key as it is (nil: none).
	Extensions []byte
}

// Bytes lays the fields out: rpIdHash ‖ flags ‖ counter ‖ AAGUID ‖
// credential id length ‖ credential id ‖ COSE key ‖ extensions.
func (a AuthData) Bytes() []byte {
	b := AssertionAuthData(a.RPIDHash, a.Flags, a.Counter, nil)
	b = append(b, a.AAGUID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.CredentialID)))
	b = append(b, a.CredentialID...)
	b = append(b, a.COSEKey...)
	return append(b, a.Extensions...)
}

// AssertionAuthData is rpIdHash ‖ flags ‖ counter ‖ extensions.
func AssertionAuthData(rpIDHash []byte, flags byte, counter uint32, extensions []byte) []byte {
	b := append([]byte(nil), rpIDHash...)
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, counter)
	return append(b, extensions...)
}

// Extensions encodes an authenticator-data extensions map
// deterministically (keys sorted as CBOR's core deterministic encoding,
// which is how Apple's maps are ordered).
func Extensions(m map[string]any) ([]byte, error) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	return em.Marshal(m)
}

// MacKeyPolicy is the value of extension 1.2.840.113635.100.8.6 in a
// real macOS 27 credential certificate (appattest's testdata: "hellas
// macOS 27"): SEQUENCE { [3] { OCTET STRING policy } }, where policy is
// the key's access control, SEQUENCE { "11", { {"ok", true}, {"oa",
// true}, {"odel", true}, {"osgn", {"rsec", …}} } }.
var MacKeyPolicy = []byte{
	0x30, 0x46, 0xa3, 0x44, 0x04, 0x42, 0x30, 0x40, 0x0c, 0x02, 0x31, 0x31, 0x30, 0x3a, 0x30, 0x09,
	0x0c, 0x02, 0x6f, 0x6b, 0xa1, 0x03, 0x01, 0x01, 0xff, 0x30, 0x09, 0x0c, 0x02, 0x6f, 0x61, 0xa1,
	0x03, 0x01, 0x01, 0xff, 0x30, 0x0b, 0x0c, 0x04, 0x6f, 0x64, 0x65, 0x6c, 0xa1, 0x03, 0x01, 0x01,
	0xff, 0x30, 0x15, 0x0c, 0x04, 0x6f, 0x73, 0x67, 0x6e, 0xa0, 0x06, 0x0c, 0x04, 0x72, 0x73, 0x65,
	0x63, 0x30, 0x05, 0xa6, 0x03, 0x02, 0x01, 0x01,
}

// ValidationCategory encodes a launch validation category as Apple does:
// 4 bytes, little-endian.
func ValidationCategory(c uint32) []byte {
	return binary.LittleEndian.AppendUint32(nil, c)
}

// AttestationObject encodes {fmt, attStmt: {x5c, receipt}, authData} in
// Apple's key order.
func AttestationObject(format string, x5c [][]byte, receipt, authData []byte) ([]byte, error) {
	type stmt struct {
		X5C     [][]byte `cbor:"x5c"`
		Receipt []byte   `cbor:"receipt"`
	}
	return cbor.Marshal(struct {
		Format   string `cbor:"fmt"`
		AttStmt  stmt   `cbor:"attStmt"`
		AuthData []byte `cbor:"authData"`
	}{format, stmt{x5c, receipt}, authData})
}

// AssertionObject encodes {signature, authenticatorData} in Apple's
// key order.
func AssertionObject(signature, authData []byte) ([]byte, error) {
	return cbor.Marshal(struct {
		Signature         []byte `cbor:"signature"`
		AuthenticatorData []byte `cbor:"authenticatorData"`
	}{signature, authData})
}

// SignAssertion signs as a Secure Enclave key does for App Attest: ECDSA
// (DER) over SHA-256 of the nonce SHA-256(authData ‖ clientDataHash).
func SignAssertion(key *ecdsa.PrivateKey, authData, clientDataHash []byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("no signing key")
	}
	digest := sha256.Sum256(Nonce(authData, clientDataHash))
	return ecdsa.SignASN1(rand.Reader, key, digest[:])
}
