package darwin

import (
	"fmt"
	"strings"
)

// Code signature flags (SecCodeSignatureFlags in Security/CSCommon.h), as
// found under kSecCodeInfoFlags.
const (
	SignatureAdhoc        = 0x0002  // kSecCodeSignatureAdhoc
	SignatureRuntime      = 0x10000 // kSecCodeSignatureRuntime: hardened runtime
	SignatureLinkerSigned = 0x20000 // kSecCodeSignatureLinkerSigned
)

// Signature is what a code signature says about the code that carries it.
type Signature struct {
	Signed     bool   // a signature exists (kSecCodeInfoIdentifier present)
	Identifier string // signing identifier (kSecCodeInfoIdentifier)
	TeamID     string // kSecCodeInfoTeamIdentifier; empty for ad-hoc signatures
	Flags      uint32 // kSecCodeInfoFlags
}

// AdHoc reports an ad-hoc signature (including the Go linker's own).
func (s Signature) AdHoc() bool { return s.Flags&SignatureAdhoc != 0 }

// HardenedRuntime reports the hardened runtime flag, which notarization
// requires.
func (s Signature) HardenedRuntime() bool { return s.Flags&SignatureRuntime != 0 }

// String describes the signature for people, e.g.
// `signed by team ABCDE12345, identifier "com.example.attestd", flags 0x10000(runtime)`.
func (s Signature) String() string {
	if !s.Signed {
		return "unsigned"
	}
	var b strings.Builder
	switch {
	case s.TeamID != "":
		fmt.Fprintf(&b, "signed by team %s", s.TeamID)
	case s.AdHoc():
		b.WriteString("ad-hoc signed")
	default:
		b.WriteString("signed without a Team ID")
	}
	fmt.Fprintf(&b, ", identifier %q, flags %#x", s.Identifier, s.Flags)
	var names []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{SignatureAdhoc, "adhoc"}, {SignatureRuntime, "runtime"}, {SignatureLinkerSigned, "linker-signed"}} {
		if s.Flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	if len(names) > 0 {
		fmt.Fprintf(&b, "(%s)", strings.Join(names, ","))
	}
	return b.String()
}

// identityOf combines the main bundle's identifier with the signature's
// Team ID. An ad-hoc signature never yields a Team ID.
func identityOf(bundleID string, sig Signature) Identity {
	id := Identity{BundleID: bundleID}
	if sig.Signed && !sig.AdHoc() {
		id.TeamID = sig.TeamID
	}
	return id
}
