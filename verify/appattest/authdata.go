package appattest

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Byte layout of the authenticator data (WebAuthn's, as Apple uses it).
const (
	rpIDHashLen      = 32
	flagsAt          = rpIDHashLen                  // 32
	counterAt        = flagsAt + 1                  // 33
	assertionDataLen = counterAt + 4                // 37: rpIdHash ‖ flags ‖ counter
	aaguidLen        = 16                           // then the AAGUID
	credIDLenAt      = assertionDataLen + aaguidLen // 53
	credIDAt         = credIDLenAt + 2              // 55
	credIDLen        = 32                           // SHA-256 of the key
	coseKeyAt        = credIDAt + credIDLen         // 87
)

// Names of the extensions Apple appends to authData from iOS 27 and
// macOS 27 (WWDC26 session 201; Apple's Attestation Object Validation
// Guide).
const (
	// ExtValidationCategory is the launch validation category: a 4-byte
	// little-endian unsigned integer in a byte string.
	ExtValidationCategory = "apple_validation_category_01"
	// ExtBundleVersion is the app's bundle version, a text string.
	ExtBundleVersion = "apple_bundle_version_01"
)

// Extensions is the CBOR map Apple appends to the authenticator data
// (after the COSE key in an attestation, after the counter in an
// assertion). It is covered by the nonce or the signature, so what it
// says comes from Apple's attestation service or the attested key.
type Extensions struct {
	// Raw is the map's CBOR encoding, exactly as signed.
	Raw []byte
	// Values is the map decoded: byte strings as []byte, text as string,
	// integers as uint64 or int64, arrays as []any, nested maps as
	// map[any]any.
	Values map[string]any
}

// ValidationCategory returns the launch validation category
// (apple_validation_category_01), when present and well formed: a
// 4-byte little-endian byte string as Apple sends it, or an unsigned
// integer.
func (e *Extensions) ValidationCategory() (uint32, bool) {
	if e == nil {
		return 0, false
	}
	switch v := e.Values[ExtValidationCategory].(type) {
	case []byte:
		if len(v) == 4 {
			return binary.LittleEndian.Uint32(v), true
		}
	case uint64:
		if v <= 0xffffffff {
			return uint32(v), true
		}
	}
	return 0, false
}

// BundleVersion returns the bundle version (apple_bundle_version_01),
// when present as a text string.
func (e *Extensions) BundleVersion() (string, bool) {
	if e == nil {
		return "", false
	}
	v, ok := e.Values[ExtBundleVersion].(string)
	return v, ok
}

// authData is the authenticator data, split into its fields. The slices
// alias the input.
type authData struct {
	rpIDHash []byte
	flags    byte
	counter  uint32
	// Attested credential data: attestations only.
	aaguid       []byte
	credentialID []byte
	publicKey    []byte // the COSE key as an X9.62 uncompressed point
	// rawExtensions is the extensions map, checked to be one well-formed
	// CBOR map but not decoded (nil when absent): decoding allocates, so
	// it waits until the object verified (decodeExtensions).
	rawExtensions []byte
}

// parseAttestationAuthData splits an attestation's authenticator data:
// rpIdHash (32) ‖ flags (1) ‖ counter (4) ‖ AAGUID (16) ‖ credential id
// length (2) ‖ credential id ‖ COSE key ‖ optional extensions map. The
// bytes after the COSE key are read as the extensions map whatever the
// ED flag says (Apple's own 2026 sample appends them without it).
func parseAttestationAuthData(b []byte) (*authData, error) {
	if len(b) < credIDAt {
		return nil, refuse(ErrBadAuthData, nil, "%d bytes, too short for attested credential data", len(b))
	}
	a := splitAssertionPrefix(b)
	a.aaguid = b[assertionDataLen:credIDLenAt]
	n := int(binary.BigEndian.Uint16(b[credIDLenAt:credIDAt]))
	if n != credIDLen {
		return nil, refuse(ErrBadAuthData, nil, "credential id length %d, want %d", n, credIDLen)
	}
	if len(b) < coseKeyAt {
		return nil, refuse(ErrBadAuthData, nil, "credential id runs past the end")
	}
	a.credentialID = b[credIDAt:coseKeyAt]
	pub, rest, err := parseCOSEKey(b[coseKeyAt:])
	if err != nil {
		return nil, err
	}
	a.publicKey = pub
	if err := checkExtensions(rest); err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		a.rawExtensions = rest
	}
	return a, nil
}

// parseAssertionAuthData splits an assertion's authenticator data:
// rpIdHash (32) ‖ flags (1) ‖ counter (4) ‖ optional extensions map
// (iOS 27 and macOS 27 append one, and set AT and ED without attested
// credential data, so the flags are not consulted).
func parseAssertionAuthData(b []byte) (*authData, error) {
	if len(b) < assertionDataLen {
		return nil, refuse(ErrBadAuthData, nil, "%d bytes, want at least %d", len(b), assertionDataLen)
	}
	a := splitAssertionPrefix(b)
	if err := checkExtensions(b[assertionDataLen:]); err != nil {
		return nil, err
	}
	if len(b) > assertionDataLen {
		a.rawExtensions = b[assertionDataLen:]
	}
	return a, nil
}

func splitAssertionPrefix(b []byte) *authData {
	return &authData{
		rpIDHash: b[:rpIDHashLen],
		flags:    b[flagsAt],
		counter:  binary.BigEndian.Uint32(b[counterAt:assertionDataLen]),
	}
}

// coseKey is an EC2 key as COSE_Key (RFC 9053): Apple's is exactly
// {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
type coseKey struct {
	Kty int    `cbor:"1,keyasint"`
	Alg int    `cbor:"3,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// parseCOSEKey decodes the COSE key at the start of b (it has no length
// prefix: its CBOR encoding is its extent) and returns it as an X9.62
// uncompressed point, with the bytes after it.
func parseCOSEKey(b []byte) (point, rest []byte, err error) {
	var k coseKey
	rest, err = coseMode.UnmarshalFirst(b, &k)
	if err != nil {
		return nil, nil, refuse(ErrBadAuthData, err, "credential public key is not a COSE key")
	}
	if k.Kty != 2 || k.Alg != -7 || k.Crv != 1 || len(k.X) != 32 || len(k.Y) != 32 {
		return nil, nil, refuse(ErrBadAuthData, nil, "credential public key is not an ES256 P-256 key (kty %d, alg %d, crv %d, x %d bytes, y %d bytes)", k.Kty, k.Alg, k.Crv, len(k.X), len(k.Y))
	}
	point = make([]byte, 0, 65)
	point = append(append(append(point, 4), k.X...), k.Y...)
	return point, rest, nil
}

// checkExtensions checks b, the bytes after the fixed part of the
// authenticator data: nothing, or exactly one well-formed CBOR map within
// the decoder's bounds. It allocates nothing, so that an object refused
// later (a forged signature, a chain to no given root) costs no decoding
// of a map made to be expensive.
func checkExtensions(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	// A map, checked first so that a lone integer or string is named for
	// what it is.
	if b[0]>>5 != 5 {
		return refuse(ErrBadAuthData, nil, "%d bytes after the fixed fields are not a CBOR map", len(b))
	}
	if err := objectMode.Wellformed(b); err != nil {
		return refuse(ErrBadAuthData, err, "%d bytes after the fixed fields are not one CBOR map", len(b))
	}
	return nil
}

// parseExtensions reads b, the bytes after the fixed part of the
// authenticator data, as exactly one CBOR map with text keys; nothing
// gives nil. Call it once the object verified: see checkExtensions.
func parseExtensions(b []byte) (*Extensions, error) {
	if err := checkExtensions(b); err != nil || len(b) == 0 {
		return nil, err
	}
	var m map[string]any
	if err := objectMode.Unmarshal(b, &m); err != nil {
		return nil, refuse(ErrBadAuthData, err, "%d bytes after the fixed fields are not one CBOR map with text keys", len(b))
	}
	if m == nil {
		m = map[string]any{}
	}
	return &Extensions{Raw: bytes.Clone(b), Values: m}, nil
}

// CBOR decoding for untrusted input: definite lengths only, no tags, no
// duplicate map keys, bounded nesting and counts, one item with nothing
// after it (Unmarshal) unless the caller asks for the rest
// (UnmarshalFirst).
var (
	objectMode = mustDecMode(cbor.DecOptions{})
	coseMode   = mustDecMode(cbor.DecOptions{ExtraReturnErrors: cbor.ExtraDecErrorUnknownField})
)

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	o.DupMapKey = cbor.DupMapKeyEnforcedAPF
	o.IndefLength = cbor.IndefLengthForbidden
	o.TagsMd = cbor.TagsForbidden
	o.MaxNestedLevels = 8
	o.MaxArrayElements = 64
	o.MaxMapPairs = 64
	o.UTF8 = cbor.UTF8RejectInvalid
	m, err := o.DecMode()
	if err != nil {
		panic(fmt.Sprintf("appattest: CBOR options: %v", err))
	}
	return m
}
