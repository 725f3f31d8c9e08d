package verify

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
)

// The token is a secret: an Attestation or a Result printed with fmt (any
// verb), logged with log/slog or encoded as JSON shows the token's
// fingerprint and size, never its bytes. Only the Token field itself,
// read on purpose, holds them.

// String describes a for logs and errors, naming the token by its
// fingerprint.
func (a Attestation) String() string {
	s := fmt.Sprintf("form=%s status=%s", a.Form, a.Status)
	if a.Kind != "" {
		s += " kind=" + a.Kind
	}
	if len(a.Token) > 0 {
		s += fmt.Sprintf(" token=%s (%d bytes)", a.Fingerprint(), len(a.Token))
	}
	if a.KeyID != nil {
		s += " keyId=" + base64.StdEncoding.EncodeToString(a.KeyID)
	}
	if !a.GeneratedAt.IsZero() {
		s += " generated=" + a.GeneratedAt.UTC().Format(time.RFC3339Nano)
	}
	if a.BundleID != "" {
		s += " bundle=" + strconv.Quote(a.BundleID)
	}
	if a.TeamID != "" {
		s += " team=" + strconv.Quote(a.TeamID)
	}
	return "{" + s + "}"
}

// Format makes every fmt verb print String, so that %x, %d or %#v cannot
// print the token either.
func (a Attestation) Format(f fmt.State, _ rune) { io.WriteString(f, a.String()) }

// LogValue names the token by its fingerprint in log/slog records.
func (a Attestation) LogValue() slog.Value { return slog.GroupValue(a.logAttrs()...) }

func (a Attestation) logAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("form", string(a.Form)), slog.String("status", a.Status.String())}
	if a.Kind != "" {
		attrs = append(attrs, slog.String("kind", a.Kind))
	}
	if len(a.Token) > 0 {
		attrs = append(attrs, slog.String("token", a.Fingerprint()), slog.Int("tokenBytes", len(a.Token)))
	}
	if a.KeyID != nil {
		attrs = append(attrs, slog.String("keyId", base64.StdEncoding.EncodeToString(a.KeyID)))
	}
	if !a.GeneratedAt.IsZero() {
		attrs = append(attrs, slog.Time("generatedAt", a.GeneratedAt))
	}
	if a.BundleID != "" {
		attrs = append(attrs, slog.String("bundleId", a.BundleID))
	}
	if a.TeamID != "" {
		attrs = append(attrs, slog.String("teamId", a.TeamID))
	}
	return attrs
}

// attestationJSON is the JSON form of an Attestation.
type attestationJSON struct {
	Form        Form   `json:"form"`
	Status      int    `json:"status"`
	StatusName  string `json:"statusName"`
	Kind        string `json:"kind,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	TokenBytes  int    `json:"tokenBytes,omitempty"`
	KeyID       string `json:"keyId,omitempty"` // App Attest: standard base64, as Apple gives it
	Nonce       string `json:"nonce,omitempty"`
	GeneratedAt string `json:"generatedAt,omitempty"`
	BundleID    string `json:"bundleId,omitempty"`
	TeamID      string `json:"teamId,omitempty"`
}

func (a Attestation) toJSON() attestationJSON {
	j := attestationJSON{
		Form: a.Form, Status: int(a.Status), StatusName: a.Status.String(), Kind: a.Kind,
		Fingerprint: a.Fingerprint(), TokenBytes: len(a.Token), BundleID: a.BundleID, TeamID: a.TeamID,
	}
	if a.KeyID != nil {
		j.KeyID, j.Nonce = base64.StdEncoding.EncodeToString(a.KeyID), base64.StdEncoding.EncodeToString(a.Nonce)
	}
	if !a.GeneratedAt.IsZero() {
		j.GeneratedAt = a.GeneratedAt.UTC().Format(time.RFC3339Nano)
	}
	return j
}

// MarshalJSON encodes a with its token's fingerprint and size in place of
// the token.
func (a Attestation) MarshalJSON() ([]byte, error) { return json.Marshal(a.toJSON()) }

// String describes r for logs, naming the token by its fingerprint.
func (r Result) String() string {
	env := ""
	if r.Environment != "" {
		env = fmt.Sprintf(" environment=%s counter=%d", r.Environment, r.Counter)
	}
	return fmt.Sprintf("{valid=%t appleChecked=%t age=%v%s attestation=%s}", r.Valid, r.AppleChecked, r.Age, env, r.Attestation.String())
}

// Format makes every fmt verb print String.
func (r Result) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

// LogValue names the token by its fingerprint in log/slog records.
func (r Result) LogValue() slog.Value {
	attrs := append([]slog.Attr{slog.Bool("valid", r.Valid), slog.Bool("appleChecked", r.AppleChecked)}, r.Attestation.logAttrs()...)
	if r.Age != 0 {
		attrs = append(attrs, slog.Duration("age", r.Age))
	}
	if r.Environment != "" {
		attrs = append(attrs, slog.String("environment", r.Environment), slog.Uint64("counter", uint64(r.Counter)))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes r with its token's fingerprint and size in place of
// the token.
func (r Result) MarshalJSON() ([]byte, error) {
	j := struct {
		Valid        bool   `json:"valid"`
		AppleChecked bool   `json:"appleChecked"`
		Age          string `json:"age,omitempty"`
		Environment  string `json:"environment,omitempty"`
		Counter      uint32 `json:"counter,omitempty"`
		attestationJSON
	}{Valid: r.Valid, AppleChecked: r.AppleChecked, Environment: r.Environment, Counter: r.Counter, attestationJSON: r.Attestation.toJSON()}
	if r.Age != 0 {
		j.Age = r.Age.String()
	}
	return json.Marshal(j)
}

var (
	_ fmt.Formatter  = Attestation{}
	_ slog.LogValuer = Attestation{}
	_ json.Marshaler = Attestation{}
	_ fmt.Formatter  = Result{}
	_ slog.LogValuer = Result{}
	_ json.Marshaler = Result{}
)
