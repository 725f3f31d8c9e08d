// Package appattesttest is a test CA for package appattest: it issues
// attestation and assertion objects of exactly Apple's structure (a
// P-384 root and intermediate, a P-256 credential certificate with
// Apple's extensions, Apple's authenticator data, COSE key and CBOR
// encodings), from a spec in which every field can be changed, so that a
// test can make an object that fails exactly one check.
//
// Its roots are made fresh in memory for each CA and trusted only where
// a test passes CA.Root to appattest.VerifyAttestation.
package appattesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/internal/issuer"
	"github.com/fxamacker/cbor/v2"
)

// RootName is the name of a test CA's root (Key.Root of its keys).
const RootName = "test"

// DefaultLeafLifetime is how long a leaf is valid by default: three
// days, the shortest Apple issues.
const DefaultLeafLifetime = 72 * time.Hour

// CA is a test App Attest CA.
type CA struct {
	ca *issuer.CA
}

// NewCA makes a CA whose root and intermediate are valid from a year
// before now to ten years after.
func NewCA() (*CA, error) {
	now := time.Now()
	ca, err := issuer.NewCA(issuer.Names{Root: "Test App Attestation Root CA", Intermediate: "Test App Attestation CA 1", Organization: "appattesttest (not Apple)"},
		now.AddDate(-1, 0, 0), now.AddDate(10, 0, 0))
	if err != nil {
		return nil, err
	}
	return &CA{ca: ca}, nil
}

// Root returns the CA's root, named RootName, to pass in
// appattest.AttestationOptions.Roots.
func (c *CA) Root() *appattest.Root {
	return &appattest.Root{Name: RootName, Certificate: c.ca.Root}
}

// Device is an app install's App Attest key, as the Secure Enclave keeps
// it.
type Device struct {
	// Key is the private key.
	Key *ecdsa.PrivateKey
	// AppID is "TEAMID.bundle.id".
	AppID string
	// Environment selects the AAGUID.
	Environment appattest.Environment

	mu      sync.Mutex
	counter uint32
}

// NewDevice makes a key for appID in env.
func NewDevice(appID string, env appattest.Environment) (*Device, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Device{Key: k, AppID: appID, Environment: env}, nil
}

// KeyID is the key id generateKey returns: SHA-256 of the public key.
func (d *Device) KeyID() []byte { return issuer.KeyID(&d.Key.PublicKey) }

// Attestation is everything that goes into an attestation object.
// CA.Template fills it as Apple would; a test changes one field.
type Attestation struct {
	// Format is fmt ("apple-appattest").
	Format string
	// RPIDHash is SHA-256 of the App ID.
	RPIDHash []byte
	// Flags is the authenticator data's flags (0x40: AT; Apple's 2026
	// sample sets no ED flag although it appends extensions).
	Flags byte
	// Counter is the sign count (0).
	Counter uint32
	// AAGUID is "appattestdevelop" or "appattest" and seven zero bytes.
	AAGUID []byte
	// CredentialID is the key id.
	CredentialID []byte
	// CredentialKey is the key encoded as the COSE key.
	CredentialKey *ecdsa.PublicKey
	// COSEKey, when not nil, replaces the encoding of CredentialKey.
	COSEKey []byte
	// Extensions is appended to the authenticator data after the COSE
	// key (nil: none; see Extensions2026).
	Extensions []byte
	// ClientDataHash is what the app passed to attestKey.
	ClientDataHash []byte
	// Nonce, when not nil, replaces SHA-256(authData ‖ ClientDataHash) in
	// the leaf; NonceExtension, when not nil, replaces the whole
	// extension value; OmitNonce leaves the extension out.
	Nonce, NonceExtension []byte
	OmitNonce             bool
	// CertifiedKey is the key the leaf certifies.
	CertifiedKey *ecdsa.PublicKey
	// NotBefore and NotAfter bound the leaf's validity.
	NotBefore, NotAfter time.Time
	// KeyPolicy is the value of the leaf's extension
	// 1.2.840.113635.100.8.6 (nil: none; see MacKeyPolicy).
	KeyPolicy []byte
	// AppAttestEKU adds Apple's 2026 extended key usage
	// 1.2.840.113635.100.4.24 to the leaf.
	AppAttestEKU bool
	// Receipt is attStmt.receipt.
	Receipt []byte
	// AppID goes into the leaf's extension 1.2.840.113635.100.8.5 (which
	// verifiers do not read).
	AppID string
}

// Template returns the attestation Apple would make of d's key for
// clientDataHash, its leaf valid from a minute before now for
// DefaultLeafLifetime, in the pre-2026 shape (no key policy, no EKU, no
// extensions).
func (d *Device) Template(clientDataHash []byte, now time.Time) Attestation {
	aaguid := issuer.AAGUIDProduction
	if d.Environment == appattest.Development {
		aaguid = issuer.AAGUIDDevelopment
	}
	return Attestation{
		Format:         "apple-appattest",
		RPIDHash:       issuer.RPIDHash(d.AppID),
		Flags:          0x40,
		AAGUID:         aaguid,
		CredentialID:   d.KeyID(),
		CredentialKey:  &d.Key.PublicKey,
		ClientDataHash: clientDataHash,
		CertifiedKey:   &d.Key.PublicKey,
		NotBefore:      now.Add(-time.Minute),
		NotAfter:       now.Add(DefaultLeafLifetime),
		Receipt:        []byte("appattesttest receipt: not a PKCS#7 object, proves nothing"),
		AppID:          d.AppID,
	}
}

// Template2026 is Template in the 2026 shape of Apple's Attestation
// Object Validation Guide sample: the leaf carries the key policy
// (MacKeyPolicy) and Apple's extended key usage, and the authenticator
// data appends an extensions map (validation category 1, bundle version
// "1") without setting the ED flag.
func (d *Device) Template2026(clientDataHash []byte, now time.Time) Attestation {
	a := d.Template(clientDataHash, now)
	a.KeyPolicy = MacKeyPolicy
	a.AppAttestEKU = true
	a.Extensions = Extensions2026(1, "1")
	return a
}

// AuthData returns the authenticator data a describes.
func (a Attestation) AuthData() []byte {
	cose := a.COSEKey
	if cose == nil && a.CredentialKey != nil {
		cose = issuer.COSEKey(a.CredentialKey)
	}
	return issuer.AuthData{
		RPIDHash: a.RPIDHash, Flags: a.Flags, Counter: a.Counter, AAGUID: a.AAGUID,
		CredentialID: a.CredentialID, COSEKey: cose, Extensions: a.Extensions,
	}.Bytes()
}

// Issue makes the attestation object a describes, signed by the CA.
func (c *CA) Issue(a Attestation) ([]byte, error) {
	if a.CertifiedKey == nil {
		return nil, errors.New("appattesttest: no CertifiedKey")
	}
	authData := a.AuthData()
	nonceExt := a.NonceExtension
	if nonceExt == nil && !a.OmitNonce {
		nonce := a.Nonce
		if nonce == nil {
			nonce = issuer.Nonce(authData, a.ClientDataHash)
		}
		nonceExt = issuer.NonceValue(nonce)
	}
	leaf, err := c.ca.IssueLeaf(issuer.Leaf{
		PublicKey:      a.CertifiedKey,
		NonceExtension: nonceExt,
		KeyPolicy:      a.KeyPolicy,
		AppAttestEKU:   a.AppAttestEKU,
		AppID:          a.AppID,
		OSVersion:      "27.0",
		NotBefore:      a.NotBefore,
		NotAfter:       a.NotAfter,
	})
	if err != nil {
		return nil, err
	}
	return issuer.AttestationObject(a.Format, [][]byte{leaf, c.ca.Intermediate.Raw}, a.Receipt, authData)
}

// Attest makes a good attestation of d's key for clientDataHash, in the
// 2026 shape, valid now.
func (c *CA) Attest(d *Device, clientDataHash []byte) ([]byte, error) {
	return c.Issue(d.Template2026(clientDataHash, time.Now()))
}

// Assertion is everything that goes into an assertion object.
type Assertion struct {
	// RPIDHash is SHA-256 of the App ID.
	RPIDHash []byte
	// Flags is the authenticator data's flags.
	Flags byte
	// Counter is the key's counter.
	Counter uint32
	// Extensions is appended to the authenticator data (nil: none).
	Extensions []byte
	// ClientDataHash is what the app signs.
	ClientDataHash []byte
	// Key signs.
	Key *ecdsa.PrivateKey
	// Signature, when not nil, replaces the signature.
	Signature []byte
}

// AssertionTemplate returns the assertion d would make next of
// clientDataHash (pre-2026 shape: no extensions), advancing d's counter.
func (d *Device) AssertionTemplate(clientDataHash []byte) Assertion {
	d.mu.Lock()
	d.counter++
	n := d.counter
	d.mu.Unlock()
	return Assertion{RPIDHash: issuer.RPIDHash(d.AppID), Counter: n, ClientDataHash: clientDataHash, Key: d.Key}
}

// Assert makes d's next assertion of clientDataHash in the 2026 shape
// (flags AT and ED, an extensions map after the counter).
func (d *Device) Assert(clientDataHash []byte) ([]byte, error) {
	a := d.AssertionTemplate(clientDataHash)
	a.Flags = 0xc0
	a.Extensions = Extensions2026(1, "1")
	return a.Issue()
}

// AuthData returns the authenticator data a describes.
func (a Assertion) AuthData() []byte {
	return issuer.AssertionAuthData(a.RPIDHash, a.Flags, a.Counter, a.Extensions)
}

// Issue makes the assertion object a describes.
func (a Assertion) Issue() ([]byte, error) {
	authData := a.AuthData()
	sig := a.Signature
	if sig == nil {
		var err error
		if sig, err = issuer.SignAssertion(a.Key, authData, a.ClientDataHash); err != nil {
			return nil, err
		}
	}
	return issuer.AssertionObject(sig, authData)
}

// MacKeyPolicy is the value of extension 1.2.840.113635.100.8.6 in a
// real macOS 27 credential certificate (appattest's testdata: "hellas
// macOS 27"), the key's access-control policy. Apple's own 2026 sample
// (an iPhone's) carries a policy of the same form.
var MacKeyPolicy = issuer.MacKeyPolicy

// Extensions2026 encodes the extensions map iOS 27 appends to the
// authenticator data: apple_validation_category_01 (4 bytes,
// little-endian) and apple_bundle_version_01 (text).
func Extensions2026(category uint32, bundleVersion string) []byte {
	b, err := issuer.Extensions(map[string]any{
		appattest.ExtValidationCategory: issuer.ValidationCategory(category),
		appattest.ExtBundleVersion:      bundleVersion,
	})
	if err != nil {
		panic(fmt.Sprintf("appattesttest: %v", err)) // a map of two known types always encodes
	}
	return b
}

// Object is an attestation object taken apart, so that a test can change
// a certificate or the authenticator data bit by bit and put it back.
type Object struct {
	Format   string
	X5C      [][]byte
	Receipt  []byte
	AuthData []byte
}

// ParseObject takes an attestation object apart.
func ParseObject(b []byte) (*Object, error) {
	var raw struct {
		Format  string `cbor:"fmt"`
		AttStmt struct {
			X5C     [][]byte `cbor:"x5c"`
			Receipt []byte   `cbor:"receipt"`
		} `cbor:"attStmt"`
		AuthData []byte `cbor:"authData"`
	}
	if err := cbor.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	return &Object{raw.Format, raw.AttStmt.X5C, raw.AttStmt.Receipt, raw.AuthData}, nil
}

// Marshal puts the object back together in Apple's encoding.
func (o *Object) Marshal() ([]byte, error) {
	return issuer.AttestationObject(o.Format, o.X5C, o.Receipt, o.AuthData)
}

// COSEKey encodes a P-256 key as Apple's COSE key
// ({1: 2, 3: -7, -1: 1, -2: x, -3: y}, in that order).
func COSEKey(pub *ecdsa.PublicKey) []byte { return issuer.COSEKey(pub) }

// AssertionParts takes an assertion object apart.
func AssertionParts(b []byte) (signature, authData []byte, err error) {
	var raw struct {
		Signature []byte `cbor:"signature"`
		AuthData  []byte `cbor:"authenticatorData"`
	}
	err = cbor.Unmarshal(b, &raw)
	return raw.Signature, raw.AuthData, err
}

// AssertionObject puts an assertion object together.
func AssertionObject(signature, authData []byte) ([]byte, error) {
	return issuer.AssertionObject(signature, authData)
}
