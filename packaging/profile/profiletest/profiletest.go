// Package profiletest makes provisioning profiles for tests: a
// certification authority shaped like the one Apple signs Mac profiles
// with (a root, an intermediate, and a leaf named "Mac OS X Provisioning
// Profile Signing", O=Apple Inc.), and a CMS signer that writes profiles
// the way Apple's are written (DER, SHA-1 digest, RSA PKCS #1 v1.5, the
// content-type, signing-time and message-digest signed attributes).
//
// The names do not make these certificates Apple's: only the root a
// verifier is given decides, and profile.Verify trusts Apple Root CA unless
// told otherwise. Nothing here is used outside tests.
package profiletest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // Apple digests profiles with SHA-1
	_ "crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile"
)

// CA is a test certification authority and profile signer.
type CA struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	// Signer is the profile signing certificate, named as Apple's.
	Signer *x509.Certificate

	rootKey, interKey, signerKey *rsa.PrivateKey
	serial                       int64
}

// Validity of the CA's certificates: NotBefore..NotAfter around the times
// tests sign at.
var (
	NotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	NotAfter  = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
)

// NewCA makes a root, an intermediate and a profile signing certificate
// (RSA 2048, as Apple's).
func NewCA() (*CA, error) {
	ca := &CA{}
	var err error
	if ca.rootKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	rootName := pkix.Name{CommonName: "attestd Test Root CA", Organization: []string{"attestd tests"}}
	if ca.Root, err = ca.issue(rootName, rootName, &ca.rootKey.PublicKey, nil, ca.rootKey, true); err != nil {
		return nil, err
	}
	if ca.interKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	interName := pkix.Name{CommonName: "attestd Test Developer Relations CA", Organization: []string{"attestd tests"}}
	if ca.Intermediate, err = ca.issue(interName, rootName, &ca.interKey.PublicKey, ca.Root, ca.rootKey, true); err != nil {
		return nil, err
	}
	ca.Signer, ca.signerKey, err = ca.Issue(profile.SignerMac, profile.SignerOrganization)
	return ca, err
}

// Issue makes another leaf under the intermediate, e.g. a developer's
// certificate to sign a forged profile with.
func (ca *CA) Issue(commonName, organization string) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	c, err := ca.issue(pkix.Name{CommonName: commonName, Organization: []string{organization}},
		ca.Intermediate.Subject, &key.PublicKey, ca.Intermediate, ca.interKey, false)
	return c, key, err
}

func (ca *CA) issue(subject, issuer pkix.Name, pub *rsa.PublicKey, parent *x509.Certificate, parentKey *rsa.PrivateKey, isCA bool) (*x509.Certificate, error) {
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: subject, Issuer: issuer,
		NotBefore: NotBefore, NotAfter: NotAfter,
		BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Roots is a pool with the CA's root, for profile.VerifyOptions.
func (ca *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// Fields are what a test profile says. Zero values take the defaults
// noted.
type Fields struct {
	Name     string // "attestd test profile"
	TeamID   string // required
	BundleID string // required; the App ID is TeamID.BundleID
	// Entitlements beyond the application and team identifiers Apple
	// always writes; a value here replaces theirs.
	Entitlements map[string]any
	Created      time.Time // 2026-06-01
	Expires      time.Time // Created + 18 years, as Apple's Developer ID ones
	// Devices makes a development profile; empty makes a Developer ID
	// one (ProvisionsAllDevices).
	Devices  []string
	Platform string // "OSX"
	// Certificates are the DER certificates the profile lets sign the
	// code (DeveloperCertificates).
	Certificates [][]byte
}

// Plist returns the profile's property list, as Apple writes it.
func (f Fields) Plist() ([]byte, error) {
	if f.TeamID == "" || f.BundleID == "" {
		return nil, errors.New("profiletest: a profile needs TeamID and BundleID")
	}
	if f.Name == "" {
		f.Name = "attestd test profile"
	}
	if f.Created.IsZero() {
		f.Created = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	if f.Expires.IsZero() {
		f.Expires = f.Created.AddDate(18, 0, 0)
	}
	if f.Platform == "" {
		f.Platform = "OSX"
	}
	ents := map[string]any{
		plists.ApplicationIdentifier: f.TeamID + "." + f.BundleID,
		plists.TeamIdentifier:        f.TeamID,
		"keychain-access-groups":     []any{f.TeamID + ".*"},
	}
	for k, v := range f.Entitlements {
		ents[k] = v
	}
	m := map[string]any{
		"AppIDName": "attestd test", "ApplicationIdentifierPrefix": []any{f.TeamID},
		"CreationDate": f.Created, "ExpirationDate": f.Expires, "Entitlements": ents,
		"Name": f.Name, "Platform": []any{f.Platform}, "TeamIdentifier": []any{f.TeamID},
		"TeamName": "attestd tests", "UUID": "00000000-0000-4000-8000-000000000000", "Version": 1,
	}
	certs := make([]any, len(f.Certificates))
	for i, c := range f.Certificates {
		certs[i] = c
	}
	m["DeveloperCertificates"] = certs
	if len(f.Devices) > 0 {
		devs := make([]any, len(f.Devices))
		for i, d := range f.Devices {
			devs[i] = d
		}
		m["ProvisionedDevices"] = devs
	} else {
		m["ProvisionsAllDevices"] = true
	}
	return plists.Marshal(m)
}

// Profile returns a profile with fields f, signed by the CA's profile
// signer at f.Created.
func (ca *CA) Profile(f Fields) ([]byte, error) {
	content, err := f.Plist()
	if err != nil {
		return nil, err
	}
	at := f.Created
	if at.IsZero() {
		at = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	return ca.Sign(content, SignOptions{SigningTime: at})
}

// SignOptions vary how Sign signs. Zero values sign as Apple does, with
// the CA's profile signer.
type SignOptions struct {
	Digest      crypto.Hash // crypto.SHA1 (Apple's); or crypto.SHA256
	SigningTime time.Time   // none when zero
	// NoSignedAttrs signs the content itself (RFC 5652 allows it for
	// data content).
	NoSignedAttrs bool
	// Cert and Key sign instead of the profile signer (which then is not
	// in the CMS).
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
	// TamperContent changes one letter of the content after signing (the
	// case of the first letter inside a <string>, so the property list
	// still parses).
	TamperContent bool
}

// Sign wraps content in a DER CMS SignedData signed with RSA PKCS #1 v1.5,
// carrying the signer, intermediate and root certificates as Apple's
// profiles do.
func (ca *CA) Sign(content []byte, o SignOptions) ([]byte, error) {
	if o.Digest == 0 {
		o.Digest = crypto.SHA1
	}
	digestOID := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA1: oidSHA1, crypto.SHA256: oidSHA256}[o.Digest]
	if digestOID == nil {
		return nil, fmt.Errorf("profiletest: digest %v not offered", o.Digest)
	}
	cert, key := ca.Signer, ca.signerKey
	if o.Cert != nil {
		cert, key = o.Cert, o.Key
	}
	h := o.Digest.New()
	h.Write(content)
	contentDigest := h.Sum(nil)

	si := signerInfo{Version: 1, DigestAlgorithm: algorithm(digestOID), SignatureAlgorithm: algorithm(oidRSA)}
	ias, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	if err != nil {
		return nil, err
	}
	si.SID = asn1.RawValue{FullBytes: ias}
	signed := content
	if !o.NoSignedAttrs {
		set, err := signedAttributes(contentDigest, o.SigningTime)
		if err != nil {
			return nil, err
		}
		signed = set
		implicit := append([]byte{0xa0}, set[1:]...) // stored as [0] IMPLICIT
		si.SignedAttrs = asn1.RawValue{FullBytes: implicit}
	}
	h = o.Digest.New()
	h.Write(signed)
	if si.Signature, err = rsa.SignPKCS1v15(rand.Reader, key, o.Digest, h.Sum(nil)); err != nil {
		return nil, err
	}
	if o.TamperContent {
		content = tamper(content)
	}
	var certs []byte
	for _, c := range []*x509.Certificate{ca.Intermediate, ca.Root, cert} {
		certs = append(certs, c.Raw...)
	}
	sd := signedData{
		Version: 1, DigestAlgorithms: []pkix.AlgorithmIdentifier{algorithm(digestOID)},
		EncapContentInfo: encapContentInfo{EContentType: oidData, EContent: content},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos:      []signerInfo{si},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: asn1.RawValue{
		Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}

func tamper(content []byte) []byte {
	out := append([]byte{}, content...)
	if start := bytes.Index(out, []byte("<string>")); start >= 0 {
		for i := start + len("<string>"); i < len(out); i++ {
			if c := out[i] | 0x20; c >= 'a' && c <= 'z' {
				out[i] ^= 0x20
				return out
			}
		}
	}
	out[len(out)/2] ^= 0x20
	return out
}

// signedAttributes returns the DER SET OF the content-type, signing-time
// (when set) and message-digest attributes, sorted as DER requires.
func signedAttributes(digest []byte, at time.Time) ([]byte, error) {
	type attr struct {
		Type   asn1.ObjectIdentifier
		Values []any `asn1:"set"`
	}
	attrs := []attr{{oidContentType, []any{oidData}}, {oidMessageDigest, []any{digest}}}
	if !at.IsZero() {
		attrs = append(attrs, attr{oidSigningTime, []any{at.UTC()}})
	}
	var enc [][]byte
	for _, a := range attrs {
		b, err := asn1.Marshal(a)
		if err != nil {
			return nil, err
		}
		enc = append(enc, b)
	}
	sort.Slice(enc, func(i, j int) bool { return bytes.Compare(enc[i], enc[j]) < 0 })
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(enc, nil)})
}

func algorithm(oid asn1.ObjectIdentifier) pkix.AlgorithmIdentifier {
	return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}
}

// The RFC 5652 shapes, written independently of the reader in package
// profile so that each checks the other.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue
	SignerInfos      []signerInfo `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
)
