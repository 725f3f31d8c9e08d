package inspect

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// Decoded is what "attestd decode" prints.
type Decoded struct {
	Envelope    *Envelope `json:"envelope,omitempty"`
	Kind        string    `json:"kind,omitempty"`
	Token       string    `json:"token,omitempty"` // standard base64, as Apple's server API takes it
	TokenBytes  int       `json:"tokenBytes,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	GeneratedAt string    `json:"generatedAt,omitempty"`
	BundleID    string    `json:"bundleId"`
	TeamID      string    `json:"teamId"`
	// KeyID, Nonce and ClientDataHash are an App Attest value's (kind
	// "aa"), in standard base64: the key that signed the assertion (Token),
	// the nonce, and the clientDataHash the assertion signs.
	KeyID          string `json:"keyId,omitempty"`
	Nonce          string `json:"nonce,omitempty"`
	ClientDataHash string `json:"clientDataHash,omitempty"`
}

// Envelope is the app-server's envelope around a value, as Decoded shows
// it.
type Envelope struct {
	Version    int    `json:"version"`
	Status     int    `json:"status"`
	StatusName string `json:"statusName"`
}

// Decode shows in, a "v1." value or the app-server's envelope, with white
// space around it; an envelope whose status is not ok has no value to
// show. Nothing is checked: that is Check's job.
func Decode(in string) (*Decoded, error) {
	in = strings.TrimSpace(in)
	if in == "" {
		return nil, ErrEmpty
	}
	out := &Decoded{}
	value := in
	if header.IsEnvelope(in) {
		env, err := header.ParseEnvelope(in)
		if err != nil {
			return nil, err
		}
		out.Envelope = &Envelope{Version: env.Version, Status: int(env.Status), StatusName: env.Status.String()}
		if env.Status != header.StatusOK {
			return out, nil
		}
		value = env.Token
	}
	v, err := header.Decode(value)
	if err != nil {
		return nil, err
	}
	out.Kind = v.Kind
	out.Token = base64.StdEncoding.EncodeToString(v.Token)
	out.TokenBytes = len(v.Token)
	out.Fingerprint = header.Fingerprint(value)
	if !v.GeneratedAt.IsZero() {
		out.GeneratedAt = v.GeneratedAt.UTC().Format(time.RFC3339Nano)
	}
	out.BundleID, out.TeamID = v.BundleID, v.TeamID
	if v.Kind == header.KindAppAttest {
		aa := appAttestOf(v.KeyID, v.Nonce, v.GeneratedAt)
		out.KeyID, out.Nonce, out.ClientDataHash = aa.KeyID, aa.Nonce, aa.ClientDataHash
	}
	return out, nil
}
