// Package plists builds and reads the property lists attestd ships: the
// helper bundle's Info.plist, its LaunchAgent and its entitlements.
package plists

import (
	"bytes"
	"errors"
	"fmt"

	"howett.net/plist"

	"github.com/attestd/attestd/bridge/socket"
)

// Defaults shared by the packaging pipeline and "attestd agent".
const (
	// DefaultBundleID is the helper bundle's identifier for local builds.
	// A host app sets its own (make BUNDLE_ID=…).
	DefaultBundleID = "dev.attestd.helper"
	// DefaultLabel is the LaunchAgent's launchd label for local builds.
	// Clients look for this agent when none is named.
	DefaultLabel = socket.DefaultLabel
	// DefaultSocketName is the key under Sockets that "attestd serve
	// --launchd" activates by default.
	DefaultSocketName = "Listeners"
	// DefaultProvider is the provider the LaunchAgent runs.
	DefaultProvider = "devicecheck"
	// MinimumSystemVersion is the oldest macOS the helper runs on.
	// DeviceCheck exists from macOS 10.15, but attestd needs macOS 12
	// because Go (1.25+) does.
	MinimumSystemVersion = "12.0"
	// SockPathMode0600 is 0600 as the decimal integer launchd expects.
	SockPathMode0600 = 0o600
	// SessionAqua is the GUI login session type; DeviceCheck needs one.
	SessionAqua = "Aqua"
	// ProcessTypeInteractive asks launchd not to throttle the helper:
	// codex app-server gives each attestation request about 100 ms, and
	// "Adaptive" only tracks XPC activity, which the helper does not use.
	ProcessTypeInteractive = "Interactive"
	// LogDir is where an agent's log goes, in the user's home: the place
	// Console.app lists under "Log Reports" and users are told to look.
	LogDir = "~/Library/Logs"
)

// LogFile is the --log-file an agent labelled label writes to. It keeps
// the "~": launchd expands neither "~" nor variables in a plist, so
// "attestd serve --log-file" expands it itself, for the user it runs as.
func LogFile(label string) string { return LogDir + "/" + label + ".log" }

// PeerRequirementNone in PEER_REQUIREMENT switches the default peer
// requirement off: any process of the user may then ask for tokens.
const PeerRequirementNone = "none"

// TeamPeerRequirement is the code requirement a shipped agent sets by
// default when the team is known: only code signed with an Apple-issued
// certificate of that team (the host app, its helpers, and attestd itself)
// may ask for tokens.
func TeamPeerRequirement(teamID string) string {
	return `anchor apple generic and certificate leaf[subject.OU] = "` + teamID + `"`
}

// PeerRequirement resolves the PEER_REQUIREMENT make variable: empty means
// TeamPeerRequirement(teamID) when teamID is set (else none), "none"
// means none, anything else is the requirement itself.
func PeerRequirement(value, teamID string) string {
	switch value {
	case PeerRequirementNone:
		return ""
	case "":
		if teamID == "" {
			return ""
		}
		return TeamPeerRequirement(teamID)
	}
	return value
}

// Marshal encodes v as an XML property list, tab-indented, as Apple's
// tools write them. It is the only plist encoder the packaging uses.
func Marshal(v any) ([]byte, error) {
	b, err := plist.MarshalIndent(v, plist.XMLFormat, "\t")
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	return b, nil
}

// ErrNotXML reports a property list in binary or OpenStep format where
// XML is required (codesign and notarization want XML entitlements).
var ErrNotXML = errors.New("property list is not in XML format")

// Unmarshal decodes a property list of any format into v and reports
// whether it was XML.
func Unmarshal(data []byte, v any) (xml bool, err error) {
	format, err := plist.Unmarshal(data, v)
	if err != nil {
		return false, err
	}
	return format == plist.XMLFormat, nil
}

// Dict decodes a property list whose root is a dictionary, keeping every
// value's plist type (string, bool, uint64/int64, float64, []any,
// map[string]any, []byte, time.Time) so callers can check types.
func Dict(data []byte) (map[string]any, error) {
	var m map[string]any
	if _, err := plist.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("property list root is not a dictionary")
	}
	return m, nil
}
