package appattestcli

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify/appattest"
)

// Report is what "attestd appattest attestation|assertion" prints.
type Report struct {
	// Valid is true only when every check passed (exit status 0).
	Valid bool `json:"valid"`
	// Outcome names the exit status: valid, not_valid or not_checked.
	Outcome string `json:"outcome"`
	// Reason is package appattest's name of the check that failed.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// KeyID is the key id in standard base64, as Apple gives it.
	KeyID       string `json:"keyId,omitempty"`
	Environment string `json:"environment,omitempty"`
	// Counter is the attestation's (0) or the assertion's counter.
	Counter *uint32 `json:"counter,omitempty"`
	AppID   string  `json:"appId,omitempty"`
	// Root names the root the chain ended at: apple, development, or
	// file:NAME for another --root.
	Root string `json:"root,omitempty"`
	// KeyFrom says where an assertion's key came from: attestation or
	// public-key.
	KeyFrom string `json:"keyFrom,omitempty"`
	// Leaf is the credential certificate's validity.
	Leaf *Leaf `json:"leaf,omitempty"`
	// ReceiptBytes is the size of Apple's receipt (not parsed).
	ReceiptBytes int `json:"receiptBytes,omitempty"`
	// KeyPolicy is the leaf's key-policy extension (macOS 27), base64.
	KeyPolicy string `json:"keyPolicy,omitempty"`
	// Extensions is the authenticator data's extensions map (2026).
	Extensions *Extensions `json:"extensions,omitempty"`
}

// Leaf is when the credential certificate is valid.
type Leaf struct {
	NotBefore string `json:"notBefore"`
	NotAfter  string `json:"notAfter"`
}

// Extensions is what the authenticator data's extensions say.
type Extensions struct {
	ValidationCategory *uint32 `json:"validationCategory,omitempty"`
	BundleVersion      string  `json:"bundleVersion,omitempty"`
	// Raw is the map's CBOR, base64.
	Raw string `json:"raw"`
}

// AttestationConfig says how to check an attestation.
type AttestationConfig struct {
	AppIDs         []string
	ClientDataHash []byte
	// At is when the chain must be valid.
	At           time.Time
	Environments []appattest.Environment
	Roots        []*appattest.Root
}

// CheckAttestation checks an attestation object as a server registering
// its key does.
func CheckAttestation(object []byte, cfg AttestationConfig) Verdict {
	key, err := appattest.VerifyAttestation(object, appattest.AttestationOptions{AppIDs: cfg.AppIDs,
		ClientDataHash: cfg.ClientDataHash, Environments: cfg.Environments, Now: cfg.At, Roots: cfg.Roots})
	r := &Report{}
	if err != nil {
		return verdict(r, codeOf(err), hint.Wrap(err, attestationHint(err)))
	}
	describeKey(r, key)
	var zero uint32
	r.Counter = &zero
	return verdict(r, Valid, nil)
}

// describeKey puts what an attested key says in r.
func describeKey(r *Report, key *appattest.Key) {
	r.KeyID = base64.StdEncoding.EncodeToString(key.ID)
	r.Environment, r.AppID, r.Root = string(key.Environment), key.AppID, key.Root
	r.ReceiptBytes = len(key.Receipt)
	if key.Certificate != nil {
		r.Leaf = &Leaf{NotBefore: key.Certificate.NotBefore.UTC().Format(time.RFC3339), NotAfter: key.Certificate.NotAfter.UTC().Format(time.RFC3339)}
	}
	if key.KeyPolicy != nil {
		r.KeyPolicy = base64.StdEncoding.EncodeToString(key.KeyPolicy)
	}
	r.Extensions = extensionsOf(key.Extensions)
}

func extensionsOf(e *appattest.Extensions) *Extensions {
	if e == nil {
		return nil
	}
	out := &Extensions{Raw: base64.StdEncoding.EncodeToString(e.Raw)}
	if c, ok := e.ValidationCategory(); ok {
		out.ValidationCategory = &c
	}
	out.BundleVersion, _ = e.BundleVersion()
	return out
}

// AssertionConfig says how to check an assertion: with the key an
// attestation certifies (its nonce is not checked: its challenge is not
// needed), or with a public key.
type AssertionConfig struct {
	// Attestation is the key's attestation object; nil when PublicKey is
	// given.
	Attestation []byte
	// At is when the attestation's chain must be valid; Roots the roots
	// it may end at.
	At    time.Time
	Roots []*appattest.Root
	// PublicKey is the key, when no Attestation is given.
	PublicKey      *ecdsa.PublicKey
	AppID          string
	ClientDataHash []byte
	// AfterCounter, when set, refuses a counter not above it (a replay).
	AfterCounter *uint32
}

// CheckAssertion checks an assertion object with its key.
func CheckAssertion(object []byte, cfg AssertionConfig) Verdict {
	r := &Report{KeyFrom: "public-key"}
	key := &appattest.Key{PublicKey: cfg.PublicKey, AppID: cfg.AppID}
	if cfg.Attestation != nil {
		r.KeyFrom = "attestation"
		k, err := appattest.AttestedKey(cfg.Attestation, appattest.AttestationOptions{AppIDs: []string{cfg.AppID}, Now: cfg.At,
			Environments: []appattest.Environment{appattest.Development, appattest.Production}, Roots: cfg.Roots})
		if err != nil {
			err = fmt.Errorf("the --attestation does not certify a key: %w", err)
			return verdict(r, NotChecked, hint.Wrap(err, attestationHint(err)))
		}
		describeKey(r, k)
		key = k
	} else if pt, err := cfg.PublicKey.Bytes(); err == nil {
		id := sha256.Sum256(pt)
		r.KeyID, r.AppID = base64.StdEncoding.EncodeToString(id[:]), cfg.AppID
	}
	a, err := appattest.VerifyAssertion(object, key, cfg.ClientDataHash)
	if err != nil {
		return verdict(r, codeOf(err), hint.Wrap(err, assertionHint(err)))
	}
	r.Counter = &a.Counter
	r.Extensions = extensionsOf(a.Extensions) // the assertion's, not the attestation's
	if cfg.AfterCounter != nil && a.Counter <= *cfg.AfterCounter {
		err := &appattest.Error{Reason: "replay", Err: appattest.ErrReplay, Detail: fmt.Sprintf("counter %d is not above --after-counter %d", a.Counter, *cfg.AfterCounter)}
		return verdict(r, NotValid, hint.Wrap(err, "each assertion has a counter above the last one its key made; this one is not newer than --after-counter"))
	}
	return verdict(r, Valid, nil)
}

// codeOf is the exit status of a failed check: a refusal is NotValid,
// anything else (a caller's mistake the flags did not catch) NotChecked.
func codeOf(err error) int {
	if appattest.Rejected(err) {
		return NotValid
	}
	return NotChecked
}

// attestationHint says what to do about a refused attestation.
func attestationHint(err error) string {
	switch appattest.Reason(err) {
	case "bad_nonce":
		return "the attestation was made for another clientDataHash: give SHA-256 of the challenge the app attested with (--client-data-hash), or the challenge's bytes (--client-data FILE)"
	case "bad_chain":
		return "the chain ends at neither Apple's App Attestation root nor a --root given; a development key needs --root with the development root (verify/appattest/devattest)"
	case "expired":
		return "leaves live from three days to a year: check a stored attestation with --at a time inside its leaf's validity"
	case "bad_app_id":
		return "give the App ID the app attested as, TEAMID.bundle.id (--app-id, repeatable)"
	case "bad_environment":
		return "the key is of the other environment: see --environment"
	case "bad_format", "bad_auth_data":
		return "this is not an App Attest attestation object: give the raw CBOR or its base64, as attestKey returned it"
	}
	return ""
}

// assertionHint says what to do about a refused assertion.
func assertionHint(err error) string {
	switch appattest.Reason(err) {
	case "bad_signature":
		return "the assertion was signed over another clientDataHash, or by another key: check --client-data-hash or --client-data, and the key"
	case "bad_app_id":
		return "give the App ID the key was attested for (--app-id)"
	case "bad_format", "bad_auth_data":
		return "this is not an App Attest assertion object: give the raw CBOR or its base64, as generateAssertion returned it"
	}
	return ""
}
