// Package devattest makes development App Attest keys: software P-256
// keys attested by a development root that ships in this repository,
// private key included (development-only/). They let the Mac side's
// simulator and tests register and sign exactly as an app with a Secure
// Enclave key does, on any machine.
//
// A development attestation PROVES NOTHING: anyone can make one. Package
// appattest never trusts the development root unless a caller passes
// Root() in AttestationOptions.Roots, and a key verified through it says
// so (Key.Root == RootName), so that a key store can refuse its
// assertions unless development keys are allowed.
//
// The attestations have Apple's structure in its macOS 27 shape: a
// two-level chain, the key-policy extension and Apple's extended key
// usage in the leaf, the development AAGUID unless the key asks for
// production.
package devattest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/internal/issuer"
)

// RootName is the name development keys are recorded with (Key.Root).
const RootName = "development"

// LeafLifetime is how long a development credential certificate is
// valid: three days, as Apple's shortest-lived leaves.
const LeafLifetime = 72 * time.Hour

var (
	//go:embed development-only/root.pem
	rootPEM []byte
	//go:embed development-only/intermediate.pem
	intermediatePEM []byte
	//go:embed development-only/intermediate-key.pem
	intermediateKeyPEM []byte
)

// ca is the development CA, parsed once.
var ca = sync.OnceValues(func() (*issuer.CA, error) {
	root, err := parseCert(rootPEM)
	if err != nil {
		return nil, fmt.Errorf("devattest: root: %w", err)
	}
	inter, err := parseCert(intermediatePEM)
	if err != nil {
		return nil, fmt.Errorf("devattest: intermediate: %w", err)
	}
	block, _ := pem.Decode(intermediateKeyPEM)
	if block == nil {
		return nil, errors.New("devattest: intermediate key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devattest: intermediate key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("devattest: intermediate key: not ECDSA")
	}
	return &issuer.CA{Root: root, Intermediate: inter, IntermediateKey: key}, nil
})

func parseCert(p []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(p)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Root returns the development root, named RootName, for
// appattest.AttestationOptions.Roots. Passing it makes every development
// attestation pass: do it only where development keys are wanted.
func Root() *appattest.Root {
	c, err := ca()
	if err != nil {
		panic(err) // the embedded files are broken: the package's tests catch it
	}
	return &appattest.Root{Name: RootName, Certificate: c.Root}
}

// RootPEM returns the development root certificate in PEM, for tools
// that take a root file (attestd gate --appattest-root).
func RootPEM() []byte { return append([]byte(nil), rootPEM...) }

// Key is a software App Attest key for one App ID. Its fields are
// exported so that a simulator can keep it between runs (PrivateKey with
// x509.MarshalPKCS8PrivateKey, and Counter); Attest and Assert are safe
// for concurrent use.
type Key struct {
	// AppID is "TEAMID.bundle.id".
	AppID string
	// Environment selects the AAGUID: Development (the default when
	// empty) or Production.
	Environment appattest.Environment
	// PrivateKey is the key.
	PrivateKey *ecdsa.PrivateKey
	// Counter is the counter of the last assertion (0 after the
	// attestation); Assert increments it.
	Counter uint32
	// Extensions, when not nil, is appended to the authenticator data of
	// attestations and assertions as a CBOR map (e.g.
	// appattest.ExtBundleVersion: "1").
	Extensions map[string]any

	mu sync.Mutex
}

// NewKey makes a development key for appID.
func NewKey(appID string) (*Key, error) {
	if appID == "" {
		return nil, errors.New("devattest: no App ID")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{AppID: appID, Environment: appattest.Development, PrivateKey: k}, nil
}

// ID is the key id (what generateKey returns): SHA-256 of the public key
// as an X9.62 uncompressed point.
func (k *Key) ID() []byte { return issuer.KeyID(&k.PrivateKey.PublicKey) }

// Attest makes an attestation object of the key for clientDataHash, as
// attestKey does, certified by the development root; its leaf is valid
// from a minute ago for LeafLifetime.
func (k *Key) Attest(clientDataHash []byte) ([]byte, error) {
	return k.AttestAt(clientDataHash, time.Now())
}

// AttestAt is Attest with the leaf valid from a minute before now.
func (k *Key) AttestAt(clientDataHash []byte, now time.Time) ([]byte, error) {
	c, err := ca()
	if err != nil {
		return nil, err
	}
	aaguid := issuer.AAGUIDDevelopment
	if k.Environment == appattest.Production {
		aaguid = issuer.AAGUIDProduction
	}
	ext, err := k.extensions()
	if err != nil {
		return nil, err
	}
	pub := &k.PrivateKey.PublicKey
	authData := issuer.AuthData{
		RPIDHash: issuer.RPIDHash(k.AppID), Flags: 0x40, AAGUID: aaguid,
		CredentialID: issuer.KeyID(pub), COSEKey: issuer.COSEKey(pub), Extensions: ext,
	}.Bytes()
	leaf, err := c.IssueLeaf(issuer.Leaf{
		PublicKey:      pub,
		NonceExtension: issuer.NonceValue(issuer.Nonce(authData, clientDataHash)),
		KeyPolicy:      issuer.MacKeyPolicy,
		AppAttestEKU:   true,
		AppID:          k.AppID,
		OSVersion:      "27.0",
		NotBefore:      now.Add(-time.Minute),
		NotAfter:       now.Add(LeafLifetime),
	})
	if err != nil {
		return nil, err
	}
	receipt := []byte("attestd development receipt: not from Apple, proves nothing")
	return issuer.AttestationObject("apple-appattest", [][]byte{leaf, c.Intermediate.Raw}, receipt, authData)
}

// Assert makes the key's next assertion of clientDataHash, as
// generateAssertion does: the counter grows by one.
func (k *Key) Assert(clientDataHash []byte) ([]byte, error) {
	ext, err := k.extensions()
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.Counter == ^uint32(0) {
		k.mu.Unlock()
		return nil, errors.New("devattest: the key's counter is exhausted: make a new key")
	}
	k.Counter++
	n := k.Counter
	k.mu.Unlock()
	flags := byte(0x40) // Apple sets AT on assertions, and ED with extensions
	if ext != nil {
		flags |= 0x80
	}
	authData := issuer.AssertionAuthData(issuer.RPIDHash(k.AppID), flags, n, ext)
	sig, err := issuer.SignAssertion(k.PrivateKey, authData, clientDataHash)
	if err != nil {
		return nil, err
	}
	return issuer.AssertionObject(sig, authData)
}

func (k *Key) extensions() ([]byte, error) {
	if k.Extensions == nil {
		return nil, nil
	}
	b, err := issuer.Extensions(k.Extensions)
	if err != nil {
		return nil, fmt.Errorf("devattest: extensions: %w", err)
	}
	return b, nil
}
