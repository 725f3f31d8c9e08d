package provider

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/vmihailenco/msgpack/v5"
)

// KindAppAttest marks an App Attest assertion, as PLAN-WAVE2.md fixes the
// header contract ("k" = "aa", with the key id in "i" and the nonce in
// "n").
//
// TODO(header aa): use header.KindAppAttest once bridge/header on main has
// the kind, and drop this constant.
const KindAppAttest = "aa"

// The sizes of an App Attest answer's key id and nonce.
const (
	AppAttestKeyIDSize = 32 // SHA-256 of the key's public point
	AppAttestNonceSize = 16
)

// Answer is one attestation a provider made: everything a header value
// carries but the helper's identity (b and m), which the pool fills in.
type Answer struct {
	// Kind is the header kind: header.KindDeviceCheck, header.KindDev or
	// KindAppAttest.
	Kind string
	// Token is the token's bytes, or for App Attest the assertion object.
	Token []byte
	// GeneratedAt is the value's g. Zero means when the pool received
	// the answer; an App Attest assertion signs g, so its provider sets
	// it.
	GeneratedAt time.Time
	// KeyID (32 bytes) and Nonce (16 bytes) are set for App Attest only:
	// the key that signed the assertion and the random nonce it signed.
	KeyID, Nonce []byte
}

// ErrAnswer is wrapped by Encode's errors about an answer's App Attest
// fields.
var ErrAnswer = errors.New("malformed answer")

// Encode returns the header value of a, with the helper's bundle and team
// ids in b and m.
func (a Answer) Encode(bundleID, teamID string) (string, error) {
	if a.Kind != KindAppAttest {
		if a.KeyID != nil || a.Nonce != nil {
			return "", fmt.Errorf("encode header: %w: a %q answer carries a key id or nonce", ErrAnswer, a.Kind)
		}
		return header.Encode(header.Value{Kind: a.Kind, Token: a.Token, GeneratedAt: a.GeneratedAt,
			BundleID: bundleID, TeamID: teamID})
	}
	return encodeAppAttest(a, bundleID, teamID)
}

// aaWire is the App Attest header's map: dc's keys in dc's order, then i
// and n.
//
// TODO(header aa): header.Encode encodes the kind once bridge/header has
// it (PLAN-WAVE2.md's contract); then Answer becomes header.Value and this
// goes.
type aaWire struct {
	K string `msgpack:"k"`
	T []byte `msgpack:"t"`
	G int64  `msgpack:"g"`
	B string `msgpack:"b"`
	M string `msgpack:"m"`
	I []byte `msgpack:"i"`
	N []byte `msgpack:"n"`
}

func encodeAppAttest(a Answer, bundleID, teamID string) (string, error) {
	switch {
	case len(a.Token) == 0:
		return "", fmt.Errorf("encode header: %w", header.ErrMissingToken)
	case len(a.KeyID) != AppAttestKeyIDSize:
		return "", fmt.Errorf("encode header: %w: key id of %d bytes, want %d", ErrAnswer, len(a.KeyID), AppAttestKeyIDSize)
	case len(a.Nonce) != AppAttestNonceSize:
		return "", fmt.Errorf("encode header: %w: nonce of %d bytes, want %d", ErrAnswer, len(a.Nonce), AppAttestNonceSize)
	case a.GeneratedAt.IsZero():
		return "", fmt.Errorf("encode header: %w: an assertion signs its generation time, which is not set", ErrAnswer)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	w := aaWire{K: a.Kind, T: a.Token, G: a.GeneratedAt.UnixMilli(), B: bundleID, M: teamID, I: a.KeyID, N: a.Nonce}
	if err := enc.Encode(w); err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	s := header.Prefix + base64.RawURLEncoding.EncodeToString(buf.Bytes())
	if len(s) > header.MaxValueLen {
		return "", fmt.Errorf("encode header: %w (%d bytes)", header.ErrTooLong, len(s))
	}
	return s, nil
}
