package appattest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MaxAttestationSize bounds an attestation object. Apple's are about
// 5.5 KB, most of it the receipt.
const MaxAttestationSize = 64 << 10

// Environment is App Attest's environment, told by the AAGUID.
type Environment string

// The two environments.
const (
	// Development: AAGUID "appattestdevelop"; apps built with the
	// development entitlement.
	Development Environment = "development"
	// Production: AAGUID "appattest" and seven zero bytes; App Store,
	// TestFlight and Developer ID builds.
	Production Environment = "production"
)

var (
	aaguidDevelopment = []byte("appattestdevelop")
	aaguidProduction  = append([]byte("appattest"), 0, 0, 0, 0, 0, 0, 0)
)

// Extension OIDs of Apple's credential certificate.
var (
	oidNonce     = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}
	oidKeyPolicy = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 6}
)

// AttestationOptions says what VerifyAttestation accepts. Its zero
// value accepts nothing: AppIDs and ClientDataHash must be set.
type AttestationOptions struct {
	// AppIDs are the accepted App IDs, "TEAMID.bundle.id".
	AppIDs []string
	// ClientDataHash is what the app passed to attestKey (Apple's name;
	// any non-empty bytes: Apple's own samples pass 21 or 24 raw bytes).
	ClientDataHash []byte
	// Environments are the accepted environments; empty means
	// Production only.
	Environments []Environment
	// KeyID, when not nil, is the key id the client claims (what
	// generateKey returned, decoded): the attested key must be that one.
	KeyID []byte
	// Now is the time the chain must be valid at; zero means time.Now().
	// Leaves live from three days to about a year, so a stored object
	// verifies only at a time inside its leaf's window.
	Now time.Time
	// Roots are the roots the chain may end at; nil means Apple's root
	// only. Pass the development root here (and only here) to accept
	// development keys; the key's Root names the one its chain reached.
	Roots []*Root
}

// Key is an attested key: what a server stores to check the key's
// assertions later.
type Key struct {
	// ID is the key id: SHA-256 of PublicKey as an X9.62 uncompressed
	// point (32 bytes), the credential id of the authenticator data.
	ID []byte
	// PublicKey is the attested P-256 key.
	PublicKey *ecdsa.PublicKey
	// AppID is the accepted App ID the attestation was made for.
	AppID string
	// Environment is the key's environment, from its AAGUID.
	Environment Environment
	// Root is the Name of the root the chain ended at: AppleRootName, or
	// the name of another root the caller passed (e.g. "development").
	Root string
	// Receipt is Apple's receipt (PKCS#7), for the fraud metric; it is
	// not parsed.
	Receipt []byte
	// KeyPolicy is the value of the credential certificate's extension
	// 1.2.840.113635.100.8.6 (DER, as certified), the key's
	// access-control policy: on macOS 27 it binds the key to Full
	// Security mode and System Integrity Protection. Nil when absent.
	KeyPolicy []byte
	// Extensions is the authenticator data's extensions map, nil when
	// absent (before iOS 27 and macOS 27).
	Extensions *Extensions
	// Certificate is the credential (leaf) certificate.
	Certificate *x509.Certificate
}

// attestationObject is the CBOR attestation object. Unknown keys are
// ignored (they carry nothing that is checked); duplicates are refused.
type attestationObject struct {
	Format   string `cbor:"fmt"`
	AttStmt  attStmt
	AuthData []byte `cbor:"authData"`
}

type attStmt struct {
	X5C     [][]byte `cbor:"x5c"`
	Receipt []byte   `cbor:"receipt"`
}

// VerifyAttestation checks an App Attest attestation object as Apple's
// documentation says (the package doc lists the checks in order) and
// returns the attested key. A refusal is an *Error (see Reason); a
// caller's mistake (no App ID, no clientDataHash, a root without a name)
// is another error.
func VerifyAttestation(object []byte, opts AttestationOptions) (*Key, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if len(opts.ClientDataHash) == 0 {
		return nil, errors.New("appattest: no clientDataHash: set AttestationOptions.ClientDataHash to what the app passed to attestKey")
	}
	return verifyAttestation(object, opts, true)
}

// AttestedKey returns the key an attestation certifies, making every
// check VerifyAttestation makes but the nonce's (opts.ClientDataHash is
// ignored): the chain verifies at opts.Now to one of opts.Roots, and the
// authenticator data (App ID, counter, AAGUID, key id, COSE key) is bound
// to the leaf. It proves the key is one the root certified for an
// accepted App ID, not that the attestation answers a challenge of
// yours: use it to check assertions of a key whose attestation is at
// hand without its challenge (debugging tools), never to register a key.
func AttestedKey(object []byte, opts AttestationOptions) (*Key, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	return verifyAttestation(object, opts, false)
}

// verifyAttestation is VerifyAttestation, with the nonce checked or not.
func verifyAttestation(object []byte, opts AttestationOptions, checkNonce bool) (*Key, error) {
	obj, err := decodeAttestation(object)
	if err != nil {
		return nil, err
	}
	ad, err := parseAttestationAuthData(obj.AuthData)
	if err != nil {
		return nil, err
	}
	key := &Key{Receipt: obj.AttStmt.Receipt, ID: ad.credentialID}
	if err := checkAuthData(ad, key, opts); err != nil {
		return nil, err
	}
	certs, err := parseChain(obj.AttStmt.X5C)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	if err := checkLeaf(leaf, ad, obj.AuthData, key, opts.ClientDataHash, checkNonce); err != nil {
		return nil, err
	}
	if key.Root, err = verifyChain(certs, opts); err != nil {
		return nil, err
	}
	if key.Extensions, err = parseExtensions(ad.rawExtensions); err != nil {
		return nil, err
	}
	key.Certificate = leaf
	key.PublicKey = leaf.PublicKey.(*ecdsa.PublicKey)
	key.ID = bytes.Clone(key.ID)
	return key, nil
}

func (o *AttestationOptions) check() error {
	if len(o.AppIDs) == 0 {
		return errors.New("appattest: no App ID accepted: set AttestationOptions.AppIDs (\"TEAMID.bundle.id\")")
	}
	for _, e := range o.Environments {
		if e != Development && e != Production {
			return fmt.Errorf("appattest: unknown environment %q: want %q or %q", e, Development, Production)
		}
	}
	for _, r := range o.Roots {
		if err := r.check(); err != nil {
			return err
		}
	}
	return nil
}

// decodeAttestation decodes the CBOR envelope and checks its shape.
func decodeAttestation(object []byte) (*attestationObject, error) {
	if len(object) > MaxAttestationSize {
		return nil, refuse(ErrBadFormat, nil, "%d bytes, more than %d", len(object), MaxAttestationSize)
	}
	var obj attestationObject
	if err := objectMode.Unmarshal(object, &obj); err != nil {
		return nil, refuse(ErrBadFormat, err, "not a CBOR attestation object")
	}
	switch {
	case obj.Format != "apple-appattest":
		return nil, refuse(ErrBadFormat, nil, "fmt %q, want \"apple-appattest\"", obj.Format)
	case len(obj.AttStmt.X5C) < 2 || len(obj.AttStmt.X5C) > 4:
		return nil, refuse(ErrBadFormat, nil, "attStmt.x5c holds %d certificates, want the credential certificate and its CA (2)", len(obj.AttStmt.X5C))
	case len(obj.AttStmt.Receipt) == 0:
		return nil, refuse(ErrBadFormat, nil, "attStmt has no receipt")
	case len(obj.AuthData) == 0:
		return nil, refuse(ErrBadFormat, nil, "no authData")
	}
	return &obj, nil
}

// checkAuthData runs the checks that need only the authenticator data:
// App ID, counter, AAGUID and environment, the claimed key id.
func checkAuthData(ad *authData, key *Key, opts AttestationOptions) error {
	appID, ok := matchAppID(ad.rpIDHash, opts.AppIDs)
	if !ok {
		return refuse(ErrBadAppID, nil, "rpIdHash matches none of the %d accepted App IDs", len(opts.AppIDs))
	}
	key.AppID = appID
	if ad.counter != 0 {
		return refuse(ErrBadCounter, nil, "counter %d", ad.counter)
	}
	switch {
	case bytes.Equal(ad.aaguid, aaguidProduction):
		key.Environment = Production
	case bytes.Equal(ad.aaguid, aaguidDevelopment):
		key.Environment = Development
	default:
		return refuse(ErrBadAAGUID, nil, "aaguid %q", ad.aaguid)
	}
	accepted := opts.Environments
	if len(accepted) == 0 {
		accepted = []Environment{Production}
	}
	if !slices.Contains(accepted, key.Environment) {
		return refuse(ErrBadEnvironment, nil, "%s key, accepted %v", key.Environment, accepted)
	}
	if opts.KeyID != nil && subtle.ConstantTimeCompare(opts.KeyID, ad.credentialID) != 1 {
		return refuse(ErrBadKeyID, nil, "credential id is not the key id the client sent")
	}
	return nil
}

// matchAppID returns the App ID whose SHA-256 is rpIDHash.
func matchAppID(rpIDHash []byte, appIDs []string) (string, bool) {
	for _, id := range appIDs {
		sum := sha256.Sum256([]byte(id))
		if subtle.ConstantTimeCompare(sum[:], rpIDHash) == 1 {
			return id, true
		}
	}
	return "", false
}

// parseChain parses x5c (leaf first) and checks the leaf holds a P-256
// key. It checks no signature.
func parseChain(x5c [][]byte) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(x5c))
	for i, der := range x5c {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, refuse(ErrBadChain, err, "certificate %d of x5c does not parse", i)
		}
		certs[i] = c
	}
	if pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ErrBadChain, nil, "the credential certificate's key is not an ECDSA P-256 key")
	}
	return certs, nil
}

// checkLeaf binds the leaf to the authenticator data: key id, COSE key,
// nonce (when checkNonce); and reads its key-policy extension.
func checkLeaf(leaf *x509.Certificate, ad *authData, rawAuthData []byte, key *Key, clientDataHash []byte, checkNonce bool) error {
	point, err := leaf.PublicKey.(*ecdsa.PublicKey).Bytes()
	if err != nil {
		return refuse(ErrBadChain, err, "the credential certificate's key")
	}
	sum := sha256.Sum256(point)
	if subtle.ConstantTimeCompare(sum[:], ad.credentialID) != 1 {
		return refuse(ErrBadKeyID, nil, "credential id is not SHA-256 of the certificate's key")
	}
	if !bytes.Equal(point, ad.publicKey) {
		return refuse(ErrBadPublicKey, nil, "the COSE key differs from the certificate's key")
	}
	if checkNonce {
		nonce, err := leafNonce(leaf)
		if err != nil {
			return err
		}
		h := sha256.New()
		h.Write(rawAuthData)
		h.Write(clientDataHash)
		if subtle.ConstantTimeCompare(h.Sum(nil), nonce) != 1 {
			return refuse(ErrBadNonce, nil, "SHA-256(authData ‖ clientDataHash) is not the certificate's nonce: another challenge, or altered authData")
		}
	}
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(oidKeyPolicy) {
			key.KeyPolicy = bytes.Clone(ext.Value)
		}
	}
	return nil
}

// leafNonce reads extension 1.2.840.113635.100.8.2:
// SEQUENCE { [1] EXPLICIT OCTET STRING (32) }.
func leafNonce(leaf *x509.Certificate) ([]byte, error) {
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(oidNonce) {
			continue
		}
		var v struct {
			Nonce []byte `asn1:"tag:1,explicit"`
		}
		rest, err := asn1.Unmarshal(ext.Value, &v)
		if err != nil || len(rest) != 0 || len(v.Nonce) != sha256.Size {
			return nil, refuse(ErrBadNonce, err, "the certificate's nonce extension is malformed")
		}
		return v.Nonce, nil
	}
	return nil, refuse(ErrBadNonce, nil, "the certificate has no nonce extension (1.2.840.113635.100.8.2)")
}

// verifyChain verifies the chain at opts.Now to one of the roots and
// returns that root's name.
func verifyChain(certs []*x509.Certificate, opts AttestationOptions) (string, error) {
	roots := opts.Roots
	if roots == nil {
		roots = []*Root{AppleRoot()}
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r.Certificate)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		// Apple's 2026 leaves carry an extended key usage of Apple's
		// own (1.2.840.113635.100.4.24); the default (server auth) would
		// refuse them.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ce x509.CertificateInvalidError
		if errors.As(err, &ce) && ce.Reason == x509.Expired {
			return "", refuse(ErrExpired, err, "verified at %s", now.UTC().Format(time.RFC3339))
		}
		return "", refuse(ErrBadChain, err, "does not end at any of the %d given roots", len(roots))
	}
	top := chains[0][len(chains[0])-1]
	for _, r := range roots {
		if r.Certificate.Equal(top) {
			return r.Name, nil
		}
	}
	return "", refuse(ErrBadChain, nil, "ends at a root that was not given") // unreachable: the pool holds only roots
}
