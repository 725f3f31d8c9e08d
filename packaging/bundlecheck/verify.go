// Package bundlecheck checks a built, signed helper bundle and its LaunchAgent
// plist on any OS, reading the Mach-O signature with go-macho, and says
// for each failure how to fix it.
package bundlecheck

import (
	"fmt"
	"io"
	"strings"
)

// Rule names one check. Findings carry the rule they break.
type Rule string

// The rules, in the order Verify applies them.
const (
	RuleSlices        Rule = "slices"           // arm64 and x86_64 present
	RuleMinOS         Rule = "minos"            // every slice runs on macOS 12.0
	RuleSigned        Rule = "signed"           // every slice has a code signature
	RuleNotAdhoc      Rule = "not-adhoc"        // signed with a certificate, not ad hoc
	RuleRuntime       Rule = "hardened-runtime" // CodeDirectory flag 0x10000
	RuleTimestamp     Rule = "timestamp"        // secure timestamp in the CMS signature
	RuleDeveloperID   Rule = "developer-id"     // signed by a Developer ID Application certificate
	RuleTeamID        Rule = "team-id"          // Team ID present and equal to TEAM_ID
	RuleIdentifier    Rule = "identifier"       // signing identifier is the bundle id
	RuleInfoBound     Rule = "info-plist-bound" // Info.plist hash in special slot 1
	RuleSealed        Rule = "resources-sealed" // _CodeSignature/CodeResources in slot 3
	RuleConsistent    Rule = "slices-agree"     // both slices signed alike
	RuleEntitlements  Rule = "entitlements"     // parse, no get-task-allow, as intended
	RuleInfoPlist     Rule = "info-plist"       // Info.plist keys
	RuleProfile       Rule = "provisioning-profile"
	RuleAgentLabel    Rule = "agent-label"
	RuleBundleProgram Rule = "agent-bundle-program"
	RuleAgentSocket   Rule = "agent-socket"
	RuleAgentSession  Rule = "agent-session-type"
	RuleAgentOnDemand Rule = "agent-on-demand"
	RuleAgentKey      Rule = "agent-socket-key"       // the host's own socket variable, known to its bundle
	RuleAgentPeer     Rule = "agent-peer-requirement" // who may ask, as PEER_REQUIREMENT and TEAM_ID say
	RuleAgentLog      Rule = "agent-log"              // a per-user log file the user can find
	RuleAgentProvider Rule = "agent-provider"         // the provider and App Attest registration URL PROVIDER and APPATTEST_REGISTER say
)

// A Finding is one failed check: what, where, and how to fix it.
type Finding struct {
	Rule    Rule
	Subject string // "arm64 slice", "Info.plist", "LaunchAgent", …
	Problem string
	Fix     string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s [%s]: %s\n    fix: %s", f.Subject, f.Rule, f.Problem, f.Fix)
}

// Report is the outcome of Verify.
type Report struct {
	Findings []Finding
	// Checked lists what was looked at, for the summary.
	Checked []string
	// Unsigned reports that no slice carries a certificate signature
	// (unsigned or ad hoc): what a build without signing tools gives.
	Unsigned bool
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// Has reports whether r has a finding for rule about subject ("" for any
// subject).
func (r *Report) Has(rule Rule, subject string) bool {
	for _, f := range r.Findings {
		if f.Rule == rule && (subject == "" || f.Subject == subject) {
			return true
		}
	}
	return false
}

func (r *Report) add(fs ...Finding) { r.Findings = append(r.Findings, fs...) }

// Write prints the report for a person: each finding with its fix, then a
// one-line verdict.
func (r *Report) Write(w io.Writer) {
	for _, c := range r.Checked {
		fmt.Fprintf(w, "checked %s\n", c)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "FAIL %s\n", f)
	}
	if r.OK() {
		fmt.Fprintf(w, "verify: OK\n")
		return
	}
	fmt.Fprintf(w, "verify: %d problem(s)\n", len(r.Findings))
	if r.Unsigned {
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(unsignedNote))
	}
}

const unsignedNote = `
note: the helper is not signed with a certificate. That is expected for a
      bundle built without signing tools (e.g. on Linux without rcodesign):
      the signature checks above can only pass after
      make sign IDENTITY="Developer ID Application: NAME (TEAMID)" TEAM_ID=TEAMID
`
