// Package appattestcli is the engine behind "attestd appattest": it reads
// App Attest attestation and assertion objects as a person has them at
// hand (raw CBOR, or standard or URL-safe base64 with or without padding,
// from a file or standard input), checks them with package appattest, and
// works on the key store a server keeps in Redis (list, show, revoke). It
// answers with a JSON report, an exit status and, unless all went well,
// an error with a hint.
package appattestcli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

// The exit statuses, as "attestd verify" has them (2 is a usage error).
const (
	Valid      = 0 // valid; for keys: done
	NotValid   = 1 // refused; for keys: no such key
	NotChecked = 4 // could not check: the --attestation refused, the key store down
)

// outcomes names each exit status in the report.
var outcomes = map[int]string{Valid: "valid", NotValid: "not_valid", NotChecked: "not_checked"}

// UsageError is a command line that cannot be used: a missing or bad
// flag, a file that cannot be read. The command exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// Verdict is how a command ended: what to print as JSON, the exit status
// and, unless it is Valid, why (with a hint.Of).
type Verdict struct {
	Report any
	Code   int
	Err    error
}

// Strings is a repeatable string flag (--app-id, --root).
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }

// MaxInput bounds what ReadObject reads: the largest attestation, in
// base64, with room for white space.
const MaxInput = appattest.MaxAttestationSize*4/3 + 4<<10

// ReadObject reads an object from the file name, or stdin when name is
// "-": raw CBOR, or its standard or URL-safe base64, with or without
// padding, white space around it ignored.
func ReadObject(stdin io.Reader, name string) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("%v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	switch {
	case err != nil:
		return nil, usagef("read %s: %v", displayName(name), err)
	case len(b) > MaxInput:
		return nil, usagef("%s: more than %d bytes: not an App Attest object", displayName(name), MaxInput)
	case len(bytes.TrimSpace(b)) == 0:
		return nil, usagef("%s is empty: give an attestation or assertion object", displayName(name))
	}
	if d, ok := decodeBase64(string(bytes.TrimSpace(b))); ok {
		return d, nil
	}
	return b, nil
}

func displayName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

// decodeBase64 decodes standard or URL-safe base64, padded or not. A
// CBOR map starts with a byte (0xa0–0xbf) no base64 text holds, so raw
// objects are never taken for base64.
func decodeBase64(s string) ([]byte, bool) {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// ClientDataHash returns the clientDataHash a command line names: the
// base64 of --client-data-hash (any alphabet, padded or not), or SHA-256
// of the --client-data file. Exactly one must be given.
func ClientDataHash(b64, file string) ([]byte, error) {
	switch {
	case (b64 == "") == (file == ""):
		return nil, usagef("give one of --client-data-hash B64 and --client-data FILE")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("--client-data: %v", err)
		}
		sum := sha256.Sum256(data)
		return sum[:], nil
	}
	b, ok := decodeBase64(b64)
	if !ok || len(b) == 0 {
		return nil, usagef("--client-data-hash: not base64")
	}
	return b, nil
}

// ParseAt reads --at: RFC 3339, or "" for now.
func ParseAt(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--at: want RFC 3339, such as 2026-03-01T12:00:00Z: %v", err)
	}
	return t, nil
}

// Roots returns Apple's root and the roots in the PEM files given. A
// file holding Apple's root adds nothing; devattest's root is named
// "development"; any other is named after its file.
func Roots(files []string) ([]*appattest.Root, error) {
	roots := []*appattest.Root{appattest.AppleRoot()}
	for _, f := range files {
		p, err := os.ReadFile(f)
		if err != nil {
			return nil, usagef("--root: %v", err)
		}
		name := "file:" + filepath.Base(f)
		if bytes.Equal(bytes.TrimSpace(p), bytes.TrimSpace(devattest.RootPEM())) {
			name = devattest.RootName
		}
		r, err := appattest.ParseRoot(name, p)
		if err != nil {
			return nil, usagef("--root %s: %v", f, err)
		}
		if !r.Certificate.Equal(appattest.AppleRoot().Certificate) {
			roots = append(roots, r)
		}
	}
	return roots, nil
}

// Environments reads --environment: development, production, or "" for
// both.
func Environments(s string) ([]appattest.Environment, error) {
	switch e := appattest.Environment(s); e {
	case "":
		return []appattest.Environment{appattest.Development, appattest.Production}, nil
	case appattest.Development, appattest.Production:
		return []appattest.Environment{e}, nil
	}
	return nil, usagef("--environment: want development or production, not %q", s)
}

// PublicKey reads --public-key: a PEM "PUBLIC KEY" (PKIX) or
// "CERTIFICATE" holding a P-256 key.
func PublicKey(file string) (*ecdsa.PublicKey, error) {
	p, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--public-key: %v", err)
	}
	block, _ := pem.Decode(p)
	if block == nil {
		return nil, usagef("--public-key %s: not PEM", file)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		err = fmt.Errorf("a PEM %q, want PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return nil, usagef("--public-key %s: %v", file, err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, usagef("--public-key %s: not a P-256 key", file)
	}
	return k, nil
}

// verdict names code in the report's outcome and returns the Verdict.
func verdict(r *Report, code int, err error) Verdict {
	r.Outcome = outcomes[code]
	r.Valid = code == Valid
	if err != nil && code != Valid {
		r.Error = err.Error()
		if r.Reason == "" {
			r.Reason = appattest.Reason(err)
		}
	} else {
		err = nil
	}
	return Verdict{Report: r, Code: code, Err: err}
}

// ObjectArgs is the command line of "attestd appattest attestation" and
// "attestd appattest assertion", as given: CheckObject reads the files
// and parses the values.
type ObjectArgs struct {
	// Kind is "attestation" or "assertion".
	Kind   string
	AppIDs Strings
	// ClientDataHash is --client-data-hash (base64); ClientData the
	// --client-data file, whose SHA-256 is the hash.
	ClientDataHash, ClientData string
	// At is --at (RFC 3339), Environment --environment, Roots --root.
	At, Environment string
	Roots           Strings
	// Attestation and PublicKey are the assertion's key: a file each.
	Attestation, PublicKey string
	// AfterCounter is --after-counter; negative when not given.
	AfterCounter int64
	// Object is the FILE argument, "-" for standard input.
	Object string
}

// CheckObject checks the object the command line names. Its error is a
// *UsageError for a command line that cannot be used.
func CheckObject(a ObjectArgs, stdin io.Reader, now time.Time) (Verdict, error) {
	if err := a.check(); err != nil {
		return Verdict{}, err
	}
	cdh, err := ClientDataHash(a.ClientDataHash, a.ClientData)
	if err != nil {
		return Verdict{}, err
	}
	at, err := ParseAt(a.At, now)
	if err != nil {
		return Verdict{}, err
	}
	roots, err := Roots(a.Roots)
	if err != nil {
		return Verdict{}, err
	}
	object, err := ReadObject(stdin, a.Object)
	if err != nil {
		return Verdict{}, err
	}
	if a.Kind == "attestation" {
		envs, err := Environments(a.Environment)
		if err != nil {
			return Verdict{}, err
		}
		return CheckAttestation(object, AttestationConfig{AppIDs: a.AppIDs, ClientDataHash: cdh, At: at, Environments: envs, Roots: roots}), nil
	}
	cfg := AssertionConfig{AppID: a.AppIDs[0], ClientDataHash: cdh, At: at, Roots: roots}
	if a.AfterCounter >= 0 {
		c := uint32(a.AfterCounter)
		cfg.AfterCounter = &c
	}
	switch {
	case a.PublicKey != "":
		cfg.PublicKey, err = PublicKey(a.PublicKey)
	case a.Attestation == "-":
		err = usagef("--attestation: give a file; standard input is the assertion's")
	default:
		cfg.Attestation, err = ReadObject(nil, a.Attestation)
	}
	if err != nil {
		return Verdict{}, err
	}
	return CheckAssertion(object, cfg), nil
}

// check refuses a command line whose flags do not go together.
func (a ObjectArgs) check() error {
	switch {
	case a.Object == "":
		return usagef("give the %s object: FILE, or - for standard input", a.Kind)
	case a.Kind == "attestation" && len(a.AppIDs) == 0:
		return usagef("give the App ID the app attested as: --app-id TEAMID.bundle.id (repeatable)")
	case a.Kind == "attestation" && (a.Attestation != "" || a.PublicKey != "" || a.AfterCounter >= 0):
		return usagef("--attestation, --public-key and --after-counter are for assertion")
	case a.Kind == "attestation":
		return nil
	case len(a.AppIDs) != 1:
		return usagef("give the key's App ID once: --app-id TEAMID.bundle.id")
	case (a.Attestation == "") == (a.PublicKey == ""):
		return usagef("give the assertion's key: --attestation FILE or --public-key PEM")
	case a.PublicKey != "" && (a.At != "" || len(a.Roots) > 0):
		return usagef("--at and --root say how to check --attestation; with --public-key there is no chain")
	case a.Environment != "":
		return usagef("--environment is for attestation")
	case a.AfterCounter > int64(^uint32(0)):
		return usagef("--after-counter: at most %d", ^uint32(0))
	}
	return nil
}
