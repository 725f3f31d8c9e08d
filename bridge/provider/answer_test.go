package provider

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

var answerAt = time.UnixMilli(1_790_000_000_123).UTC()

func TestAnswerEncodesTokens(t *testing.T) {
	t.Parallel()
	a := Answer{Kind: header.KindDeviceCheck, Token: []byte("token"), GeneratedAt: answerAt}
	got, err := a.Encode("com.example.app", "TEAM123456")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := header.Encode(header.Value{Kind: "dc", Token: []byte("token"), GeneratedAt: answerAt,
		BundleID: "com.example.app", TeamID: "TEAM123456"})
	if got != want {
		t.Fatalf("Encode = %s, want header.Encode's %s", got, want)
	}
}

// TestAnswerEncodesAppAttest: an App Attest answer is header.Encode's
// value of kind aa, with the pool's b and m.
func TestAnswerEncodesAppAttest(t *testing.T) {
	t.Parallel()
	keyID, nonce := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 16)
	a := Answer{Kind: header.KindAppAttest, Token: []byte("assertion"), GeneratedAt: answerAt, KeyID: keyID, Nonce: nonce}
	s, err := a.Encode("b", "m")
	if err != nil {
		t.Fatal(err)
	}
	want, err := header.Encode(header.Value{Kind: header.KindAppAttest, Token: []byte("assertion"), KeyID: keyID, Nonce: nonce,
		GeneratedAt: answerAt, BundleID: "b", TeamID: "m"})
	if err != nil || s != want {
		t.Fatalf("Encode = %s, want header.Encode's %s (%v)", s, want, err)
	}
	dec, err := header.Decode(s)
	if err != nil || dec.Kind != "aa" || !bytes.Equal(dec.KeyID, keyID) || !bytes.Equal(dec.Nonce, nonce) || !dec.GeneratedAt.Equal(answerAt) {
		t.Fatalf("decoded %+v, %v", dec, err)
	}
}

func TestAnswerEncodeRefuses(t *testing.T) {
	t.Parallel()
	good := Answer{Kind: header.KindAppAttest, Token: []byte("a"), GeneratedAt: answerAt,
		KeyID: make([]byte, 32), Nonce: make([]byte, 16)}
	for _, tc := range []struct {
		name   string
		change func(a *Answer)
		want   error
	}{
		{"no assertion", func(a *Answer) { a.Token = nil }, header.ErrMissingToken},
		{"short key id", func(a *Answer) { a.KeyID = a.KeyID[:31] }, ErrAnswer},
		{"long nonce", func(a *Answer) { a.Nonce = make([]byte, 17) }, ErrAnswer},
		{"no generation time", func(a *Answer) { a.GeneratedAt = time.Time{} }, ErrAnswer},
		{"a token with a key id", func(a *Answer) { a.Kind = header.KindDeviceCheck }, ErrAnswer},
		{"unknown kind", func(a *Answer) { a.Kind, a.KeyID, a.Nonce = "xx", nil, nil }, header.ErrUnknownKind},
		{"too long", func(a *Answer) { a.Token = make([]byte, header.MaxValueLen) }, header.ErrTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := good
			tc.change(&a)
			if s, err := a.Encode("", ""); !errors.Is(err, tc.want) {
				t.Fatalf("Encode = %q, %v; want %v", s, err, tc.want)
			}
		})
	}
}
