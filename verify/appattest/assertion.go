package appattest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// MaxAssertionSize bounds an assertion object. Apple's are 110 to 250
// bytes.
const MaxAssertionSize = 4 << 10

// Assertion is a verified assertion.
type Assertion struct {
	// Counter is the key's counter as the assertion states it. Apple's
	// counter grows by one per assertion, but requests may arrive out of
	// order: the caller decides whether it is fresh (see Window).
	Counter uint32
	// Extensions is the authenticator data's extensions map (iOS 27 and
	// macOS 27 append one), nil when absent.
	Extensions *Extensions
}

// assertionObject is the CBOR assertion object.
type assertionObject struct {
	Signature         []byte `cbor:"signature"`
	AuthenticatorData []byte `cbor:"authenticatorData"`
}

// VerifyAssertion checks an App Attest assertion object made by key
// over clientDataHash: the authenticator data's rpIdHash is SHA-256 of
// key.AppID, and the signature is a valid ECDSA P-256 signature by
// key.PublicKey of SHA-256(authenticatorData ‖ clientDataHash) (the key
// signs that nonce with SHA-256, as SecKeyCreateSignature's
// ecdsaSignatureMessageX962SHA256 does). It does not judge the counter:
// that is the caller's, with a Window per key. key needs only PublicKey
// and AppID.
func VerifyAssertion(object []byte, key *Key, clientDataHash []byte) (*Assertion, error) {
	if key == nil || key.PublicKey == nil || key.PublicKey.Curve != elliptic.P256() {
		return nil, errors.New("appattest: VerifyAssertion needs the key's P-256 public key")
	}
	if key.AppID == "" {
		return nil, errors.New("appattest: VerifyAssertion needs the key's App ID")
	}
	if len(object) > MaxAssertionSize {
		return nil, refuse(ErrBadFormat, nil, "%d bytes, more than %d", len(object), MaxAssertionSize)
	}
	var obj assertionObject
	if err := objectMode.Unmarshal(object, &obj); err != nil {
		return nil, refuse(ErrBadFormat, err, "not a CBOR assertion object")
	}
	if len(obj.Signature) == 0 || len(obj.AuthenticatorData) == 0 {
		return nil, refuse(ErrBadFormat, nil, "signature or authenticatorData missing")
	}
	ad, err := parseAssertionAuthData(obj.AuthenticatorData)
	if err != nil {
		return nil, err
	}
	want := sha256.Sum256([]byte(key.AppID))
	if subtle.ConstantTimeCompare(want[:], ad.rpIDHash) != 1 {
		return nil, refuse(ErrBadAppID, nil, "rpIdHash is not SHA-256 of the key's App ID")
	}
	h := sha256.New()
	h.Write(obj.AuthenticatorData)
	h.Write(clientDataHash)
	nonce := h.Sum(nil)
	digest := sha256.Sum256(nonce)
	if !ecdsa.VerifyASN1(key.PublicKey, digest[:], obj.Signature) {
		return nil, refuse(ErrBadSignature, nil, "not signed by this key over this authenticatorData and clientDataHash")
	}
	ext, err := parseExtensions(ad.rawExtensions)
	if err != nil {
		return nil, err
	}
	return &Assertion{Counter: ad.counter, Extensions: ext}, nil
}
