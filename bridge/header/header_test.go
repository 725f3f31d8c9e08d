package header

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testKeyID and testNonce are the App Attest fields of the wire tests:
// the bytes 0x00…0x1f and 0xa0…0xaf.
var (
	testKeyID = seq(0x00, KeyIDLen)
	testNonce = seq(0xa0, NonceLen)
)

func seq(from byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// wireTests pins the encoding. Each raw column was checked by hand: a
// fixmap of 5 entries (0x85) with the keys k, t, g, b, m in that order, t
// as msgpack bin and g as the smallest msgpack integer that holds it; for
// kind "aa" a fixmap of 7 (0x87) with i (bin8 of 32) and n (bin8 of 16)
// after t.
var wireTests = []struct {
	name string
	v    Value
	raw  string // msgpack, hex with spaces between fields
	enc  string
}{
	{
		name: "devicecheck",
		v: Value{
			Kind:        KindDeviceCheck,
			Token:       []byte{1, 2, 3},
			GeneratedAt: time.UnixMilli(1700000000000).UTC(),
			BundleID:    "com.example.attestd",
			TeamID:      "ABCDE12345",
		},
		raw: "85 a16b a26463 a174 c403010203 a167 cf0000018bcfe56800 " +
			"a162 b3636f6d2e6578616d706c652e61747465737464 a16d aa41424344453132333435",
		enc: "v1.haFromRjoXTEAwECA6FnzwAAAYvP5WgAoWKzY29tLmV4YW1wbGUuYXR0ZXN0ZKFtqkFCQ0RFMTIzNDU",
	},
	{
		name: "app attest",
		v: Value{
			Kind:        KindAppAttest,
			Token:       []byte{1, 2, 3},
			KeyID:       testKeyID,
			Nonce:       testNonce,
			GeneratedAt: time.UnixMilli(1700000000000).UTC(),
			BundleID:    "com.example.attestd",
			TeamID:      "ABCDE12345",
		},
		raw: "87 a16b a26161 a174 c403010203 " +
			"a169 c420 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f " +
			"a16e c410 a0a1a2a3a4a5a6a7a8a9aaabacadaeaf a167 cf0000018bcfe56800 " +
			"a162 b3636f6d2e6578616d706c652e61747465737464 a16d aa41424344453132333435",
		enc: "v1.h6FromFhoXTEAwECA6FpxCAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eH6FuxBCgoaKjpKWmp6ipqqusra6voWfPAAABi8_laAChYrNjb20uZXhhbXBsZS5hdHRlc3RkoW2qQUJDREUxMjM0NQ",
	},
	{
		name: "app attest no time no ids",
		v:    Value{Kind: KindAppAttest, Token: []byte{0xff}, KeyID: testKeyID, Nonce: testNonce},
		raw: "87 a16b a26161 a174 c401ff " +
			"a169 c420 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f " +
			"a16e c410 a0a1a2a3a4a5a6a7a8a9aaabacadaeaf a167 00 a162 a0 a16d a0",
		enc: "v1.h6FromFhoXTEAf-hacQgAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-hbsQQoKGio6SlpqeoqaqrrK2ur6FnAKFioKFtoA",
	},
	{
		name: "dev no time no ids",
		v:    Value{Kind: KindDev, Token: []byte("tok")},
		raw:  "85 a16b a3646576 a174 c403746f6b a167 00 a162 a0 a16d a0",
		enc:  "v1.haFro2RldqF0xAN0b2uhZwChYqChbaA",
	},
	{
		name: "g positive fixint",
		v:    Value{Kind: KindDev, Token: []byte{0xff}, GeneratedAt: time.UnixMilli(100).UTC()},
		raw:  "85 a16b a3646576 a174 c401ff a167 64 a162 a0 a16d a0",
		enc:  "v1.haFro2RldqF0xAH_oWdkoWKgoW2g",
	},
	{
		name: "g negative fixint",
		v:    Value{Kind: KindDev, Token: []byte{0xff}, GeneratedAt: time.UnixMilli(-1).UTC()},
		raw:  "85 a16b a3646576 a174 c401ff a167 ff a162 a0 a16d a0",
		enc:  "v1.haFro2RldqF0xAH_oWf_oWKgoW2g",
	},
	{
		name: "g uint8",
		v:    Value{Kind: KindDev, Token: []byte{0xff}, GeneratedAt: time.UnixMilli(200).UTC()},
		raw:  "85 a16b a3646576 a174 c401ff a167 ccc8 a162 a0 a16d a0",
		enc:  "v1.haFro2RldqF0xAH_oWfMyKFioKFtoA",
	},
	{
		name: "g uint32",
		v:    Value{Kind: KindDev, Token: []byte{0xff}, GeneratedAt: time.UnixMilli(1 << 31).UTC()},
		raw:  "85 a16b a3646576 a174 c401ff a167 ce80000000 a162 a0 a16d a0",
		enc:  "v1.haFro2RldqF0xAH_oWfOgAAAAKFioKFtoA",
	},
}

func TestEncodeWire(t *testing.T) {
	for _, tt := range wireTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.v)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got != tt.enc {
				t.Errorf("Encode = %q, want %q", got, tt.enc)
			}
			if want := Prefix + b64(hexBytes(t, tt.raw)); got != want {
				t.Errorf("Encode = %q, want the pinned msgpack %q", got, want)
			}
			v, err := Decode(tt.enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(v, tt.v) {
				t.Errorf("Decode = %#v, want %#v", v, tt.v)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		want error
	}{
		{"no kind", Value{Token: []byte{1}}, ErrUnknownKind},
		{"unknown kind", Value{Kind: "DC", Token: []byte{1}}, ErrUnknownKind},
		{"nil token", Value{Kind: KindDev}, ErrMissingToken},
		{"empty token", Value{Kind: KindDev, Token: []byte{}}, ErrMissingToken},
		{"too long", Value{Kind: KindDev, Token: make([]byte, MaxValueLen)}, ErrTooLong},
		{"aa without key id", Value{Kind: KindAppAttest, Token: []byte{1}, Nonce: testNonce}, ErrMissingField},
		{"aa without nonce", Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: testKeyID}, ErrMissingField},
		{"aa key id of 31 bytes", Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: testKeyID[:31], Nonce: testNonce}, ErrFieldLength},
		{"aa key id of 33 bytes", Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: append(seq(0, 32), 0), Nonce: testNonce}, ErrFieldLength},
		{"aa empty key id", Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: []byte{}, Nonce: testNonce}, ErrFieldLength},
		{"aa nonce of 15 bytes", Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: testKeyID, Nonce: testNonce[:15]}, ErrFieldLength},
		{"aa nonce of 32 bytes", Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: testKeyID, Nonce: testKeyID}, ErrFieldLength},
		{"aa without token", Value{Kind: KindAppAttest, KeyID: testKeyID, Nonce: testNonce}, ErrMissingToken},
		{"dc with key id", Value{Kind: KindDeviceCheck, Token: []byte{1}, KeyID: testKeyID}, ErrFieldKind},
		{"dev with nonce", Value{Kind: KindDev, Token: []byte{1}, Nonce: testNonce}, ErrFieldKind},
		{"dc with empty key id", Value{Kind: KindDeviceCheck, Token: []byte{1}, KeyID: []byte{}}, ErrFieldKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Encode(tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %q, %v; want %v", s, err, tt.want)
			}
		})
	}
}

// TestEncodeLongest checks the length limit at its edge: the biggest token
// that fits encodes to exactly MaxValueLen bytes and decodes back.
func TestEncodeLongest(t *testing.T) {
	// 19 bytes of map around a bin16 token: 3 + 19 + n raw bytes, whose
	// unpadded base64 must fit in MaxValueLen-3 characters.
	n := (MaxValueLen-len(Prefix))*6/8 - 3 - 19
	v := Value{Kind: KindDev, Token: bytes.Repeat([]byte{0xa5}, n)}
	s, err := Encode(v)
	if err != nil {
		t.Fatalf("Encode(%d-byte token): %v", n, err)
	}
	if len(s) > MaxValueLen || len(s) < MaxValueLen-3 {
		t.Fatalf("len = %d, want close to %d", len(s), MaxValueLen)
	}
	if _, err := Decode(s); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	v.Token = append(v.Token, make([]byte, 3)...)
	if _, err := Encode(v); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Encode(%d-byte token) = %v, want ErrTooLong", len(v.Token), err)
	}
}

// The payload builders below write msgpack by hand, so that tests do not
// depend on the encoder under test.

func fixstr(s string) []byte { return append([]byte{0xa0 | byte(len(s))}, s...) }
func bin8(b ...byte) []byte  { return append([]byte{0xc4, byte(len(b))}, b...) }
func fixmap(n int) []byte    { return []byte{0x80 | byte(n)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// kv is one key and its already-encoded value.
func kv(key string, val ...byte) []byte { return cat(fixstr(key), val) }

var (
	kDev   = kv("k", fixstr("dev")...)
	kAA    = kv("k", fixstr("aa")...)
	tTok   = kv("t", bin8(1, 2)...)
	iKey   = kv("i", bin8(testKeyID...)...)
	nNonce = kv("n", bin8(testNonce...)...)
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	s = strings.ReplaceAll(s, " ", "")
	for i := 0; i+1 < len(s); i += 2 {
		var c byte
		for _, h := range s[i : i+2] {
			c <<= 4
			switch {
			case h >= '0' && h <= '9':
				c |= byte(h - '0')
			case h >= 'a' && h <= 'f':
				c |= byte(h - 'a' + 10)
			default:
				t.Fatalf("bad hex %q", s)
			}
		}
		out = append(out, c)
	}
	return out
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want Value
	}{
		{
			name: "minimal",
			raw:  cat(fixmap(2), kDev, tTok),
			want: Value{Kind: KindDev, Token: []byte{1, 2}},
		},
		{
			name: "any key order",
			raw:  cat(fixmap(3), kv("m", fixstr("T")...), tTok, kv("k", fixstr("dc")...)),
			want: Value{Kind: KindDeviceCheck, Token: []byte{1, 2}, TeamID: "T"},
		},
		{
			name: "unknown keys ignored",
			raw: cat(fixmap(5), kDev, kv("x", 0x93, 1, 2, 0xc0), tTok,
				kv("zz", 0x81, 0xa1, 'a', 0xc3), kv("g", 0x01)),
			want: Value{Kind: KindDev, Token: []byte{1, 2}, GeneratedAt: time.UnixMilli(1).UTC()},
		},
		{
			name: "non-compact int",
			raw:  cat(fixmap(3), kDev, tTok, kv("g", 0xd3, 0, 0, 0, 0, 0, 0, 0, 7)),
			want: Value{Kind: KindDev, Token: []byte{1, 2}, GeneratedAt: time.UnixMilli(7).UTC()},
		},
		{
			name: "uint64 max int64",
			raw:  cat(fixmap(3), kDev, tTok, kv("g", 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)),
			want: Value{Kind: KindDev, Token: []byte{1, 2}, GeneratedAt: time.UnixMilli(math.MaxInt64).UTC()},
		},
		{
			name: "str8 and bin16",
			raw: cat(fixmap(3), kv("k", 0xd9, 3, 'd', 'e', 'v'), kv("t", 0xc5, 0, 1, 9),
				kv("b", 0xda, 0, 1, 'B')),
			want: Value{Kind: KindDev, Token: []byte{9}, BundleID: "B"},
		},
		{
			name: "map16",
			raw:  cat([]byte{0xde, 0, 2}, kDev, tTok),
			want: Value{Kind: KindDev, Token: []byte{1, 2}},
		},
		{
			name: "aa minimal",
			raw:  cat(fixmap(4), kAA, tTok, iKey, nNonce),
			want: Value{Kind: KindAppAttest, Token: []byte{1, 2}, KeyID: testKeyID, Nonce: testNonce},
		},
		{
			name: "aa any key order, bin16 and bin32 fields",
			raw: cat(fixmap(5), kv("n", cat([]byte{0xc6, 0, 0, 0, NonceLen}, testNonce)...), kv("g", 0x05), tTok,
				kv("i", cat([]byte{0xc5, 0, KeyIDLen}, testKeyID)...), kAA),
			want: Value{Kind: KindAppAttest, Token: []byte{1, 2}, KeyID: testKeyID, Nonce: testNonce, GeneratedAt: time.UnixMilli(5).UTC()},
		},
		{
			name: "aa unknown keys ignored",
			raw:  cat(fixmap(5), kAA, tTok, iKey, kv("x", 0xc4, 1, 0), nNonce),
			want: Value{Kind: KindAppAttest, Token: []byte{1, 2}, KeyID: testKeyID, Nonce: testNonce},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(Prefix + b64(tt.raw))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := b64(cat(fixmap(2), kDev, tTok))
	tests := []struct {
		name string
		s    string // used when raw is nil
		raw  []byte // msgpack payload, encoded with the prefix
		want error
	}{
		{name: "too long", s: Prefix + strings.Repeat("A", MaxValueLen-len(Prefix)+1), want: ErrTooLong},
		{name: "too long garbage", s: strings.Repeat("!", MaxValueLen+1), want: ErrTooLong},

		{name: "empty", s: "", want: ErrPrefix},
		{name: "no prefix", s: valid, want: ErrPrefix},
		{name: "v2 prefix", s: "v2." + valid, want: ErrPrefix},
		{name: "upper-case prefix", s: "V1." + valid, want: ErrPrefix},
		{name: "prefix only", s: Prefix, want: ErrMsgpack},
		{name: "space before", s: " " + Prefix + valid, want: ErrPrefix},

		{name: "padding", s: Prefix + b64([]byte{0x82, 0xa1}) + "==", want: ErrBase64},
		{name: "padding one", s: Prefix + b64([]byte{0x82, 0xa1, 'k'}) + "=", want: ErrBase64},
		{name: "std alphabet plus", s: Prefix + "haFro2Rl+g", want: ErrBase64},
		{name: "std alphabet slash", s: Prefix + "haFro2Rl/g", want: ErrBase64},
		{name: "space inside", s: Prefix + valid[:4] + " " + valid[4:], want: ErrBase64},
		{name: "newline after", s: Prefix + valid + "\n", want: ErrBase64},
		{name: "CRLF after", s: Prefix + valid + "\r\n", want: ErrBase64},
		{name: "newline inside", s: Prefix + valid[:4] + "\n" + valid[4:], want: ErrBase64},
		{name: "CR inside", s: Prefix + valid[:4] + "\r" + valid[4:], want: ErrBase64},
		{name: "impossible length", s: Prefix + valid + "AAA", want: ErrBase64},
		{name: "non-canonical trailing bits", s: Prefix + "hB", want: ErrBase64},

		{name: "array", raw: []byte{0x92, 0xa1, 'k', 0xa1, 't'}, want: ErrMsgpack},
		{name: "nil", raw: []byte{0xc0}, want: ErrMsgpack},
		{name: "string", raw: fixstr("k"), want: ErrMsgpack},
		{name: "int", raw: []byte{0x05}, want: ErrMsgpack},
		{name: "map inside fixext", raw: cat([]byte{0xd4, 0x01}, fixmap(2), kDev, tTok), want: ErrMsgpack},
		{name: "map inside ext8", raw: cat([]byte{0xc7, 0x00, 0x05}, fixmap(2), kDev, tTok), want: ErrMsgpack},
		{name: "truncated map", raw: cat(fixmap(3), kDev, tTok), want: ErrMsgpack},
		{name: "truncated value", raw: cat(fixmap(2), kDev, fixstr("t"), []byte{0xc4, 5, 1}), want: ErrMsgpack},
		{name: "truncated map16", raw: []byte{0xde, 0}, want: ErrMsgpack},
		{name: "int key", raw: cat(fixmap(3), kDev, tTok, []byte{0x01, 0x01}), want: ErrMsgpack},
		{name: "bin key", raw: cat(fixmap(2), bin8('k'), fixstr("dev"), tTok), want: ErrMsgpack},
		{name: "nil key", raw: cat(fixmap(3), kDev, tTok, []byte{0xc0, 0x01}), want: ErrMsgpack},
		{name: "unknown value truncated", raw: cat(fixmap(3), kDev, tTok, kv("x", 0x92, 1)), want: ErrMsgpack},

		{name: "trailing byte", raw: cat(fixmap(2), kDev, tTok, []byte{0}), want: ErrTrailing},
		{name: "two maps", raw: cat(fixmap(2), kDev, tTok, fixmap(2), kDev, tTok), want: ErrTrailing},

		{name: "empty map", raw: fixmap(0), want: ErrMissingKind},
		{name: "no k", raw: cat(fixmap(1), tTok), want: ErrMissingKind},
		{name: "upper-case K", raw: cat(fixmap(2), kv("K", fixstr("dev")...), tTok), want: ErrMissingKind},

		{name: "no t", raw: cat(fixmap(1), kDev), want: ErrMissingToken},
		{name: "empty bin", raw: cat(fixmap(2), kDev, kv("t", bin8()...)), want: ErrMissingToken},

		{name: "empty kind", raw: cat(fixmap(2), kv("k", fixstr("")...), tTok), want: ErrUnknownKind},
		{name: "unknown kind", raw: cat(fixmap(2), kv("k", fixstr("DC")...), tTok), want: ErrUnknownKind},
		{name: "kind with NUL", raw: cat(fixmap(2), kv("k", fixstr("dc\x00")...), tTok), want: ErrUnknownKind},

		{name: "k as bin", raw: cat(fixmap(2), kv("k", bin8('d', 'c')...), tTok), want: ErrFieldType},
		{name: "k as nil", raw: cat(fixmap(2), kv("k", 0xc0), tTok), want: ErrFieldType},
		{name: "k as int", raw: cat(fixmap(2), kv("k", 0x01), tTok), want: ErrFieldType},
		{name: "t as str", raw: cat(fixmap(2), kDev, kv("t", fixstr("ab")...)), want: ErrFieldType},
		{name: "t as nil", raw: cat(fixmap(2), kDev, kv("t", 0xc0)), want: ErrFieldType},
		{name: "t as array", raw: cat(fixmap(2), kDev, kv("t", 0x91, 0x01)), want: ErrFieldType},
		{name: "t as ext", raw: cat(fixmap(2), kDev, kv("t", 0xd4, 0x01, 0x02)), want: ErrFieldType},
		{name: "g as float64", raw: cat(fixmap(3), kDev, tTok, kv("g", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0)), want: ErrFieldType},
		{name: "g as float32", raw: cat(fixmap(3), kDev, tTok, kv("g", 0xca, 0x3f, 0x80, 0, 0)), want: ErrFieldType},
		{name: "g as str", raw: cat(fixmap(3), kDev, tTok, kv("g", fixstr("1")...)), want: ErrFieldType},
		{name: "g as nil", raw: cat(fixmap(3), kDev, tTok, kv("g", 0xc0)), want: ErrFieldType},
		{name: "g as bool", raw: cat(fixmap(3), kDev, tTok, kv("g", 0xc3)), want: ErrFieldType},
		{name: "g as timestamp ext", raw: cat(fixmap(3), kDev, tTok, kv("g", 0xd6, 0xff, 0, 0, 0, 1)), want: ErrFieldType},
		{name: "g over int64", raw: cat(fixmap(3), kDev, tTok, kv("g", 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0)), want: ErrFieldType},
		{name: "b as bin", raw: cat(fixmap(3), kDev, tTok, kv("b", bin8('x')...)), want: ErrFieldType},
		{name: "b as int", raw: cat(fixmap(3), kDev, tTok, kv("b", 0x00)), want: ErrFieldType},
		{name: "m as bin", raw: cat(fixmap(3), kDev, tTok, kv("m", bin8('x')...)), want: ErrFieldType},
		{name: "m as nil", raw: cat(fixmap(3), kDev, tTok, kv("m", 0xc0)), want: ErrFieldType},

		{name: "duplicate k", raw: cat(fixmap(3), kDev, tTok, kv("k", fixstr("dc")...)), want: ErrDuplicateKey},
		{name: "duplicate t", raw: cat(fixmap(3), kDev, tTok, tTok), want: ErrDuplicateKey},
		{name: "duplicate g", raw: cat(fixmap(4), kDev, tTok, kv("g", 1), kv("g", 1)), want: ErrDuplicateKey},
		{name: "duplicate unknown", raw: cat(fixmap(4), kDev, tTok, kv("x", 1), kv("x", 1)), want: ErrDuplicateKey},
		{name: "duplicate i", raw: cat(fixmap(5), kAA, tTok, iKey, nNonce, iKey), want: ErrDuplicateKey},
		{name: "duplicate n", raw: cat(fixmap(5), kAA, tTok, nNonce, iKey, nNonce), want: ErrDuplicateKey},

		{name: "aa without i", raw: cat(fixmap(3), kAA, tTok, nNonce), want: ErrMissingField},
		{name: "aa without n", raw: cat(fixmap(3), kAA, tTok, iKey), want: ErrMissingField},
		{name: "aa without i or n", raw: cat(fixmap(2), kAA, tTok), want: ErrMissingField},
		{name: "aa without t", raw: cat(fixmap(3), kAA, iKey, nNonce), want: ErrMissingToken},
		{name: "aa empty i", raw: cat(fixmap(4), kAA, tTok, kv("i", bin8()...), nNonce), want: ErrFieldLength},
		{name: "aa i of 31 bytes", raw: cat(fixmap(4), kAA, tTok, kv("i", bin8(testKeyID[:31]...)...), nNonce), want: ErrFieldLength},
		{name: "aa i of 33 bytes", raw: cat(fixmap(4), kAA, tTok, kv("i", bin8(append(seq(0, 32), 1)...)...), nNonce), want: ErrFieldLength},
		{name: "aa n of 15 bytes", raw: cat(fixmap(4), kAA, tTok, iKey, kv("n", bin8(testNonce[:15]...)...)), want: ErrFieldLength},
		{name: "aa n of 17 bytes", raw: cat(fixmap(4), kAA, tTok, iKey, kv("n", bin8(append(seq(0, 16), 1)...)...)), want: ErrFieldLength},
		{name: "aa empty n", raw: cat(fixmap(4), kAA, tTok, iKey, kv("n", bin8()...)), want: ErrFieldLength},
		{name: "aa i as str", raw: cat(fixmap(4), kAA, tTok, kv("i", cat([]byte{0xd9, 32}, testKeyID)...), nNonce), want: ErrFieldType},
		{name: "aa i as nil", raw: cat(fixmap(4), kAA, tTok, kv("i", 0xc0), nNonce), want: ErrFieldType},
		{name: "aa n as array", raw: cat(fixmap(4), kAA, tTok, iKey, kv("n", 0x91, 0x01)), want: ErrFieldType},
		{name: "aa n as int", raw: cat(fixmap(4), kAA, tTok, iKey, kv("n", 0x07)), want: ErrFieldType},
		{name: "dc with i", raw: cat(fixmap(3), kv("k", fixstr("dc")...), tTok, iKey), want: ErrFieldKind},
		{name: "dev with n", raw: cat(fixmap(3), kDev, tTok, nNonce), want: ErrFieldKind},
		{name: "dev with i and n", raw: cat(fixmap(4), kDev, tTok, iKey, nNonce), want: ErrFieldKind},
		{name: "dc with an empty i", raw: cat(fixmap(3), kv("k", fixstr("dc")...), tTok, kv("i", bin8()...)), want: ErrFieldKind},
		{name: "upper-case kind AA", raw: cat(fixmap(4), kv("k", fixstr("AA")...), tTok, iKey, nNonce), want: ErrUnknownKind},
	}
	sentinels := []error{
		ErrTooLong, ErrPrefix, ErrBase64, ErrMsgpack, ErrTrailing, ErrMissingKind,
		ErrMissingToken, ErrUnknownKind, ErrFieldType, ErrDuplicateKey,
		ErrMissingField, ErrFieldLength, ErrFieldKind,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if tt.raw != nil {
				s = Prefix + b64(tt.raw)
			}
			v, err := Decode(s)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%q) = %#v, %v; want %v", s, v, err, tt.want)
			}
			if !reflect.DeepEqual(v, Value{}) {
				t.Errorf("Decode returned %#v with its error, want the zero Value", v)
			}
			if !strings.HasPrefix(err.Error(), "decode header: ") {
				t.Errorf("error %q does not name the operation", err)
			}
			for _, other := range sentinels {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %q also matches %v", err, other)
				}
			}
		})
	}
}

// TestDecodeHugeLengths feeds payloads whose msgpack headers claim far more
// than the value holds. Decode must fail fast without allocating what the
// header claims.
func TestDecodeHugeLengths(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
	}{
		{"map32", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
		{"map16", []byte{0xde, 0xff, 0xff}},
		{"bin32 token", cat(fixmap(2), kDev, fixstr("t"), []byte{0xc6, 0xff, 0xff, 0xff, 0xff})},
		{"str32 kind", cat(fixmap(2), fixstr("k"), []byte{0xdb, 0xff, 0xff, 0xff, 0xff})},
		{"str32 key", cat(fixmap(2), []byte{0xdb, 0xff, 0xff, 0xff, 0xff})},
		{"str32 bundle", cat(fixmap(3), kDev, tTok, fixstr("b"), []byte{0xdb, 0x7f, 0xff, 0xff, 0xff})},
		{"bin32 key id", cat(fixmap(3), kAA, tTok, fixstr("i"), []byte{0xc6, 0xff, 0xff, 0xff, 0xff})},
		{"bin32 nonce", cat(fixmap(4), kAA, tTok, iKey, fixstr("n"), []byte{0xc6, 0x7f, 0xff, 0xff, 0xff})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Prefix + b64(tt.raw)
			var err error
			n := allocBytes(func() { _, err = Decode(s) })
			if !errors.Is(err, ErrMsgpack) {
				t.Errorf("Decode = %v, want ErrMsgpack", err)
			}
			if n > 64<<10 {
				t.Errorf("Decode allocated %d bytes for a %d-byte value", n, len(s))
			}
		})
	}
}

// allocBound is the most Decode may allocate for an input of n bytes: what
// a valid value of that length costs (about 1.6 bytes a byte: the base64
// decoded, the token and strings copied out) with room to spare, plus a
// constant for an error's message (more under the race detector). A
// value crafted to make Decode allocate more than a valid one of its
// length would let a flood of small headers take the server's memory.
func allocBound(n int) uint64 { return 2*uint64(n) + 4096 }

// TestDecodeAllocationBounded: every length a header declares is checked
// against the bytes left before anything is skipped or allocated. An
// unknown key whose value claims gigabytes (an 83-byte value used to make
// Decode allocate 1 MiB) costs no more than a valid value of its length.
func TestDecodeAllocationBounded(t *testing.T) {
	u32 := []byte{0xff, 0xff, 0xff, 0xff}
	pad := []byte(strings.Repeat("a", 40))
	bomb := func(val ...[]byte) []byte { return cat(fixmap(3), kDev, tTok, fixstr("x"), cat(val...), pad) }
	tests := []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"bin32 claims 4 GiB", bomb([]byte{0xc6}, u32), false},
		{"str32 claims 4 GiB", bomb([]byte{0xdb}, u32), false},
		{"ext32 claims 4 GiB", bomb([]byte{0xc9}, u32, []byte{1}), false},
		{"array32 claims 4 G values", bomb([]byte{0xdd}, u32), false},
		{"map32 claims 4 G entries", bomb([]byte{0xdf}, u32), false},
		{"bin16 claims 64 KiB", bomb([]byte{0xc5, 0xff, 0xff}), false},
		{"array16 of arrays", bomb([]byte{0xdc, 0x00, 0x10}, bytes.Repeat([]byte{0xdc, 0xff, 0xff}, 16)), false},
		{"nested fixarrays", cat(fixmap(3), kDev, tTok, fixstr("x"), bytes.Repeat([]byte{0x91}, 300), []byte{0xc0}), true},
		{"array declares more values than bytes", bomb([]byte{0xdc, 0x00, 0x30}), false},
		{"aa with a bin32 bomb beside i and n", cat(fixmap(5), kAA, tTok, iKey, nNonce, fixstr("x"), []byte{0xc6}, u32, pad), false},
		{"aa key id claims 4 GiB", cat(fixmap(4), kAA, tTok, fixstr("i"), []byte{0xc6}, u32, pad), false},
		{"aa nonce claims 64 KiB", cat(fixmap(4), kAA, tTok, iKey, fixstr("n"), []byte{0xc5, 0xff, 0xff}, pad), false},
		{"unknown value of every kind", cat(fixmap(3), kDev, tTok, fixstr("x"),
			[]byte{0xdc, 0x00, 17, 0x01, 0xc0, 0xc2, 0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xcc, 1, 0xcd, 0, 1, 0xce, 0, 0, 0, 1,
				0xd3, 0, 0, 0, 0, 0, 0, 0, 1, 0xd4, 1, 1, 0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				0xc7, 1, 5, 0, 0xd9, 1, 'a', 0xc4, 1, 2, 0x81, 0xa1, 'a', 0x90, 0xde, 0, 0, 0xe0}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Prefix + b64(tt.raw)
			var err error
			n := allocBytes(func() { _, err = Decode(s) })
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrMsgpack)) {
				t.Errorf("Decode = %v, want ok %v or ErrMsgpack", err, tt.ok)
			}
			if n > allocBound(len(s)) {
				t.Errorf("Decode allocated %d bytes for a %d-byte value; a valid one of that length may take %d", n, len(s), allocBound(len(s)))
			}
		})
	}
	// The bound holds for valid values of every size and kind.
	for _, size := range []int{1, 100, 1000, 3000, 5900} {
		for _, v := range []Value{
			{Kind: KindDeviceCheck, Token: make([]byte, size), BundleID: "com.example.attestd", TeamID: "ABCDE12345"},
			{Kind: KindAppAttest, Token: make([]byte, size), KeyID: testKeyID, Nonce: testNonce, GeneratedAt: time.Now(), BundleID: "com.example.attestd", TeamID: "ABCDE12345"},
		} {
			s, err := Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if n := allocBytes(func() { Decode(s) }); n > allocBound(len(s)) {
				t.Errorf("a valid %d-byte %s value: Decode allocated %d bytes, more than the bound %d", len(s), v.Kind, n, allocBound(len(s)))
			}
		}
	}
}

// allocBytes reports how many bytes f allocates on the heap.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// minAllocBytes is the least of three allocBytes(f): the fuzzing engine's
// own goroutines allocate now and then while f runs, and the counter is
// the process's.
func minAllocBytes(f func()) uint64 {
	return min(allocBytes(f), allocBytes(f), allocBytes(f))
}

// TestRoundTrip checks Decode(Encode(v)) == v for random values, with
// GeneratedAt to the millisecond in UTC, and that Encode is deterministic.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		v := randomValue(rng)
		s, err := Encode(v)
		if err != nil {
			t.Fatalf("#%d: Encode(%#v): %v", i, v, err)
		}
		if s2, _ := Encode(v); s2 != s {
			t.Fatalf("#%d: Encode not deterministic: %q then %q", i, s, s2)
		}
		got, err := Decode(s)
		if err != nil {
			t.Fatalf("#%d: Decode(%q): %v", i, s, err)
		}
		want := v
		if !want.GeneratedAt.IsZero() {
			want.GeneratedAt = time.UnixMilli(v.GeneratedAt.UnixMilli()).UTC()
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("#%d: Decode(Encode(v)) = %#v, want %#v", i, got, want)
		}
	}
}

func randomValue(rng *rand.Rand) Value {
	v := Value{Kind: KindDeviceCheck, Token: make([]byte, 1+rng.IntN(3000))}
	switch rng.IntN(3) {
	case 0:
		v.Kind = KindDev
	case 1:
		v.Kind = KindAppAttest
		v.KeyID, v.Nonce = make([]byte, KeyIDLen), make([]byte, NonceLen)
		for _, b := range [][]byte{v.KeyID, v.Nonce} {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
	}
	for i := range v.Token {
		v.Token[i] = byte(rng.Uint32())
	}
	// Times anywhere in int64 milliseconds, including sub-millisecond parts
	// and zones other than UTC, but not inside the first millisecond after
	// the epoch, which encodes as g=0, the "no time" value.
	switch rng.IntN(4) {
	case 0: // zero time
	case 1:
		v.GeneratedAt = time.Unix(0, rng.Int64N(4e18)+1e6).In(time.FixedZone("X", 3600))
	case 2:
		v.GeneratedAt = time.UnixMilli(-rng.Int64())
	default:
		v.GeneratedAt = time.UnixMilli(1 + rng.Int64())
	}
	randString := func() string {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	if rng.IntN(3) > 0 {
		v.BundleID = randString()
	}
	if rng.IntN(3) > 0 {
		v.TeamID = randString()
	}
	return v
}

// TestAppAttestClientDataHash pins the bytes an App Attest assertion
// signs, computed independently (Python's hashlib) from
// "attestd-aa-v1" ‖ i ‖ g as 8 bytes big-endian ‖ n.
func TestAppAttestClientDataHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		g    time.Time
		want string
	}{
		{"g 1700000000000", time.UnixMilli(1700000000000), "033ad3f77f45781cf9a3e66e752b120054ef64621d13a6dc1c2309208f86f359"},
		{"g in another zone, sub-millisecond", time.UnixMilli(1700000000000).Add(999 * time.Microsecond).In(time.FixedZone("X", 3600)),
			"033ad3f77f45781cf9a3e66e752b120054ef64621d13a6dc1c2309208f86f359"},
		{"zero time is g 0", time.Time{}, "9767df53cb0a25e379134ac70a16a03786f83572de1c9c975ac900aca9ea926d"},
		{"g -1, two's complement", time.UnixMilli(-1), "8ef7bc1ddb14d27ba84bb42e3828398cc37c1cc551865154a22fd0e10794ca67"},
	}
	for _, tt := range tests {
		got := AppAttestClientDataHash(testKeyID, tt.g, testNonce)
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("%s: AppAttestClientDataHash = %x, want %s", tt.name, got, tt.want)
		}
	}
	// The Mac side's pinned vector (bridge/provider/appattest), computed
	// apart from both: key id 1…32, nonce 100…115, g 1790000000123.
	kid, non := seq(1, KeyIDLen), seq(100, NonceLen)
	if got := AppAttestClientDataHash(kid, time.UnixMilli(1_790_000_000_123), non); hex.EncodeToString(got[:]) != "20b629a720c57abb8c2c60c0f193de86d0e91d0c23bfa12536dc8e6d2e4b8c4c" {
		t.Errorf("the Mac side's vector: %x", got)
	}
	// The hash is of what the value carries: decoding the encoded value
	// gives the same hash as the values it was made from.
	v := Value{Kind: KindAppAttest, Token: []byte{1}, KeyID: testKeyID, Nonce: testNonce, GeneratedAt: time.Now()}
	s, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if AppAttestClientDataHash(d.KeyID, d.GeneratedAt, d.Nonce) != AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce) {
		t.Error("the hash of the decoded value differs from the hash of the value encoded")
	}
}

func TestFingerprint(t *testing.T) {
	// The first 6 bytes of sha256("v1.abc"), pinned so that a change of
	// algorithm or length, which would break log correlation, is noticed.
	const s = "v1.abc"
	got := Fingerprint(s)
	if got != "80ab1d43ea4a" {
		t.Fatalf("Fingerprint(%q) = %q, want %q", s, got, "80ab1d43ea4a")
	}
	if b := Fingerprint([]byte(s)); b != got {
		t.Errorf("Fingerprint([]byte) = %q, Fingerprint(string) = %q", b, got)
	}
	if Fingerprint("v1.abd") == got {
		t.Errorf("different inputs share fingerprint %q", got)
	}
	if strings.Contains(got, "abc") {
		t.Errorf("fingerprint %q contains the input", got)
	}
}
