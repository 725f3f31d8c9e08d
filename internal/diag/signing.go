package diag

import (
	"fmt"
	"strings"

	"github.com/attestd/attestd/darwin"
)

// signHint says how to give the helper the signature DeviceCheck needs.
const signHint = "sign the helper bundle with a Developer ID Application certificate: " +
	"codesign --force --options runtime --timestamp --sign \"Developer ID Application: NAME (TEAMID)\" Attestd.app " +
	"(or use the packaging pipeline)"

// appIDHint is what Apple requires beyond a signature, said where a
// DeviceCheck failure is reported.
const appIDHint = "DeviceCheck also needs an App ID for this helper's bundle identifier, registered in the signing team " +
	"(developer.apple.com > Certificates, Identifiers & Profiles > Identifiers); see entitlements/README.md"

// joinHints joins the hints that are not empty with "; ".
func joinHints(hints ...string) string {
	var out []string
	for _, h := range hints {
		if h != "" {
			out = append(out, h)
		}
	}
	return strings.Join(out, "; ")
}

// signingKind names what signs the code, as people say it.
func signingKind(sig darwin.Signature) string {
	switch {
	case !sig.Signed:
		return "unsigned"
	case sig.AdHoc() && sig.Flags&darwin.SignatureLinkerSigned != 0:
		return "ad-hoc (linker-signed)"
	case sig.AdHoc():
		return "ad-hoc"
	case sig.TeamID != "":
		return "team " + sig.TeamID + " (Developer ID or Apple Development certificate)"
	}
	return "signed without a Team ID"
}

// hasTeam reports whether DeviceCheck can tie the code to a developer
// team: signed with a certificate that carries a Team ID.
func hasTeam(sig darwin.Signature) bool { return sig.Signed && !sig.AdHoc() && sig.TeamID != "" }

// selfRequirement returns a code requirement the running binary
// satisfies, or "" for unsigned code, which none can admit.
func selfRequirement(sig darwin.Signature) string {
	switch {
	case !sig.Signed || sig.Identifier == "":
		return ""
	case hasTeam(sig):
		return fmt.Sprintf(`identifier %q and anchor apple generic and certificate leaf[subject.OU] = %q`, sig.Identifier, sig.TeamID)
	}
	return fmt.Sprintf(`identifier %q`, sig.Identifier)
}

// otherRequirement is a requirement the running binary does not satisfy.
const otherRequirement = `identifier "dev.attestd.selftest.no-such-peer"`
