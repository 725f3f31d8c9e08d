// Package profile reads an Apple provisioning profile: the property list
// inside it, the CMS signature Apple wraps it in, and that signature's
// chain to Apple Root CA; and says whether the profile grants an
// entitlement a code signature claims.
//
// What it proves offline: the profile's bytes are exactly what the
// certificate in its CMS signed; that certificate is one of Apple's
// provisioning-profile signing certificates and chains, through the
// intermediates in the CMS, to Apple Root CA (pinned by its SHA-256
// fingerprint) with every certificate valid at the time the profile was
// signed. What it cannot prove offline: that Apple has not revoked the
// profile, its signing certificate or the developer's certificate since
// (that needs Apple's OCSP and the developer portal), nor that macOS will
// accept the profile for this code (AMFI on a Mac decides that: codesign
// --verify, spctl, and launching the helper).
package profile

import (
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/attestd/attestd/packaging/plists"
)

// MaxSize bounds the profile a caller hands to Parse. Apple's are tens of
// kilobytes; a development profile listing many devices stays well below.
const MaxSize = 4 << 20

// Errors. Parse returns ErrMalformed; Verify returns ErrSignature,
// ErrUntrusted or ErrSigner. Each comes wrapped in an *Error with the
// detail.
var (
	ErrMalformed = errors.New("not a provisioning profile")
	ErrSignature = errors.New("the profile's CMS signature does not verify")
	ErrUntrusted = errors.New("the profile's signature does not chain to Apple Root CA")
	ErrSigner    = errors.New("the profile is not signed by Apple's provisioning-profile signing certificate")
)

// Error is a problem with a profile: which one (a sentinel error above)
// and what exactly.
type Error struct {
	Err    error
	Detail string
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Profile is a parsed provisioning profile. The fields come from the
// property list Apple signed; Parse does not check the signature, Verify
// does.
type Profile struct {
	Name      string
	UUID      string
	AppIDName string
	TeamName  string
	// TeamIdentifiers is the TeamIdentifier array (one team in practice).
	TeamIdentifiers []string
	// Platforms is the Platform array: "OSX" for a Mac profile, "iOS", …
	Platforms      []string
	CreationDate   time.Time
	ExpirationDate time.Time
	// ProvisionsAllDevices is set in Developer ID (and enterprise)
	// profiles; ProvisionedDevices lists the devices a development or
	// ad-hoc profile is limited to.
	ProvisionsAllDevices bool
	ProvisionedDevices   []string
	// DeveloperCertificates are the DER certificates the profile allows
	// to sign the code.
	DeveloperCertificates [][]byte
	// Entitlements is what the profile grants (see Allows).
	Entitlements map[string]any

	// Signer is the certificate that signed the profile, from the CMS.
	Signer *x509.Certificate
	// SigningTime is the CMS signing-time attribute; zero if absent.
	SigningTime time.Time

	env *envelope
}

// Parse reads a provisioning profile: a DER CMS SignedData with one signer
// whose attached content is an XML property list. It does not verify the
// signature (Verify does), so a profile that parses is not yet trusted.
func Parse(data []byte) (*Profile, error) {
	if len(data) > MaxSize {
		return nil, &Error{Err: ErrMalformed, Detail: fmt.Sprintf("%d bytes, more than a profile's %d", len(data), MaxSize)}
	}
	env, err := parseEnvelope(data)
	if err != nil {
		return nil, &Error{Err: ErrMalformed, Detail: err.Error()}
	}
	m, err := plists.Dict(env.content)
	if err != nil {
		return nil, &Error{Err: ErrMalformed, Detail: "signed content is not a property list: " + err.Error()}
	}
	p := &Profile{env: env, Signer: env.signer, SigningTime: env.signingTime}
	p.Name, _ = m["Name"].(string)
	p.UUID, _ = m["UUID"].(string)
	p.AppIDName, _ = m["AppIDName"].(string)
	p.TeamName, _ = m["TeamName"].(string)
	p.TeamIdentifiers = stringArray(m["TeamIdentifier"])
	p.Platforms = stringArray(m["Platform"])
	p.CreationDate, _ = m["CreationDate"].(time.Time)
	p.ExpirationDate, _ = m["ExpirationDate"].(time.Time)
	p.ProvisionsAllDevices, _ = m["ProvisionsAllDevices"].(bool)
	p.ProvisionedDevices = stringArray(m["ProvisionedDevices"])
	if l, ok := m["DeveloperCertificates"].([]any); ok {
		for _, c := range l {
			if b, ok := c.([]byte); ok {
				p.DeveloperCertificates = append(p.DeveloperCertificates, b)
			}
		}
	}
	p.Entitlements, _ = m["Entitlements"].(map[string]any)
	return p, nil
}

// stringArray returns the strings of a property-list array, skipping
// anything else.
func stringArray(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// VerifyOptions configure Verify. The zero value trusts Apple Root CA
// only.
type VerifyOptions struct {
	// Roots are the trust anchors; nil means AppleRoots(). Tests pass
	// their own certification authority.
	Roots *x509.CertPool
}

// Verify checks the profile's CMS signature (the content is what the
// signer certificate signed), that the signer chains to a root through the
// certificates in the CMS with every certificate valid when the profile
// was signed (its signing time, else its CreationDate), and that the
// signer is one of Apple's provisioning-profile signing certificates
// (SignerMac, SignerIOS). Apple lets its profile signing certificates
// expire while the profiles they signed stay valid for years, so validity
// is judged at the signing time, not now.
func (p *Profile) Verify(o VerifyOptions) error {
	if p.env == nil {
		return &Error{Err: ErrMalformed, Detail: "profile not read with Parse"}
	}
	if err := p.env.verify(); err != nil {
		return &Error{Err: ErrSignature, Detail: err.Error()}
	}
	at := p.SigningTime
	if at.IsZero() {
		at = p.CreationDate
	}
	if at.IsZero() {
		return &Error{Err: ErrUntrusted, Detail: "neither a signing time nor a CreationDate to judge the certificates' validity at"}
	}
	roots := o.Roots
	if roots == nil {
		var err error
		if roots, err = AppleRoots(); err != nil {
			return &Error{Err: ErrUntrusted, Detail: err.Error()}
		}
	}
	inter := x509.NewCertPool()
	for _, c := range p.env.certificates {
		if c != p.Signer {
			inter.AddCert(c)
		}
	}
	if _, err := p.Signer.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return &Error{Err: ErrUntrusted, Detail: fmt.Sprintf("signer %q at %s: %v", p.Signer.Subject.CommonName, at.UTC().Format(time.RFC3339), err)}
	}
	if !isProfileSigner(p.Signer) {
		return &Error{Err: ErrSigner, Detail: fmt.Sprintf("signed by %q", p.Signer.Subject.String())}
	}
	return nil
}

// Kind is what a profile is for, read from its device fields.
type Kind string

// The kinds of profile.
const (
	// KindDeveloperID runs on any Mac (ProvisionsAllDevices): what a
	// helper shipped outside the Mac App Store needs.
	KindDeveloperID Kind = "Developer ID"
	// KindDevelopment runs only on the devices it lists.
	KindDevelopment Kind = "development"
	// KindDistribution lists no devices and does not provision all: Mac
	// App Store (or App Store) distribution, for Apple to re-sign.
	KindDistribution Kind = "App Store distribution"
)

// Kind says what the profile is for.
func (p *Profile) Kind() Kind {
	switch {
	case p.ProvisionsAllDevices:
		return KindDeveloperID
	case len(p.ProvisionedDevices) > 0:
		return KindDevelopment
	}
	return KindDistribution
}

// Allows reports whether the profile's Entitlements authorize a code
// signature that claims key with the value claimed, and returns what the
// profile grants for key (nil when it does not mention it). The profile
// grants a value when it holds the same value; an array of allowed values
// one of which matches (Apple writes App Attest's environment so in
// distribution profiles: development and production); a string ending in
// "*" whose prefix the claimed string starts with (the TEAMID.* form of
// application and keychain identifiers); or, for a claimed array, each of
// its elements.
func (p *Profile) Allows(key string, claimed any) (granted any, ok bool) {
	granted, present := p.Entitlements[key]
	if !present {
		return nil, false
	}
	return granted, grants(granted, claimed)
}

func grants(granted, claimed any) bool {
	if l, ok := claimed.([]any); ok {
		for _, c := range l {
			if !grants(granted, c) {
				return false
			}
		}
		return true
	}
	switch g := granted.(type) {
	case []any:
		for _, e := range g {
			if grants(e, claimed) {
				return true
			}
		}
		return false
	case string:
		c, ok := claimed.(string)
		if !ok {
			return false
		}
		if prefix, wild := strings.CutSuffix(g, "*"); wild {
			return strings.HasPrefix(c, prefix)
		}
		return g == c
	case bool:
		return g && claimed == true
	}
	return reflect.DeepEqual(granted, claimed)
}
