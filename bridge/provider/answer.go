package provider

import (
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// Answer is one attestation a provider made: everything a header value
// carries but the helper's identity (b and m), which the pool fills in.
type Answer struct {
	// Kind is the header kind: header.KindDeviceCheck, header.KindDev or
	// header.KindAppAttest.
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
// ids in b and m. An App Attest answer must carry its own generation
// time, which its assertion signs.
func (a Answer) Encode(bundleID, teamID string) (string, error) {
	if a.Kind == header.KindAppAttest && a.GeneratedAt.IsZero() {
		return "", fmt.Errorf("encode header: %w: an assertion signs its generation time, which is not set", ErrAnswer)
	}
	v, err := header.Encode(header.Value{Kind: a.Kind, Token: a.Token, KeyID: a.KeyID, Nonce: a.Nonce,
		GeneratedAt: a.GeneratedAt, BundleID: bundleID, TeamID: teamID})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrAnswer, err)
	}
	return v, nil
}
