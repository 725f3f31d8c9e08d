// Package plists builds and reads the property lists attestd ships: the
// helper bundle's Info.plist, its LaunchAgent and its entitlements.
package plists

import (
	"bytes"
	"errors"
	"fmt"

	"howett.net/plist"
)

// Defaults shared by the packaging pipeline and "attestd agent".
const (
	// DefaultBundleID is the helper bundle's identifier for local builds.
	// A host app sets its own (make BUNDLE_ID=…).
	DefaultBundleID = "dev.attestd.helper"
	// DefaultLabel is the LaunchAgent's launchd label for local builds.
	DefaultLabel = "dev.attestd.agent"
	// DefaultSocketName is the key under Sockets that "attestd serve
	// --launchd" activates by default.
	DefaultSocketName = "Listeners"
	// DefaultSocketEnv is the environment variable launchd exports the
	// socket's path in when the socket uses SecureSocketWithKey.
	DefaultSocketEnv = "ATTESTD_SOCKET"
	// DefaultProvider is the provider the LaunchAgent runs.
	DefaultProvider = "devicecheck"
	// MinimumSystemVersion is the oldest macOS the helper supports: Go
	// 1.25+ targets macOS 12, and DCDevice works on macOS from 12.
	MinimumSystemVersion = "12.0"
	// SockPathMode0600 is 0600 as the decimal integer launchd expects.
	SockPathMode0600 = 0o600
	// SessionAqua is the GUI login session type; DeviceCheck needs one.
	SessionAqua = "Aqua"
	// ProcessTypeInteractive asks launchd not to throttle the helper:
	// codex app-server gives each attestation request about 100 ms, and
	// "Adaptive" only tracks XPC activity, which the helper does not use.
	ProcessTypeInteractive = "Interactive"
)

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
