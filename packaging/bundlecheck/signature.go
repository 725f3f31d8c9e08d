package bundlecheck

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/attestd/attestd/packaging/plists"
)

// CodeDirectory flags (cs_blobs.h) the rules look at.
const (
	FlagAdhoc        uint32 = 0x00000002
	FlagRuntime      uint32 = 0x00010000
	FlagLinkerSigned uint32 = 0x00020000
)

// CodeDirectory hash types (cs_blobs.h).
const (
	HashSHA1        uint8 = 1
	HashSHA256      uint8 = 2
	HashSHA256Trunc uint8 = 3
	HashSHA384      uint8 = 4
)

// Slice is what the rules need to know about one architecture of the
// helper executable. Verify fills it from the Mach-O; tests fill it by
// hand.
type Slice struct {
	Arch string // "arm64", "x86_64"
	// MinOS is LC_BUILD_VERSION's minos (or LC_VERSION_MIN_MACOSX's),
	// nibble-encoded xxxx.yy.zz; 0 if the slice has neither.
	MinOS uint32
	// Signature is nil when the slice has no LC_CODE_SIGNATURE.
	Signature *Signature
}

// Signature is one slice's embedded code signature.
type Signature struct {
	Identifier string
	TeamID     string
	Flags      uint32
	HashType   uint8
	// InfoPlistHash and ResourcesHash are special slots 1 and 3 of the
	// CodeDirectory; nil or all zero when not bound.
	InfoPlistHash []byte
	ResourcesHash []byte
	// Entitlements is the embedded entitlements XML, "" if none.
	Entitlements string
	// CMS is the CMS (PKCS #7) signature blob; empty for ad-hoc.
	CMS []byte
	// Leaf is the signing certificate found in CMS; nil if none could be
	// read (the rule that needs it is then skipped).
	Leaf *Certificate
}

// timeStampTokenOID is the DER encoding of id-aa-timeStampToken
// (1.2.840.113549.1.9.16.2.14), the unsigned attribute a secure timestamp
// (codesign --timestamp) adds to the CMS signature.
var timeStampTokenOID = []byte{0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0e}

// HasTimestamp reports whether the CMS signature carries a timestamp
// token from a time-stamping authority.
func (s *Signature) HasTimestamp() bool { return bytes.Contains(s.CMS, timeStampTokenOID) }

// Want is what the signature must say.
type Want struct {
	BundleID string
	// TeamID is the expected Team ID; empty accepts any non-empty one.
	TeamID string
	// InfoPlist and CodeResources are the bundle's files as on disk, to
	// compare with the bound hashes; nil skips the comparison.
	InfoPlist     []byte
	CodeResources []byte
	// Entitlements is what the helper was meant to be signed with; nil
	// skips the comparison.
	Entitlements plists.Entitlements
}

const (
	fixSign    = `make sign IDENTITY="Developer ID Application: NAME (TEAMID)" TEAM_ID=TEAMID (codesign --force --options runtime --timestamp --entitlements … on the bundle)`
	fixBundle  = "make universal bundle (then make sign)"
	fixResign  = "re-run make sign after the last change to the bundle (codesign signs Contents/Info.plist and Contents/_CodeSignature into the executable); sign the bundle directory, not the bare executable"
	minOSLimit = 12 << 16 // 12.0.0
)

func versionString(v uint32) string {
	s := fmt.Sprintf("%d.%d", v>>16, (v>>8)&0xff)
	if v&0xff != 0 {
		s += fmt.Sprintf(".%d", v&0xff)
	}
	return s
}

// CheckSlices applies the slices and minos rules.
func CheckSlices(slices []Slice) []Finding {
	var out []Finding
	have := map[string]bool{}
	for _, s := range slices {
		have[s.Arch] = true
	}
	for _, arch := range []string{"arm64", "x86_64"} {
		if !have[arch] {
			var got []string
			for _, s := range slices {
				got = append(got, s.Arch)
			}
			out = append(out, Finding{Rule: RuleSlices, Subject: "executable",
				Problem: fmt.Sprintf("no %s slice (has: %s)", arch, strings.Join(got, ", ")),
				Fix:     "make universal bundle (joins darwin/arm64 and darwin/amd64 with go-macho CreateFat)"})
		}
	}
	for _, s := range slices {
		subj := s.Arch + " slice"
		switch {
		case s.MinOS == 0:
			out = append(out, Finding{Rule: RuleMinOS, Subject: subj,
				Problem: "no LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX load command",
				Fix:     "build with the Go toolchain (GOOS=darwin), which writes LC_BUILD_VERSION; " + fixBundle})
		case s.MinOS > minOSLimit:
			out = append(out, Finding{Rule: RuleMinOS, Subject: subj,
				Problem: fmt.Sprintf("minos %s is newer than LSMinimumSystemVersion %s", versionString(s.MinOS), plists.MinimumSystemVersion),
				Fix:     "build with a Go toolchain whose macOS minimum is 12.0 (Go 1.25–1.26), or raise plists.MinimumSystemVersion deliberately"})
		}
	}
	return out
}

// CheckSignature applies the signature rules to one slice. An unsigned or
// ad-hoc slice gets exactly one finding (RuleSigned or RuleNotAdhoc):
// the other rules say nothing useful until it is signed.
func CheckSignature(s Slice, want Want) []Finding {
	subj := s.Arch + " slice"
	sig := s.Signature
	if sig == nil {
		return []Finding{{Rule: RuleSigned, Subject: subj,
			Problem: "not signed (no LC_CODE_SIGNATURE; the Go linker does not sign amd64 output)",
			Fix:     fixSign}}
	}
	if sig.Flags&FlagAdhoc != 0 || len(sig.CMS) == 0 {
		what := "ad-hoc signature"
		if sig.Flags&FlagLinkerSigned != 0 {
			what = "ad-hoc signature written by the Go linker (linker-signed)"
		}
		return []Finding{{Rule: RuleNotAdhoc, Subject: subj,
			Problem: what + ": no certificate, no Team ID, Info.plist not bound; DeviceCheck and Gatekeeper reject it",
			Fix:     fixSign}}
	}
	var out []Finding
	add := func(r Rule, fix, format string, args ...any) {
		out = append(out, Finding{Rule: r, Subject: subj, Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	if sig.Flags&FlagRuntime == 0 {
		add(RuleRuntime, "sign with the hardened runtime: codesign --options runtime (make sign does)",
			"hardened runtime flag (0x10000) not set (flags %#x); notarization rejects it", sig.Flags)
	}
	if !sig.HasTimestamp() {
		add(RuleTimestamp, "sign with a secure timestamp: codesign --timestamp (needs network; make sign does)",
			"no secure timestamp in the CMS signature; notarization rejects it")
	}
	if sig.Leaf != nil {
		if !isDeveloperID(sig.Leaf) {
			add(RuleDeveloperID, `sign with a "Developer ID Application" certificate: make sign IDENTITY="Developer ID Application: NAME (TEAMID)"`,
				"signed by %q; only Developer ID Application certificates can be notarized and run outside the App Store", sig.Leaf.CommonName)
		} else if sig.TeamID != "" && sig.Leaf.OrgUnit != "" && sig.Leaf.OrgUnit != sig.TeamID {
			add(RuleDeveloperID, fixSign, "certificate is for team %q but the CodeDirectory says %q", sig.Leaf.OrgUnit, sig.TeamID)
		}
	}
	switch {
	case sig.TeamID == "":
		add(RuleTeamID, fixSign, "no Team ID in the CodeDirectory")
	case want.TeamID != "" && sig.TeamID != want.TeamID:
		add(RuleTeamID, "sign with an identity of team "+want.TeamID+", or set TEAM_ID="+sig.TeamID+" if that team is intended",
			"Team ID %q, want %q (TEAM_ID)", sig.TeamID, want.TeamID)
	}
	if sig.Identifier != want.BundleID {
		add(RuleIdentifier, "sign the bundle (codesign takes CFBundleIdentifier) or pass --identifier "+want.BundleID+"; rebuild with make bundle BUNDLE_ID="+want.BundleID+" if the Info.plist is wrong",
			"signing identifier %q, want the bundle id %q", sig.Identifier, want.BundleID)
	}
	if isZero(sig.InfoPlistHash) {
		add(RuleInfoBound, fixResign, "Info.plist is not bound to the signature (special slot 1 empty)")
	} else if want.InfoPlist != nil && !hashMatches(sig.HashType, sig.InfoPlistHash, want.InfoPlist) {
		add(RuleInfoBound, fixResign, "bound Info.plist hash does not match Contents/Info.plist (changed after signing)")
	}
	if isZero(sig.ResourcesHash) {
		add(RuleSealed, fixResign, "bundle resources not sealed (special slot 3 empty, no _CodeSignature/CodeResources)")
	} else if want.CodeResources != nil && !hashMatches(sig.HashType, sig.ResourcesHash, want.CodeResources) {
		add(RuleSealed, fixResign, "sealed resources hash does not match Contents/_CodeSignature/CodeResources")
	}
	out = append(out, checkEmbeddedEntitlements(subj, sig.Entitlements, want.Entitlements)...)
	return out
}

func checkEmbeddedEntitlements(subj, xml string, want plists.Entitlements) []Finding {
	var out []Finding
	got := plists.Entitlements{}
	if xml != "" {
		e, err := plists.ParseEntitlements([]byte(xml))
		if err != nil {
			return []Finding{{Rule: RuleEntitlements, Subject: subj,
				Problem: "embedded entitlements do not parse: " + err.Error(),
				Fix:     "make sign (signs with the XML entitlements from make bundle)"}}
		}
		got = e
	}
	for _, p := range got.Problems() {
		out = append(out, Finding{Rule: RuleEntitlements, Subject: subj,
			Problem: "embedded entitlements: " + p,
			Fix:     "remove it from entitlements/*.entitlements, then make bundle sign"})
	}
	if want != nil && !reflect.DeepEqual(map[string]any(got), map[string]any(want)) {
		out = append(out, Finding{Rule: RuleEntitlements, Subject: subj,
			Problem: "embedded entitlements differ from the intended ones: " + entitlementsDiff(got, want),
			Fix:     "make sign (codesign --entitlements dist/Attestd.entitlements)"})
	}
	return out
}

// entitlementsDiff says, key by key, how got differs from want.
func entitlementsDiff(got, want plists.Entitlements) string {
	var d []string
	for _, k := range keys(want) {
		g, ok := got[k]
		switch {
		case !ok:
			d = append(d, k+" missing")
		case !reflect.DeepEqual(g, want[k]):
			d = append(d, fmt.Sprintf("%s = %v, want %v", k, g, want[k]))
		}
	}
	for _, k := range keys(got) {
		if _, ok := want[k]; !ok {
			d = append(d, k+" not intended")
		}
	}
	return strings.Join(d, "; ")
}

// CheckConsistent reports slices signed differently from each other.
func CheckConsistent(slices []Slice) []Finding {
	var first *Slice
	for i := range slices {
		s := &slices[i]
		if s.Signature == nil {
			continue
		}
		if first == nil {
			first = s
			continue
		}
		a, b := first.Signature, s.Signature
		if a.Identifier != b.Identifier || a.TeamID != b.TeamID || (a.Flags^b.Flags)&(FlagRuntime|FlagAdhoc) != 0 {
			return []Finding{{Rule: RuleConsistent, Subject: "executable",
				Problem: fmt.Sprintf("%s and %s slices are signed differently (%q/%q/%#x vs %q/%q/%#x)",
					first.Arch, s.Arch, a.Identifier, a.TeamID, a.Flags, b.Identifier, b.TeamID, b.Flags),
				Fix: "sign the universal binary once, as part of the bundle: " + fixSign}}
		}
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// hashMatches reports whether slot holds the CodeDirectory hash of data
// (truncated to the slot's length, as CodeDirectories store it).
func hashMatches(hashType uint8, slot, data []byte) bool {
	var sum []byte
	switch hashType {
	case HashSHA1:
		h := sha1.Sum(data)
		sum = h[:]
	case HashSHA256, HashSHA256Trunc:
		h := sha256.Sum256(data)
		sum = h[:]
	case HashSHA384:
		h := sha512.Sum384(data)
		sum = h[:]
	default:
		return true // unknown hash type: cannot compare, do not fail
	}
	if len(slot) > len(sum) {
		return false
	}
	return bytes.Equal(slot, sum[:len(slot)])
}

func keys(e plists.Entitlements) []string {
	out := make([]string, 0, len(e))
	for k := range e {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
