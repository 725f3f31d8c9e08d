package plists

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// InfoPlist is the helper bundle's Contents/Info.plist. codesign binds it
// to the executable's signature, so it is written once, before signing.
type InfoPlist struct {
	CFBundleDevelopmentRegion     string `plist:"CFBundleDevelopmentRegion"`
	CFBundleExecutable            string `plist:"CFBundleExecutable"`
	CFBundleIdentifier            string `plist:"CFBundleIdentifier"`
	CFBundleInfoDictionaryVersion string `plist:"CFBundleInfoDictionaryVersion"`
	CFBundleName                  string `plist:"CFBundleName"`
	CFBundlePackageType           string `plist:"CFBundlePackageType"`
	CFBundleShortVersionString    string `plist:"CFBundleShortVersionString"`
	CFBundleVersion               string `plist:"CFBundleVersion"`
	LSMinimumSystemVersion        string `plist:"LSMinimumSystemVersion"`
	// LSUIElement keeps the helper out of the Dock and the app switcher.
	LSUIElement bool `plist:"LSUIElement"`
	// AttestdLaunchAgentLabel and AttestdSocketKey name the LaunchAgent
	// this helper ships with and its socket variable, so the attestd
	// inside the bundle, run as a client (attestd token, bridge, doctor),
	// finds its own host's helper with no flag.
	AttestdLaunchAgentLabel string `plist:"AttestdLaunchAgentLabel,omitempty"`
	AttestdSocketKey        string `plist:"AttestdSocketKey,omitempty"`
}

// Info.plist keys of the helper's own (see InfoPlist).
const (
	InfoKeyLabel     = "AttestdLaunchAgentLabel"
	InfoKeySocketKey = "AttestdSocketKey"
)

// NewInfoPlist returns the Info.plist for a helper bundle named name
// (CFBundleName, e.g. "Attestd") whose executable is exe, with the bundle
// version derived from version (see BundleVersion).
func NewInfoPlist(bundleID, name, exe, version string) (*InfoPlist, error) {
	if err := CheckBundleID(bundleID); err != nil {
		return nil, err
	}
	if exe == "" || strings.Contains(exe, "/") {
		return nil, fmt.Errorf("bad executable name %q", exe)
	}
	v := BundleVersion(version)
	return &InfoPlist{
		CFBundleDevelopmentRegion:     "en",
		CFBundleExecutable:            exe,
		CFBundleIdentifier:            bundleID,
		CFBundleInfoDictionaryVersion: "6.0",
		CFBundleName:                  name,
		CFBundlePackageType:           "APPL",
		CFBundleShortVersionString:    v,
		CFBundleVersion:               v,
		LSMinimumSystemVersion:        MinimumSystemVersion,
		LSUIElement:                   true,
	}, nil
}

// BundleVersion turns a build version such as "v1.2.3-4-gabcdef-dirty"
// (git describe) into the one to three period-separated integers that
// CFBundleShortVersionString and CFBundleVersion must hold: "1.2.3".
// Anything else (a bare commit hash, "dev") gives "0.0.0". A version
// without a leading "v" needs a period, so a hash such as "3fcb1b9" or
// "1234567" is never read as a number.
func BundleVersion(version string) string {
	m := versionRE.FindStringSubmatch(version)
	if m == nil || (m[1] == "" && m[3] == "") {
		return "0.0.0"
	}
	parts := []string{}
	for _, p := range m[2:5] {
		if p == "" {
			break
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return "0.0.0"
		}
		parts = append(parts, strconv.FormatUint(n, 10))
	}
	return strings.Join(parts, ".")
}

var versionRE = regexp.MustCompile(`^([vV]?)(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?$`)

// CheckBundleID reports whether id is a usable bundle identifier: reverse
// DNS made of letters, digits, hyphens and periods.
func CheckBundleID(id string) error {
	if id == "" {
		return fmt.Errorf("empty bundle identifier")
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
		default:
			return fmt.Errorf("bundle identifier %q: character %q not allowed (letters, digits, '-' and '.')", id, r)
		}
	}
	if strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") || strings.Contains(id, "..") || !strings.Contains(id, ".") {
		return fmt.Errorf("bundle identifier %q is not reverse-DNS (e.g. com.example.Host.attestd)", id)
	}
	return nil
}
