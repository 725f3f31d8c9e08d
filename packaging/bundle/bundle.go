// Package bundle builds the helper's universal binary and assembles
// Attestd.app with its LaunchAgent plist, ready for signing.
package bundle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/attestd/attestd/packaging/plists"
)

// Layout names. The helper is nested in the host app as
// Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd.
const (
	Name       = "Attestd"     // CFBundleName
	Dir        = "Attestd.app" // the bundle directory
	Executable = "attestd"     // CFBundleExecutable
	// HostHelpersDir is where the host app keeps nested helper bundles
	// (sealed as nested code).
	HostHelpersDir = "Contents/Helpers"
	// HostLaunchAgentsDir is where SMAppService.agent(plistName:) looks.
	HostLaunchAgentsDir = "Contents/Library/LaunchAgents"
	// ProfileName is the provisioning profile's name inside the bundle.
	ProfileName = "embedded.provisionprofile"
	// EntitlementsFile is the resolved entitlements written next to the
	// bundle for "make sign".
	EntitlementsFile = "Attestd.entitlements"
)

// BundleProgram is the LaunchAgent's BundleProgram: the helper executable
// relative to the host app.
var BundleProgram = path.Join(HostHelpersDir, Dir, "Contents/MacOS", Executable)

// Config describes one bundle build.
type Config struct {
	Binary   string // the universal executable (dist/attestd)
	OutDir   string // where Attestd.app and LaunchAgents/ go (dist)
	BundleID string
	Label    string
	Version  string
	// Profile is an optional provisioning profile to embed.
	Profile string
	// Entitlements is the entitlements plist to resolve (Xcode-style
	// variables) into OutDir/Attestd.entitlements.
	Entitlements string
	TeamID       string
	// SocketKey is the agent's socket variable; empty derives it from
	// Label (socket.KeyForLabel).
	SocketKey string
	// PeerRequirement is the PEER_REQUIREMENT make variable, resolved
	// with TeamID by plists.PeerRequirement: empty gives the team's
	// requirement when TeamID is set, "none" switches it off.
	PeerRequirement string
	// Provider, AppAttestEnv and AppAttestRegister are the PROVIDER,
	// APPATTEST_ENV and APPATTEST_REGISTER make variables (see
	// AppAttest.Resolve): the agent's provider and registration URL, and
	// the App Attest environment the helper is entitled to.
	Provider          string
	AppAttestEnv      string
	AppAttestRegister string
}

// teamIDRE matches an Apple developer team identifier.
var teamIDRE = regexp.MustCompile(`^[A-Z0-9]{10}$`)

// Result names what Assemble wrote.
type Result struct {
	Bundle       string // OutDir/Attestd.app
	Executable   string
	InfoPlist    string
	LaunchAgent  string // OutDir/LaunchAgents/<Label>.plist
	Entitlements string // OutDir/Attestd.entitlements, "" if none
	// SocketKey is the variable launchd publishes the socket path in;
	// PeerRequirement the one the agent admits peers by ("" for any);
	// Provider the provider the agent runs.
	SocketKey       string
	PeerRequirement string
	Provider        string
	// Warnings are problems that do not stop the build, such as a
	// version that is not a release.
	Warnings []string
}

// Assemble writes a fresh OutDir/Attestd.app (any previous one, with its
// signature, is removed first), the LaunchAgent plist for
// Host.app/Contents/Library/LaunchAgents, and the resolved entitlements.
// Settings that cannot work together are refused (a *SettingsError)
// before anything is written.
func Assemble(c Config) (*Result, error) {
	if c.Label == "" {
		c.Label = plists.DefaultLabel
	}
	if c.BundleID == "" {
		c.BundleID = plists.DefaultBundleID
	}
	provider, warnings, err := CheckSettings(c)
	if err != nil {
		return nil, err
	}
	info, err := plists.NewInfoPlist(c.BundleID, Name, Executable, c.Version)
	if err != nil {
		return nil, err
	}
	agent, err := plists.NewLaunchAgent(plists.AgentConfig{
		Label:             c.Label,
		BundleProgram:     BundleProgram,
		Provider:          provider,
		AppAttestRegister: c.AppAttestRegister,
		SocketKey:         c.SocketKey,
		PeerRequirement:   plists.PeerRequirement(c.PeerRequirement, c.TeamID),
	})
	if err != nil {
		return nil, err
	}
	key := agent.Sockets[plists.DefaultSocketName].SecureSocketWithKey
	info.AttestdLaunchAgentLabel, info.AttestdSocketKey = c.Label, key
	if v := plists.BundleVersion(c.Version); v == "0.0.0" {
		warnings = append(warnings, fmt.Sprintf("version %q is not a release (vX.Y.Z): the bundle version is 0.0.0, and macOS cannot tell this build from any other; tag the release (git tag v1.2.3) or pass VERSION=1.2.3", c.Version))
	}
	if err := checkMachO(c.Binary); err != nil {
		return nil, err
	}
	var ents []byte
	if c.Entitlements != "" {
		ents, err = resolveEntitlements(c.Entitlements, c.TeamID, c.BundleID, c.AppAttestEnv)
		if err != nil {
			return nil, err
		}
	} else if c.AppAttestEnv != "" {
		return nil, &SettingsError{Problem: "APPATTEST_ENV without an entitlements file to add it to",
			Fix: "ENTITLEMENTS=entitlements/attestd.profile.entitlements (the default with PROFILE)"}
	}
	return write(c, info, agent, ents, warnings)
}

// CheckSettings checks what can be checked of c before anything is built:
// the team identifier's form and the App Attest settings (AppAttest.Resolve,
// and that the profile grants APPATTEST_ENV). It returns the provider the
// agent will run and warnings, as Assemble does; make bundle runs it first
// so that a bad combination fails before the universal binary is built.
func CheckSettings(c Config) (provider string, warnings []string, err error) {
	if c.TeamID != "" && !teamIDRE.MatchString(c.TeamID) {
		// It goes into the agent's peer requirement: a typo there would
		// refuse every client.
		return "", nil, fmt.Errorf("TEAM_ID %q is not an Apple team identifier (10 upper-case letters and digits, as in: security find-identity -v -p codesigning)", c.TeamID)
	}
	provider, warnings, err = AppAttest{Provider: c.Provider, Environment: c.AppAttestEnv,
		Register: c.AppAttestRegister, Profile: c.Profile != ""}.Resolve()
	if err != nil {
		return "", nil, err
	}
	if c.AppAttestEnv != "" {
		if err := checkProfileGrants(c.Profile, c.AppAttestEnv); err != nil {
			return "", nil, err
		}
	}
	return provider, warnings, nil
}

// write puts the bundle, the agent and the entitlements on disk.
func write(c Config, info *plists.InfoPlist, agent *plists.LaunchAgent, ents []byte, warnings []string) (*Result, error) {
	req, _ := plists.FlagValue(agent.ProgramArguments, "peer-requirement")
	provider, _ := plists.FlagValue(agent.ProgramArguments, "provider")
	r := &Result{
		Bundle:          filepath.Join(c.OutDir, Dir),
		LaunchAgent:     filepath.Join(c.OutDir, "LaunchAgents", c.Label+".plist"),
		SocketKey:       agent.Sockets[plists.DefaultSocketName].SecureSocketWithKey,
		PeerRequirement: req,
		Provider:        provider,
		Warnings:        warnings,
	}
	r.Executable = filepath.Join(r.Bundle, "Contents", "MacOS", Executable)
	r.InfoPlist = filepath.Join(r.Bundle, "Contents", "Info.plist")
	if err := os.RemoveAll(r.Bundle); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(r.Executable), 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(r.Executable, c.Binary, 0o755); err != nil {
		return nil, err
	}
	if err := writePlist(r.InfoPlist, info); err != nil {
		return nil, err
	}
	if c.Profile != "" {
		if err := copyFile(filepath.Join(r.Bundle, "Contents", ProfileName), c.Profile, 0o644); err != nil {
			return nil, fmt.Errorf("embed provisioning profile: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(r.LaunchAgent), 0o755); err != nil {
		return nil, err
	}
	if err := writePlist(r.LaunchAgent, agent); err != nil {
		return nil, err
	}
	if ents != nil {
		r.Entitlements = filepath.Join(c.OutDir, EntitlementsFile)
		if err := os.WriteFile(r.Entitlements, ents, 0o644); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// resolveEntitlements reads the entitlements file, resolves its Xcode-style
// variables and adds the App Attest environment env (if set), which needs
// the profile variant's application identifier for TEAMID.BUNDLE_ID.
func resolveEntitlements(file, teamID, bundleID, env string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	e, err := plists.ParseEntitlements(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if p := e.Problems(); len(p) > 0 {
		return nil, fmt.Errorf("%s: %s", file, strings.Join(p, "; "))
	}
	r, err := e.Resolve(teamID, bundleID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if env != "" {
		if id, _ := r[plists.ApplicationIdentifier].(string); teamID == "" || id != teamID+"."+bundleID {
			return nil, &SettingsError{
				Problem: fmt.Sprintf("APPATTEST_ENV with entitlements %s whose %s is %q, not TEAMID.BUNDLE_ID: macOS matches a restricted entitlement to the profile through the App ID", file, plists.ApplicationIdentifier, id),
				Fix:     "TEAM_ID=… and ENTITLEMENTS=entitlements/attestd.profile.entitlements (the default with PROFILE)"}
		}
		if r, err = r.WithAppAttest(env); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	return plists.Marshal(map[string]any(r))
}

func writePlist(name string, v any) error {
	b, err := plists.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(name), err)
	}
	return os.WriteFile(name, b, 0o644)
}

func copyFile(dst, src string, perm os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

// ErrNotMachO reports a file that is not a Mach-O (thin or universal).
var ErrNotMachO = errors.New("not a Mach-O file")

func checkMachO(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return fmt.Errorf("%s: %w", name, ErrNotMachO)
	}
	switch string(magic[:]) {
	case "\xca\xfe\xba\xbe", "\xcf\xfa\xed\xfe", "\xce\xfa\xed\xfe":
		return nil
	}
	return fmt.Errorf("%s: %w", name, ErrNotMachO)
}
