// Package header encodes and decodes the "v1." attestation header value and
// parses the envelope in which codex app-server forwards it upstream.
//
// A value is "v1." followed by the unpadded base64url encoding of a msgpack
// map with the keys k (kind), t (token bytes), g (generation time, Unix
// milliseconds), b (bundle identifier) and m (team identifier); a value of
// kind "aa" (App Attest) also carries i (the key id, 32 bytes) and n (a
// nonce, 16 bytes) after t. Encoding is deterministic: the keys are always
// written, in that order, with the smallest msgpack integer that holds g.
package header

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Prefix starts every version-1 header value.
const Prefix = "v1."

// MaxValueLen is the longest header value, in bytes, that Decode accepts.
const MaxValueLen = 8 << 10

// Token kinds carried in the k field.
const (
	// KindDeviceCheck marks a token from Apple's DeviceCheck.
	KindDeviceCheck = "dc"
	// KindDev marks a token from the development provider; it is never
	// valid in production.
	KindDev = "dev"
	// KindAppAttest marks an App Attest assertion: Token is the assertion
	// object, signed by the key KeyID names over
	// AppAttestClientDataHash(KeyID, GeneratedAt, Nonce).
	KindAppAttest = "aa"
)

// Lengths of the App Attest fields, exact.
const (
	// KeyIDLen is the length of an App Attest key id: SHA-256 of the
	// key's uncompressed public point.
	KeyIDLen = 32
	// NonceLen is the length of an App Attest value's nonce.
	NonceLen = 16
)

// Errors returned by Decode, one for each reason a value is rejected.
// Decode wraps them with detail; test with errors.Is.
var (
	ErrTooLong      = errors.New("header value longer than 8 KiB")
	ErrPrefix       = errors.New(`header value does not start with "v1."`)
	ErrBase64       = errors.New("header value is not unpadded base64url")
	ErrMsgpack      = errors.New("header payload is not a valid msgpack map")
	ErrTrailing     = errors.New("header payload has trailing bytes")
	ErrMissingKind  = errors.New("header payload has no kind (k)")
	ErrMissingToken = errors.New("header payload has no token (t)")
	ErrUnknownKind  = errors.New("header payload has an unknown kind")
	ErrFieldType    = errors.New("header payload field has the wrong type")
	ErrDuplicateKey = errors.New("header payload repeats a key")
	// ErrMissingField: a key the value's kind requires is absent (i and n
	// for kind "aa").
	ErrMissingField = errors.New("header payload lacks a field its kind requires")
	// ErrFieldLength: a field of fixed length has another (i must be 32
	// bytes, n 16).
	ErrFieldLength = errors.New("header payload field has the wrong length")
	// ErrFieldKind: a field that belongs to another kind is present (i or
	// n in a "dc" or "dev" value).
	ErrFieldKind = errors.New("header payload has a field its kind does not take")
)

// Value is the decoded content of a header value.
type Value struct {
	// Kind is KindDeviceCheck, KindAppAttest or KindDev.
	Kind string
	// Token holds the raw token bytes as the provider returned them (for
	// KindAppAttest, the assertion object).
	Token []byte
	// KeyID is the App Attest key id (KindAppAttest only, KeyIDLen
	// bytes): SHA-256 of the key's uncompressed public point, Apple's key
	// id decoded from base64. Nil for the other kinds.
	KeyID []byte
	// Nonce is KindAppAttest's random nonce (NonceLen bytes), which makes
	// each value's clientDataHash distinct. Nil for the other kinds.
	Nonce []byte
	// GeneratedAt is when the token was generated, to the millisecond.
	GeneratedAt time.Time
	// BundleID is the bundle identifier the helper ran as; may be empty.
	BundleID string
	// TeamID is the team identifier from the helper's code signature; may
	// be empty.
	TeamID string
}

// wire fixes the field order of the encoded map; wireAppAttest is the
// same for kind "aa", with i and n after t.
type wire struct {
	K string `msgpack:"k"`
	T []byte `msgpack:"t"`
	G int64  `msgpack:"g"`
	B string `msgpack:"b"`
	M string `msgpack:"m"`
}

type wireAppAttest struct {
	K string `msgpack:"k"`
	T []byte `msgpack:"t"`
	I []byte `msgpack:"i"`
	N []byte `msgpack:"n"`
	G int64  `msgpack:"g"`
	B string `msgpack:"b"`
	M string `msgpack:"m"`
}

// Encode returns the header value for v. It fails only when v has an
// unknown kind or no token, when its App Attest fields do not fit its
// kind (see Decode), or when the result would exceed MaxValueLen.
func Encode(v Value) (string, error) {
	if !knownKind(v.Kind) {
		return "", fmt.Errorf("encode header: %w: %q", ErrUnknownKind, v.Kind)
	}
	if len(v.Token) == 0 {
		return "", fmt.Errorf("encode header: %w", ErrMissingToken)
	}
	if err := checkKindFields(v.Kind, v.KeyID != nil, v.Nonce != nil, v.KeyID, v.Nonce); err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	g := millis(v.GeneratedAt)
	var w any = wire{K: v.Kind, T: v.Token, G: g, B: v.BundleID, M: v.TeamID}
	if v.Kind == KindAppAttest {
		w = wireAppAttest{K: v.Kind, T: v.Token, I: v.KeyID, N: v.Nonce, G: g, B: v.BundleID, M: v.TeamID}
	}
	if err := enc.Encode(w); err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	s := Prefix + base64.RawURLEncoding.EncodeToString(buf.Bytes())
	if len(s) > MaxValueLen {
		return "", fmt.Errorf("encode header: %w (%d bytes)", ErrTooLong, len(s))
	}
	return s, nil
}

// Decode parses a header value. Unknown map keys are ignored so that later
// versions may add fields; everything else listed in the package errors is
// rejected, including the kind-specific rules: a value of kind "aa" needs
// i (exactly KeyIDLen bytes) and n (exactly NonceLen bytes), and the
// other kinds must not carry either.
func Decode(s string) (Value, error) {
	if len(s) > MaxValueLen {
		return Value{}, fmt.Errorf("decode header: %w (%d bytes)", ErrTooLong, len(s))
	}
	rest, ok := cutPrefix(s)
	if !ok {
		return Value{}, fmt.Errorf("decode header: %w", ErrPrefix)
	}
	// The base64 decoder skips \r and \n even in strict mode.
	if i := strings.IndexAny(rest, "\r\n"); i >= 0 {
		return Value{}, fmt.Errorf("decode header: %w: line break at offset %d", ErrBase64, len(Prefix)+i)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return Value{}, fmt.Errorf("decode header: %w: %v", ErrBase64, err)
	}
	v, err := decodePayload(raw)
	if err != nil {
		return Value{}, fmt.Errorf("decode header: %w", err)
	}
	return v, nil
}

// millis is g for t: Unix milliseconds, 0 for the zero time ("not
// said").
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// AppAttestClientDataHash returns the clientDataHash an App Attest value's
// assertion signs: SHA-256("attestd-aa-v1" ‖ keyID ‖ g ‖ nonce), g being
// generatedAt as the value's g field holds it (Unix milliseconds, 0 for
// the zero time) in 8 bytes big-endian, two's complement. A server
// computes it from the decoded value alone; the helper from what it is
// about to encode.
func AppAttestClientDataHash(keyID []byte, generatedAt time.Time, nonce []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(appAttestDomain))
	h.Write(keyID)
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], uint64(millis(generatedAt)))
	h.Write(g[:])
	h.Write(nonce)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// appAttestDomain starts every App Attest clientDataHash, so that an
// assertion made for attestd cannot be taken for one made for another
// purpose with the same key.
const appAttestDomain = "attestd-aa-v1"

// checkKindFields applies the kind-specific rules to the App Attest
// fields i and n (present or not, their lengths): kind "aa" requires
// both, of exactly KeyIDLen and NonceLen bytes; the other kinds take
// neither.
func checkKindFields(kind string, hasI, hasN bool, keyID, nonce []byte) error {
	if kind != KindAppAttest {
		if hasI || hasN {
			return fmt.Errorf("%w: i and n belong to kind %q, not %q", ErrFieldKind, KindAppAttest, kind)
		}
		return nil
	}
	switch {
	case !hasI:
		return fmt.Errorf("%w: kind %q needs the key id (i)", ErrMissingField, kind)
	case !hasN:
		return fmt.Errorf("%w: kind %q needs the nonce (n)", ErrMissingField, kind)
	case len(keyID) != KeyIDLen:
		return fmt.Errorf("%w: key id (i) of %d bytes, want %d", ErrFieldLength, len(keyID), KeyIDLen)
	case len(nonce) != NonceLen:
		return fmt.Errorf("%w: nonce (n) of %d bytes, want %d", ErrFieldLength, len(nonce), NonceLen)
	}
	return nil
}

func cutPrefix(s string) (string, bool) {
	if len(s) < len(Prefix) || s[:len(Prefix)] != Prefix {
		return "", false
	}
	return s[len(Prefix):], true
}

func decodePayload(raw []byte) (Value, error) {
	r := bytes.NewReader(raw)
	dec := msgpack.NewDecoder(r)
	// DecodeMapLen also reads a map wrapped in an ext header, a second
	// spelling of the same value that other decoders reject.
	if c, err := dec.PeekCode(); err != nil || !isMapCode(c) {
		return Value{}, fmt.Errorf("%w: %v", ErrMsgpack, errOrNil(err))
	}
	n, err := dec.DecodeMapLen()
	if err != nil || n < 0 {
		return Value{}, fmt.Errorf("%w: %v", ErrMsgpack, errOrNil(err))
	}
	// Each entry takes at least two bytes. Checking that before sizing
	// anything by n keeps a 5-byte map32 header from asking for a map of
	// four billion entries.
	if n > r.Len()/2 {
		return Value{}, fmt.Errorf("%w: map of %d entries in %d bytes", ErrMsgpack, n, r.Len())
	}
	var (
		v             Value
		seen          = make(map[string]bool, n)
		hasK, hasT    bool
		hasI, hasN    bool
		generatedAtMs int64
	)
	for i := 0; i < n; i++ {
		key, err := decodeString(dec, r)
		if errors.Is(err, ErrFieldType) {
			return Value{}, fmt.Errorf("%w: key %d is not a string", ErrMsgpack, i)
		}
		if err != nil {
			return Value{}, fmt.Errorf("key %d: %w", i, err)
		}
		if seen[key] {
			return Value{}, fmt.Errorf("%w: %q", ErrDuplicateKey, key)
		}
		seen[key] = true
		switch key {
		case "k":
			v.Kind, err = decodeString(dec, r)
			hasK = err == nil
		case "t":
			v.Token, err = decodeBytes(dec, r)
			hasT = err == nil && len(v.Token) > 0
		case "i":
			v.KeyID, err = decodeBytes(dec, r)
			hasI = err == nil
		case "n":
			v.Nonce, err = decodeBytes(dec, r)
			hasN = err == nil
		case "g":
			generatedAtMs, err = decodeInt(dec)
		case "b":
			v.BundleID, err = decodeString(dec, r)
		case "m":
			v.TeamID, err = decodeString(dec, r)
		default:
			err = skipValue(r)
		}
		if err != nil {
			return Value{}, fmt.Errorf("field %q: %w", key, err)
		}
	}
	if r.Len() != 0 {
		return Value{}, fmt.Errorf("%w (%d bytes)", ErrTrailing, r.Len())
	}
	if err := checkPayload(v, hasK, hasT, hasI, hasN); err != nil {
		return Value{}, err
	}
	if generatedAtMs != 0 {
		v.GeneratedAt = time.UnixMilli(generatedAtMs).UTC()
	}
	return v, nil
}

// checkPayload applies the rules on a decoded map as a whole: k and t
// present, a known kind, and the kind's own fields.
func checkPayload(v Value, hasK, hasT, hasI, hasN bool) error {
	switch {
	case !hasK:
		return ErrMissingKind
	case !hasT:
		return ErrMissingToken
	case !knownKind(v.Kind):
		return fmt.Errorf("%w: %q", ErrUnknownKind, v.Kind)
	}
	return checkKindFields(v.Kind, hasI, hasN, v.KeyID, v.Nonce)
}

func errOrNil(err error) any {
	if err == nil {
		return "not a map"
	}
	return err
}

// decodeString, decodeBytes and decodeInt check the msgpack type code
// first, so a field of the wrong type is ErrFieldType, not a coercion.
func decodeString(dec *msgpack.Decoder, r *bytes.Reader) (string, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMsgpack, err)
	}
	if !isStrCode(c) {
		return "", fmt.Errorf("%w: want string", ErrFieldType)
	}
	b, err := readStrOrBin(dec, r)
	return string(b), err
}

func decodeBytes(dec *msgpack.Decoder, r *bytes.Reader) ([]byte, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMsgpack, err)
	}
	if c != 0xc4 && c != 0xc5 && c != 0xc6 {
		return nil, fmt.Errorf("%w: want bin", ErrFieldType)
	}
	return readStrOrBin(dec, r)
}

// readStrOrBin reads a str or bin whose type code has been checked. The
// msgpack library allocates the length a header declares before reading
// the body (all of it for bin, up to 1 MiB for str), so the length is
// checked against what is left of the payload r first.
func readStrOrBin(dec *msgpack.Decoder, r *bytes.Reader) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMsgpack, err)
	}
	if n < 0 || n > r.Len() {
		return nil, fmt.Errorf("%w: %d-byte string with %d bytes left", ErrMsgpack, n, r.Len())
	}
	b := make([]byte, n)
	if err := dec.ReadFull(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMsgpack, err)
	}
	return b, nil
}

// skipValue moves r past one msgpack value of any type, for a key Decode
// does not know. Every length a header declares is checked against what
// is left of r before anything moves, and nothing is allocated: the
// msgpack library's Skip would allocate up to 1 MiB for a bin32 that
// claims 4 GiB in a value of 83 bytes. Arrays and maps are walked without
// recursion: pending counts the values still to skip, each at least a
// byte, so it never exceeds what is left.
func skipValue(r *bytes.Reader) error {
	for pending := 1; pending > 0; pending-- {
		c, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: unknown field's value truncated", ErrMsgpack)
		}
		var items, skip int // values inside (array, map); bytes to skip
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool: the code is the value
		case c <= 0x8f:
			items = 2 * int(c&0x0f)
		case c <= 0x9f:
			items = int(c & 0x0f)
		case c <= 0xbf:
			skip = int(c & 0x1f)
		default:
			if items, skip, err = skipSizes(c, r); err != nil {
				return err
			}
		}
		// The values still pending take a byte each at least.
		if skip > r.Len() || pending-1+items > r.Len()-skip {
			return fmt.Errorf("%w: unknown field declares %d bytes and %d values with %d bytes left", ErrMsgpack, skip, items, r.Len())
		}
		r.Seek(int64(skip), io.SeekCurrent)
		pending += items
	}
	return nil
}

// skipSizes reads the length that follows code c, for skipValue: how many
// values c's container holds, or how many bytes its body takes.
func skipSizes(c byte, r *bytes.Reader) (items, skip int, err error) {
	switch c {
	case 0xcc, 0xd0: // uint8, int8
		return 0, 1, nil
	case 0xcd, 0xd1: // uint16, int16
		return 0, 2, nil
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 0, 4, nil
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return 0, 8, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte and data
		return 0, 1 + 1<<(c-0xd4), nil
	}
	var width int // bytes of the big-endian length after c
	switch c {
	case 0xc4, 0xc7, 0xd9:
		width = 1
	case 0xc5, 0xc8, 0xda, 0xdc, 0xde:
		width = 2
	case 0xc6, 0xc9, 0xdb, 0xdd, 0xdf:
		width = 4
	default: // 0xc1, never used
		return 0, 0, fmt.Errorf("%w: unknown field has type code 0x%02x", ErrMsgpack, c)
	}
	if r.Len() < width {
		return 0, 0, fmt.Errorf("%w: unknown field's length truncated", ErrMsgpack)
	}
	var n uint64
	for range width {
		b, _ := r.ReadByte()
		n = n<<8 | uint64(b)
	}
	if n > uint64(r.Len())*2 { // no container or body this long fits in what is left
		return 0, 0, fmt.Errorf("%w: unknown field declares %d with %d bytes left", ErrMsgpack, n, r.Len())
	}
	switch c {
	case 0xdc, 0xdd:
		return int(n), 0, nil
	case 0xde, 0xdf:
		return 2 * int(n), 0, nil
	case 0xc7, 0xc8, 0xc9:
		return 0, int(n) + 1, nil // the ext's type byte, then its data
	}
	return 0, int(n), nil
}

func decodeInt(dec *msgpack.Decoder) (int64, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrMsgpack, err)
	}
	if !isIntCode(c) {
		return 0, fmt.Errorf("%w: want integer", ErrFieldType)
	}
	if c == 0xcf { // uint64 may exceed int64
		u, err := dec.DecodeUint64()
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrMsgpack, err)
		}
		if u > 1<<63-1 {
			return 0, fmt.Errorf("%w: integer out of range", ErrFieldType)
		}
		return int64(u), nil
	}
	n, err := dec.DecodeInt64()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrMsgpack, err)
	}
	return n, nil
}

func isStrCode(c byte) bool {
	return (c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb
}

func isMapCode(c byte) bool { return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf }

func isIntCode(c byte) bool {
	return c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3)
}

func knownKind(k string) bool { return k == KindDeviceCheck || k == KindDev || k == KindAppAttest }
