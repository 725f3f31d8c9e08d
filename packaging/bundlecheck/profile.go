package bundlecheck

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile"
)

// ProfileWant is what an embedded provisioning profile must match.
type ProfileWant struct {
	BundleID string
	// TeamID is TEAM_ID; empty takes the profile's own team.
	TeamID string
	// Entitlements are those the helper's code signature carries (before
	// signing, those it is to be signed with); nil skips the checks
	// against them.
	Entitlements plists.Entitlements
	// Now is when expiry is judged.
	Now time.Time
	// Roots verify the profile's CMS signature; nil means Apple Root CA.
	Roots *x509.CertPool
	// Signer is the certificate the helper is signed with (from its code
	// signature); nil before signing. The profile must list it.
	Signer *Certificate
}

// The fixes for profile findings.
const (
	fixProfileDownload = "download a Developer ID provisioning profile for the helper's App ID (Certificates, Identifiers & Profiles > Profiles), then make bundle PROFILE=path/to/profile TEAM_ID=TEAMID (then make sign)"
	fixProfileAsIs     = "embed the profile exactly as Apple's developer portal serves it (download it again; never edit or re-sign it): make bundle PROFILE=path/to/profile (then make sign)"
)

// CheckProfile applies the provisioning-profile rule to an embedded
// profile: Apple signed it (its CMS signature verifies and chains to
// Apple Root CA through an Apple profile signing certificate); it is a
// Developer ID profile for macOS that names the team, covers the bundle
// id and has not expired; and it grants every restricted entitlement the
// code signature claims with the value claimed (App Attest's environment
// among them), the application identifier included.
func CheckProfile(data []byte, want ProfileWant) []Finding {
	var out []Finding
	add := func(fix, format string, args ...any) {
		out = append(out, Finding{Rule: RuleProfile, Subject: "embedded.provisionprofile", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	p, err := profile.Parse(data)
	if err != nil {
		add(fixProfileDownload, "%v", err)
		return out
	}
	if err := p.Verify(profile.VerifyOptions{Roots: want.Roots}); err != nil {
		add(fixProfileAsIs, "%v", err)
	}
	teamID := want.TeamID
	switch {
	case len(p.TeamIdentifiers) == 0:
		add(fixProfileDownload, "profile names no TeamIdentifier")
	case teamID != "" && !slices.Contains(p.TeamIdentifiers, teamID):
		add(fixProfileDownload, "profile is for team %v, not TEAM_ID %s", p.TeamIdentifiers, teamID)
	case teamID == "":
		teamID = p.TeamIdentifiers[0]
	}
	wantID := teamID + "." + want.BundleID
	switch granted, ok := p.Allows(plists.ApplicationIdentifier, wantID); {
	case granted == nil:
		add(fixProfileDownload, "profile entitlements have no %s", plists.ApplicationIdentifier)
	case !ok:
		add(fixProfileDownload, "profile is for application identifier %v, not %q", granted, wantID)
	}
	if !p.ExpirationDate.IsZero() && p.ExpirationDate.Before(want.Now) {
		add(fixProfileDownload, "profile expired on %s", p.ExpirationDate.Format(time.DateOnly))
	}
	if len(p.Platforms) > 0 && !slices.Contains(p.Platforms, "OSX") {
		add(fixProfileDownload, "profile is for %v, not macOS (OSX)", p.Platforms)
	}
	switch k := p.Kind(); k {
	case profile.KindDeveloperID:
	case profile.KindDevelopment:
		add(fixProfileDownload, "a development profile: the helper would run only on the %d Macs it lists, and not with a Developer ID signature", len(p.ProvisionedDevices))
	default:
		add(fixProfileDownload, "an %s profile, which does not provision Developer ID code outside the Mac App Store", k)
	}
	if want.Signer != nil && len(want.Signer.Raw) > 0 && !slices.ContainsFunc(p.DeveloperCertificates, func(c []byte) bool { return bytes.Equal(c, want.Signer.Raw) }) {
		add(`regenerate the profile with the certificate you sign with selected (Profiles > the profile > Edit), or make sign IDENTITY="<a certificate the profile lists>"`,
			"the profile does not list the certificate the helper is signed with (%q) among its %d DeveloperCertificates: macOS refuses the profile", want.Signer.CommonName, len(p.DeveloperCertificates))
	}
	if want.Entitlements != nil {
		out = append(out, checkProfileGrants(p, want.Entitlements, wantID)...)
	}
	return out
}

// restricted reports whether a code signature may claim entitlement key
// only with a provisioning profile that grants it. The hardened runtime's
// exceptions and the App Sandbox's keys (com.apple.security.*) need none.
func restricted(key string) bool { return !strings.HasPrefix(key, "com.apple.security.") }

// checkProfileGrants compares the code signature's entitlements with the
// profile's: the signature carries the profile's App ID, and the profile
// grants each restricted entitlement the signature claims, with the value
// it claims.
func checkProfileGrants(p *profile.Profile, ents plists.Entitlements, wantID string) []Finding {
	var out []Finding
	add := func(fix, format string, args ...any) {
		out = append(out, Finding{Rule: RuleProfile, Subject: "embedded.provisionprofile", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	if got, _ := ents[plists.ApplicationIdentifier].(string); got != wantID {
		add("make bundle PROFILE=… TEAM_ID=… ENTITLEMENTS=entitlements/attestd.profile.entitlements (then make sign)",
			"a profile is embedded but the signing entitlements have %s = %q, want %q", plists.ApplicationIdentifier, got, wantID)
	}
	for _, key := range keys(ents) {
		if !restricted(key) || key == plists.ApplicationIdentifier || key == plists.TeamIdentifier {
			continue // the App ID just above; the team is the team-id rule's and the profile's TeamIdentifier's
		}
		claimed := ents[key]
		granted, ok := p.Allows(key, claimed)
		switch {
		case ok:
		case key == plists.AppAttestEnvironment && granted == nil:
			add("enable App Attest for the helper's App ID (Identifiers > BUNDLE_ID > Capabilities), generate and download the profile again, then make bundle PROFILE=… APPATTEST_ENV=… (then make sign); or build without APPATTEST_ENV",
				"the signature claims App Attest (%s = %v) but the profile does not grant it: macOS kills the helper at launch", key, claimed)
		case key == plists.AppAttestEnvironment:
			add(fmt.Sprintf("make bundle APPATTEST_ENV=%v (then make sign), or embed a profile that grants %v", granted, claimed),
				"the signature claims App Attest environment %v, the profile grants %v", claimed, granted)
		case granted == nil:
			add("remove "+key+" from the entitlements, or enable its capability for the App ID and download the profile again",
				"the signature claims %s = %v, which the profile does not grant", key, claimed)
		default:
			add("claim what the profile grants for "+key+", or enable it for the App ID and download the profile again",
				"the signature claims %s = %v, the profile grants %v", key, claimed, granted)
		}
	}
	return out
}

// checkNoProfile is the provisioning-profile rule for a bundle without a
// profile: its signature must claim no restricted entitlement.
func checkNoProfile(ents plists.Entitlements) []Finding {
	var claimed []string
	for _, k := range keys(ents) {
		if restricted(k) {
			claimed = append(claimed, k)
		}
	}
	if len(claimed) == 0 {
		return nil
	}
	fix := "make bundle PROFILE=path/to/profile TEAM_ID=TEAMID (then make sign), or sign with entitlements/attestd.entitlements"
	if slices.Contains(claimed, plists.AppAttestEnvironment) {
		fix = "make bundle PROFILE=path/to/profile APPATTEST_ENV=… TEAM_ID=TEAMID (then make sign), or build without APPATTEST_ENV"
	}
	return []Finding{{Rule: RuleProfile, Subject: "embedded.provisionprofile", Fix: fix,
		Problem: fmt.Sprintf("no embedded profile, but the signature claims %s: macOS kills a helper whose restricted entitlements no profile grants", strings.Join(claimed, ", "))}}
}
