package bundlecheck

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	macho "github.com/blacktop/go-macho"
	mtypes "github.com/blacktop/go-macho/types"

	"github.com/attestd/attestd/packaging/bundle"
	"github.com/attestd/attestd/packaging/plists"
)

// Config names what Verify checks and what it expects.
type Config struct {
	Bundle      string // dist/Attestd.app
	LaunchAgent string // dist/LaunchAgents/<LABEL>.plist; "" skips the agent rules
	// Entitlements is the entitlements file the bundle is signed with
	// (dist/Attestd.entitlements); "" skips the comparison.
	Entitlements string
	BundleID     string
	TeamID       string // "" accepts any Team ID
	Label        string
	// PeerRequirement is the PEER_REQUIREMENT the agent was built with
	// (see plists.PeerRequirement; "" means the team's when TeamID is set).
	PeerRequirement string
	// Provider, AppAttestEnv and AppAttestRegister are the PROVIDER,
	// APPATTEST_ENV and APPATTEST_REGISTER the bundle was built with (see
	// bundle.AppAttest): the agent must run that provider with that
	// registration URL, and the helper be entitled to exactly that App
	// Attest environment (none when empty).
	Provider          string
	AppAttestEnv      string
	AppAttestRegister string
	// ProfileRoots verify an embedded profile's signature; nil means
	// Apple Root CA. Tests pass their own.
	ProfileRoots *x509.CertPool
	// Now is the clock profile expiry is judged by; nil means time.Now.
	Now func() time.Time
}

// Verify checks the bundle, its executable's slices and signatures, the
// entitlements and the LaunchAgent plist. Problems with the bundle are
// findings in the report; the error is for unusable arguments only.
func Verify(c Config) (*Report, error) {
	if c.Bundle == "" || c.BundleID == "" {
		return nil, errors.New("verify: need the bundle path and the bundle id")
	}
	if c.Label == "" {
		c.Label = plists.DefaultLabel
	}
	r := &Report{}
	want := Want{BundleID: c.BundleID, TeamID: c.TeamID}

	// Info.plist.
	infoPath := filepath.Join(c.Bundle, "Contents", "Info.plist")
	exe := bundle.Executable
	var info map[string]any
	if data, err := os.ReadFile(infoPath); err != nil {
		r.add(Finding{Rule: RuleInfoPlist, Subject: "Info.plist", Problem: err.Error(), Fix: fixBundle})
	} else if info, err = plists.Dict(data); err != nil {
		r.add(Finding{Rule: RuleInfoPlist, Subject: "Info.plist", Problem: "does not parse: " + err.Error(), Fix: fixBundle})
	} else {
		r.Checked = append(r.Checked, infoPath)
		want.InfoPlist = data
		r.add(CheckInfoPlist(info, c.BundleID)...)
		if e, ok := info["CFBundleExecutable"].(string); ok && e != "" && !strings.Contains(e, "/") {
			exe = e
		}
	}
	if data, err := os.ReadFile(filepath.Join(c.Bundle, "Contents", "_CodeSignature", "CodeResources")); err == nil {
		want.CodeResources = data
	}

	// Entitlements file.
	if c.Entitlements != "" {
		data, err := os.ReadFile(c.Entitlements)
		if err != nil {
			r.add(Finding{Rule: RuleEntitlements, Subject: c.Entitlements, Problem: err.Error(), Fix: "make bundle (writes the resolved entitlements)"})
		} else {
			r.Checked = append(r.Checked, c.Entitlements)
			e, fs := CheckEntitlementsFile(c.Entitlements, data)
			r.add(fs...)
			if len(fs) == 0 {
				want.Entitlements = e
				r.add(CheckAppAttestEntitlement(c.Entitlements, e, c.AppAttestEnv)...)
			}
		}
	}

	// Executable.
	exePath := filepath.Join(c.Bundle, "Contents", "MacOS", exe)
	slices, err := readSlices(exePath)
	if err != nil {
		r.add(Finding{Rule: RuleSlices, Subject: "executable", Problem: err.Error(), Fix: fixBundle})
	} else {
		r.Checked = append(r.Checked, fmt.Sprintf("%s (%d slices)", exePath, len(slices)))
		r.add(CheckSlices(slices)...)
		r.Unsigned = len(slices) > 0
		for _, s := range slices {
			r.add(CheckSignature(s, want)...)
			if s.Signature != nil && s.Signature.Flags&FlagAdhoc == 0 && len(s.Signature.CMS) > 0 {
				r.Unsigned = false
			}
		}
		r.add(CheckConsistent(slices)...)
	}
	signed := signedEntitlements(slices, want.Entitlements)
	r.checkProfile(c, signed, signingCertificateOf(slices))
	if c.LaunchAgent != "" {
		r.checkAgent(c, info, exe, signed)
	}
	return r, nil
}

// checkProfile applies the provisioning-profile rule: an embedded profile
// must grant what the signature claims; without one the signature may
// claim nothing restricted.
func (r *Report) checkProfile(c Config, signed plists.Entitlements, signer *Certificate) {
	profilePath := filepath.Join(c.Bundle, "Contents", bundle.ProfileName)
	data, err := os.ReadFile(profilePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.add(checkNoProfile(signed)...)
	case err != nil:
		r.add(Finding{Rule: RuleProfile, Subject: "embedded.provisionprofile", Problem: err.Error(), Fix: fixBundle})
	default:
		r.Checked = append(r.Checked, profilePath)
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		r.add(CheckProfile(data, ProfileWant{BundleID: c.BundleID, TeamID: c.TeamID, Entitlements: signed,
			Now: now(), Roots: c.ProfileRoots, Signer: signer})...)
	}
}

// checkAgent applies the agent rules to c.LaunchAgent, with the helper's
// Info.plist (nil if unreadable), executable name and signing
// entitlements.
func (r *Report) checkAgent(c Config, info map[string]any, exe string, signed plists.Entitlements) {
	data, err := os.ReadFile(c.LaunchAgent)
	var agent map[string]any
	if err == nil {
		agent, err = plists.Dict(data)
	}
	if err != nil {
		r.add(Finding{Rule: RuleAgentLabel, Subject: "LaunchAgent", Problem: err.Error(), Fix: "make bundle LABEL=" + c.Label})
		return
	}
	r.Checked = append(r.Checked, c.LaunchAgent)
	r.add(CheckLaunchAgent(agent, AgentWant{Label: c.Label, BundleDir: filepath.Base(c.Bundle), Executable: exe,
		PeerRequirement: plists.PeerRequirement(c.PeerRequirement, c.TeamID),
		Provider:        bundle.AgentProvider(c.Provider, c.AppAttestRegister), AppAttestRegister: c.AppAttestRegister,
		Entitlements: signed})...)
	if info != nil {
		r.add(CheckAgentKey(info, agent, c.Label)...)
	}
	if base := filepath.Base(c.LaunchAgent); base != c.Label+".plist" {
		r.add(Finding{Rule: RuleAgentLabel, Subject: "LaunchAgent",
			Problem: fmt.Sprintf("file name %q is not LABEL.plist (%s.plist); SMAppService.agent(plistName:) takes the file name", base, c.Label),
			Fix:     "make bundle LABEL=" + c.Label})
	}
}

// signedEntitlements returns the entitlements the helper's code signature
// carries: those of the first slice signed with a certificate whose
// entitlements parse (the slices-agree and entitlements rules compare the
// rest), else, for a bundle not signed yet, the entitlements file's.
func signedEntitlements(slices []Slice, file plists.Entitlements) plists.Entitlements {
	for _, s := range slices {
		sig := s.Signature
		if sig == nil || sig.Flags&FlagAdhoc != 0 || len(sig.CMS) == 0 {
			continue
		}
		if sig.Entitlements == "" {
			return plists.Entitlements{}
		}
		if e, err := plists.ParseEntitlements([]byte(sig.Entitlements)); err == nil {
			return e
		}
	}
	return file
}

// signingCertificateOf returns the certificate the first slice signed with
// one was signed with; nil when none is (or it could not be read).
func signingCertificateOf(slices []Slice) *Certificate {
	for _, s := range slices {
		if s.Signature != nil && s.Signature.Flags&FlagAdhoc == 0 && s.Signature.Leaf != nil {
			return s.Signature.Leaf
		}
	}
	return nil
}

// readSlices is ReadSlices; tests replace it with hand-filled data to
// check a correctly signed bundle end to end.
var readSlices = ReadSlices

// ReadSlices reads the architectures and signatures of a thin or
// universal Mach-O executable. A file go-macho cannot parse is an error,
// never a panic: the verifier reads whatever it is pointed at.
func ReadSlices(name string) (_ []Slice, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: malformed Mach-O: %v", name, p)
		}
	}()
	ff, err := macho.OpenFat(name)
	if err == nil {
		defer ff.Close()
		out := make([]Slice, 0, len(ff.Arches))
		for _, a := range ff.Arches {
			out = append(out, inspect(a.File))
		}
		return out, nil
	}
	if !errors.Is(err, macho.ErrNotFat) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f, err := macho.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	return []Slice{inspect(f)}, nil
}

func archName(c mtypes.CPU) string {
	switch c {
	case mtypes.CPUArm64:
		return "arm64"
	case mtypes.CPUAmd64:
		return "x86_64"
	}
	return strings.ToLower(c.String())
}

func inspect(f *macho.File) Slice {
	s := Slice{Arch: archName(f.CPU)}
	for _, bv := range f.BuildVersions() {
		if bv.Platform == mtypes.Platform_macOS {
			s.MinOS = uint32(bv.Minos)
		}
	}
	if s.MinOS == 0 {
		if vm := f.VersionMin(); vm != nil && vm.LoadCmd == mtypes.LC_VERSION_MIN_MACOSX {
			s.MinOS = uint32(vm.Version)
		}
	}
	cs := f.CodeSignature()
	if cs == nil {
		return s
	}
	sig := &Signature{Entitlements: cs.Entitlements, CMS: cs.CMSSignature, Leaf: signingCertificate(cs.CMSSignature)}
	// Prefer the strongest CodeDirectory (SHA-256 over a SHA-1 primary).
	best := -1
	for i, cd := range cs.CodeDirectories {
		if best < 0 || uint8(cd.Header.HashType) > uint8(cs.CodeDirectories[best].Header.HashType) {
			best = i
		}
	}
	if best >= 0 {
		cd := cs.CodeDirectories[best]
		sig.Identifier = cd.ID
		sig.TeamID = cd.TeamID
		sig.Flags = uint32(cd.Header.Flags)
		sig.HashType = uint8(cd.Header.HashType)
		for _, ss := range cd.SpecialSlots {
			switch ss.Index {
			case 1:
				sig.InfoPlistHash = ss.Hash
			case 3:
				sig.ResourcesHash = ss.Hash
			}
		}
	}
	s.Signature = sig
	return s
}
