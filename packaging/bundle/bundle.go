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
	// SocketPath: see plists.AgentConfig.
	SocketPath string
}

// Result names what Assemble wrote.
type Result struct {
	Bundle       string // OutDir/Attestd.app
	Executable   string
	InfoPlist    string
	LaunchAgent  string // OutDir/LaunchAgents/<Label>.plist
	Entitlements string // OutDir/Attestd.entitlements, "" if none
}

// Assemble writes a fresh OutDir/Attestd.app (any previous one, with its
// signature, is removed first), the LaunchAgent plist for
// Host.app/Contents/Library/LaunchAgents, and the resolved entitlements.
func Assemble(c Config) (*Result, error) {
	if c.Label == "" {
		c.Label = plists.DefaultLabel
	}
	if c.BundleID == "" {
		c.BundleID = plists.DefaultBundleID
	}
	info, err := plists.NewInfoPlist(c.BundleID, Name, Executable, c.Version)
	if err != nil {
		return nil, err
	}
	agent, err := plists.NewLaunchAgent(plists.AgentConfig{
		Label:         c.Label,
		BundleProgram: BundleProgram,
		SocketPath:    c.SocketPath,
	})
	if err != nil {
		return nil, err
	}
	if err := checkMachO(c.Binary); err != nil {
		return nil, err
	}
	var ents []byte
	if c.Entitlements != "" {
		ents, err = resolveEntitlements(c.Entitlements, c.TeamID, c.BundleID)
		if err != nil {
			return nil, err
		}
	}

	r := &Result{
		Bundle:      filepath.Join(c.OutDir, Dir),
		LaunchAgent: filepath.Join(c.OutDir, "LaunchAgents", c.Label+".plist"),
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

func resolveEntitlements(file, teamID, bundleID string) ([]byte, error) {
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
