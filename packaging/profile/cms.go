package profile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha1" // profiles are digested with SHA-1 (see hashFor)
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// The CMS (RFC 5652) object identifiers a profile uses.
var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// The ASN.1 shapes of RFC 5652, as encoding/asn1 reads them. Only DER is
// read: the Mac profiles Apple issues are DER (definite lengths, primitive
// OCTET STRING), and a BER (indefinite-length) object is refused.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,optional,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

// envelope is a parsed CMS SignedData with attached content and one
// signer: what a provisioning profile is.
type envelope struct {
	content      []byte
	certificates []*x509.Certificate
	signer       *x509.Certificate // from certificates; nil if not there
	digestAlg    asn1.ObjectIdentifier
	sigAlg       asn1.ObjectIdentifier
	signature    []byte
	// signedAttrs is the DER of the signed attributes as signed (with the
	// SET OF tag, RFC 5652 section 5.4); nil when there are none, and the
	// signature is then over the content itself.
	signedAttrs   []byte
	messageDigest []byte
	signingTime   time.Time
}

// parseEnvelope reads the CMS structure of a profile. It checks the shape
// (attached id-data content, exactly one signer, the signed attributes
// RFC 5652 requires) but no cryptography: see envelope.verify.
func parseEnvelope(der []byte) (*envelope, error) {
	var ci contentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not DER-encoded CMS: %v", err)
	case len(rest) > 0:
		return nil, fmt.Errorf("%d bytes after the CMS object", len(rest))
	case !ci.ContentType.Equal(oidSignedData):
		return nil, fmt.Errorf("CMS content type %v, want signed data %v", ci.ContentType, oidSignedData)
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("CMS signed data: %v", err)
	} else if len(rest) > 0 {
		return nil, errors.New("bytes after the CMS signed data")
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) {
		return nil, fmt.Errorf("CMS encapsulated content type %v, want data", sd.EncapContentInfo.EContentType)
	}
	if len(sd.EncapContentInfo.EContent) == 0 {
		return nil, errors.New("CMS has no attached content (a detached signature is not a profile)")
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("CMS has %d signers, want 1", len(sd.SignerInfos))
	}
	e := &envelope{content: sd.EncapContentInfo.EContent}
	if e.certificates, err = parseCertificates(sd.Certificates); err != nil {
		return nil, err
	}
	si := sd.SignerInfos[0]
	e.digestAlg, e.sigAlg, e.signature = si.DigestAlgorithm.Algorithm, si.SignatureAlgorithm.Algorithm, si.Signature
	if e.signer, err = findSigner(si.SID, e.certificates); err != nil {
		return nil, err
	}
	if len(si.SignedAttrs.FullBytes) > 0 {
		if err := e.readSignedAttrs(si.SignedAttrs); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// parseCertificates reads the [0] IMPLICIT CertificateSet. Choices other
// than a plain certificate (attribute certificates, other formats) are
// skipped: they cannot sign.
func parseCertificates(raw asn1.RawValue) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	b := raw.Bytes
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return nil, fmt.Errorf("CMS certificates: %v", err)
		}
		b = rest
		if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagSequence {
			continue
		}
		c, err := x509.ParseCertificate(v.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("CMS certificate: %v", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// findSigner returns the certificate the signer identifier names: by
// issuer and serial number, or by subject key identifier ([0]).
func findSigner(sid asn1.RawValue, certs []*x509.Certificate) (*x509.Certificate, error) {
	switch {
	case sid.Class == asn1.ClassUniversal && sid.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if rest, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil || len(rest) > 0 || ias.Serial == nil {
			return nil, errors.New("CMS signer identifier: malformed issuer and serial number")
		}
		for _, c := range certs {
			if bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) && c.SerialNumber.Cmp(ias.Serial) == 0 {
				return c, nil
			}
		}
	case sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 && !sid.IsCompound:
		for _, c := range certs {
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sid.Bytes) {
				return c, nil
			}
		}
	default:
		return nil, errors.New("CMS signer identifier: neither issuer and serial number nor subject key identifier")
	}
	return nil, errors.New("CMS does not carry its signer's certificate")
}

// readSignedAttrs keeps the signed attributes as signed and reads the
// content type (must be data), the message digest (required) and the
// signing time (optional), each at most once.
func (e *envelope) readSignedAttrs(raw asn1.RawValue) error {
	// Signed as an explicit SET OF (tag 0x31), stored as [0] IMPLICIT.
	e.signedAttrs = append([]byte{0x31}, raw.FullBytes[1:]...)
	seen := map[string]bool{}
	b := raw.Bytes
	for len(b) > 0 {
		var a attribute
		rest, err := asn1.Unmarshal(b, &a)
		if err != nil {
			return fmt.Errorf("CMS signed attributes: %v", err)
		}
		b = rest
		key := a.Type.String()
		if seen[key] && (a.Type.Equal(oidContentType) || a.Type.Equal(oidMessageDigest) || a.Type.Equal(oidSigningTime)) {
			return fmt.Errorf("CMS signed attribute %v appears twice", a.Type)
		}
		seen[key] = true
		if err := e.readAttribute(a); err != nil {
			return err
		}
	}
	if !seen[oidContentType.String()] || e.messageDigest == nil {
		return errors.New("CMS signed attributes lack the content type or the message digest (RFC 5652 section 5.3)")
	}
	return nil
}

func (e *envelope) readAttribute(a attribute) error {
	one := func(v any) error {
		rest, err := asn1.Unmarshal(a.Values.Bytes, v)
		if err != nil || len(rest) > 0 {
			return fmt.Errorf("CMS signed attribute %v: want exactly one well-formed value", a.Type)
		}
		return nil
	}
	switch {
	case a.Type.Equal(oidContentType):
		var t asn1.ObjectIdentifier
		if err := one(&t); err != nil {
			return err
		}
		if !t.Equal(oidData) {
			return fmt.Errorf("CMS signed content type %v, want data", t)
		}
	case a.Type.Equal(oidMessageDigest):
		var d []byte
		if err := one(&d); err != nil {
			return err
		}
		if d == nil {
			d = []byte{}
		}
		e.messageDigest = d
	case a.Type.Equal(oidSigningTime):
		var t time.Time
		if err := one(&t); err != nil {
			return err
		}
		e.signingTime = t
	}
	return nil
}

// verify checks the signature: the content's digest is the signed message
// digest, and the signer certificate's key signed the signed attributes
// (or, without them, the content). It says nothing about who the signer
// is: see Profile.Verify.
func (e *envelope) verify() error {
	if e.signer == nil {
		return errors.New("no signer certificate")
	}
	h, err := hashFor(e.digestAlg)
	if err != nil {
		return err
	}
	signed := e.content
	if e.signedAttrs != nil {
		d := h.New()
		d.Write(e.content)
		if !bytes.Equal(d.Sum(nil), e.messageDigest) {
			return errors.New("the content's digest is not the signed message digest: the profile was changed after it was signed")
		}
		signed = e.signedAttrs
	}
	d := h.New()
	d.Write(signed)
	return checkSignature(e.signer.PublicKey, e.sigAlg, h, d.Sum(nil), e.signature)
}

// hashFor maps a CMS digest algorithm to a hash. SHA-1 is accepted because
// Apple digests provisioning profiles with it (every Mac profile seen, to
// 2025): a forgery would need a chosen-prefix collision on content Apple
// agreed to sign.
func hashFor(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	switch {
	case oid.Equal(oidSHA1):
		return crypto.SHA1, nil
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("unsupported CMS digest algorithm %v", oid)
}

// checkSignature verifies an RSA PKCS #1 v1.5 or ECDSA signature over
// digest. A signature algorithm that names a hash must name the digest
// algorithm's.
func checkSignature(pub any, sigAlg asn1.ObjectIdentifier, h crypto.Hash, digest, sig []byte) error {
	named := map[string]crypto.Hash{
		oidSHA1WithRSA.String(): crypto.SHA1, oidSHA256WithRSA.String(): crypto.SHA256,
		oidSHA384WithRSA.String(): crypto.SHA384, oidSHA512WithRSA.String(): crypto.SHA512,
		oidECDSASHA256.String(): crypto.SHA256, oidECDSASHA384.String(): crypto.SHA384, oidECDSASHA512.String(): crypto.SHA512,
	}
	if nh, ok := named[sigAlg.String()]; ok && nh != h {
		return fmt.Errorf("signature algorithm %v does not match digest algorithm %v", sigAlg, h)
	}
	isECDSA := sigAlg.Equal(oidECDSASHA256) || sigAlg.Equal(oidECDSASHA384) || sigAlg.Equal(oidECDSASHA512)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if _, ok := named[sigAlg.String()]; (!ok && !sigAlg.Equal(oidRSA)) || isECDSA {
			return fmt.Errorf("signature algorithm %v is not RSA PKCS #1 v1.5", sigAlg)
		}
		if err := rsa.VerifyPKCS1v15(k, h, digest, sig); err != nil {
			return fmt.Errorf("RSA signature: %v", err)
		}
		return nil
	case *ecdsa.PublicKey:
		if !isECDSA {
			return fmt.Errorf("signature algorithm %v is not ECDSA", sigAlg)
		}
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("signer key of type %T is not supported", pub)
}
