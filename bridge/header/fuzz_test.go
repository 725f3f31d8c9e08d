package header

import (
	"errors"
	"reflect"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, tt := range wireTests {
		f.Add(tt.enc)
	}
	for _, raw := range [][]byte{
		cat(fixmap(2), kDev, tTok),
		cat(fixmap(3), kDev, tTok, kv("x", 0x92, 0xc0, 0x81, 0xa1, 'a', 0xc4, 0)),
		cat(fixmap(3), kDev, tTok, kv("g", 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0)),
		cat(fixmap(2), kDev, fixstr("t"), []byte{0xc6, 0xff, 0xff, 0xff, 0xff}),
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		cat(fixmap(4), kAA, tTok, iKey, nNonce),
		cat(fixmap(3), kAA, tTok, iKey),
		cat(fixmap(4), kAA, tTok, fixstr("i"), []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, nNonce),
		cat(fixmap(3), kDev, tTok, nNonce),
	} {
		f.Add(Prefix + b64(raw))
	}
	f.Add("")
	f.Add("v1.")
	f.Add("v1.haFro2RldqF0xAN0b2uhZwChYqChbaA=")
	f.Add(Prefix + b64(cat(fixmap(3), kDev, tTok, fixstr("x"), []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, []byte("aaaaaaaa"))))
	f.Add(Prefix + b64(cat(fixmap(3), kDev, tTok, fixstr("x"), []byte{0xdd, 0, 0, 0, 2, 0x91, 0xc0, 0xd4, 1, 1})))
	f.Fuzz(func(t *testing.T, s string) {
		var (
			v   Value
			err error
		)
		if n := minAllocBytes(func() { v, err = Decode(s) }); n > allocBound(len(s)) {
			t.Fatalf("Decode(%q) allocated %d bytes, more than %d for its length", s, n, allocBound(len(s)))
		}
		if err != nil {
			return
		}
		enc, err := Encode(v)
		if errors.Is(err, ErrTooLong) && len(s) > MaxValueLen-8 {
			// The input left out g, b or m (up to 6 bytes, 8 characters
			// once in base64), which Encode always writes.
			return
		}
		if err != nil {
			t.Fatalf("Decode(%q) = %#v, but Encode fails: %v", s, v, err)
		}
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))): %v", s, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("Decode(%q) = %#v, but after Encode it decodes to %#v", s, v, v2)
		}
		if enc2, _ := Encode(v2); enc2 != enc {
			t.Fatalf("Encode not stable: %q then %q", enc, enc2)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add(`{"v":1,"s":0,"t":"v1.haFro2RldqF0xAN0b2uhZwChYqChbaA"}`)
	f.Add(`{"v":1,"s":4}`)
	f.Add(`{"v":1,"s":0,"t":"a","T":"b"}`)
	f.Add(`{"v":1,"s":1,"x":[{"y":null}]}`)
	f.Add(`null`)
	f.Add(`{"\u0076":1,"s":1,"\ud83d\ude00":0,"😀":1}`)
	f.Add(`{"v":1,"s":1,"x":[[{"y":"]"}]],"t":null}`)
	f.Add(`{"v":1,"s":0,"t":"v1.\u0041\/"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var (
			e   Envelope
			err error
		)
		if n := minAllocBytes(func() { e, err = ParseEnvelope(s) }); n > envelopeAllocBound(len(s)) {
			t.Fatalf("ParseEnvelope(%q) allocated %d bytes, more than %d for its length", s, n, envelopeAllocBound(len(s)))
		}
		// The same answer as the straightforward parser it replaced, for
		// every input that parser could take.
		if len(s) <= MaxEnvelopeLen && checkDepth(s) == nil {
			re, rerr := referenceParseEnvelope(s)
			if re != e || (rerr == nil) != (err == nil) || (rerr != nil && !sameSentinel(rerr, err)) {
				t.Fatalf("ParseEnvelope(%q) = %+v, %v; the reference parser says %+v, %v", s, e, err, re, rerr)
			}
		}
		if err != nil {
			if e != (Envelope{}) {
				t.Fatalf("ParseEnvelope(%q) = %+v with error %v", s, e, err)
			}
			return
		}
		if e.Version != 1 || !e.Status.Known() || (e.Status == StatusOK) != (e.Token != "") {
			t.Fatalf("ParseEnvelope(%q) = %+v, an envelope it should reject", s, e)
		}
		if !IsEnvelope(s) {
			t.Fatalf("ParseEnvelope(%q) succeeded but IsEnvelope is false", s)
		}
	})
}
