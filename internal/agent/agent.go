// Package agent installs, removes and inspects the development LaunchAgent
// of "attestd agent": the plist the packaging writes (packaging/plists),
// for the running executable, loaded with launchctl in the user's GUI
// domain. It also reads which agent the bundle an executable runs from
// names, so clients find their own host's helper.
package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/internal/logsetup"
	"github.com/attestd/attestd/packaging/plists"
)

// Env is what managing a LaunchAgent needs from the system; tests give it
// a fake Mac.
type Env struct {
	GOOS       string
	Executable func() (string, error)
	HomeDir    func() (string, error)
	UID        func() int
	// Launchctl runs launchctl with args and returns its combined output.
	Launchctl func(ctx context.Context, args ...string) ([]byte, error)
	// RetryDelay is the wait before bootstrap is tried again after a
	// bootout.
	RetryDelay time.Duration
	// Warn, when set, is told what a person should know before an
	// install goes on (an executable outside an app bundle), with a hint.
	Warn func(msg, hint string)
}

// System returns the real system.
func System() Env {
	return Env{
		GOOS:       runtime.GOOS,
		Executable: os.Executable,
		HomeDir:    os.UserHomeDir,
		UID:        os.Getuid,
		Launchctl: func(ctx context.Context, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, "launchctl", args...).CombinedOutput()
		},
		RetryDelay: 200 * time.Millisecond,
	}
}

// ErrUnsupported reports a LaunchAgent asked for off macOS.
var ErrUnsupported = errors.New("LaunchAgents exist only on macOS")

// Spec is the agent to install.
type Spec struct {
	Label           string
	SocketPath      string // a fixed socket path; "" for launchd's private one
	Provider        string
	PeerRequirement string
	// AppAttestRegister is the agent's --appattest-register (App
	// Attest's registration server); "" for none.
	AppAttestRegister string
}

// Target names where an agent lives: its plist and its launchd service.
type Target struct {
	Label     string
	PlistPath string // ~/Library/LaunchAgents/LABEL.plist
	Domain    string // gui/UID
	Service   string // gui/UID/LABEL
}

// Target returns where the agent called label lives, on macOS; off macOS
// an error wrapping ErrUnsupported.
func (e Env) Target(label string) (Target, error) {
	if e.GOOS != "darwin" {
		return Target{}, fmt.Errorf("%w (this is %s)", ErrUnsupported, e.GOOS)
	}
	home, err := e.HomeDir()
	if err != nil {
		return Target{}, err
	}
	domain := fmt.Sprintf("gui/%d", e.UID())
	return Target{Label: label, PlistPath: filepath.Join(home, "Library", "LaunchAgents", label+".plist"),
		Domain: domain, Service: domain + "/" + label}, nil
}

// Plist builds the development LaunchAgent for the running executable,
// with the plist generator the packaging uses: the same arguments, socket
// key rule and log file as a shipped agent.
func (e Env) Plist(spec Spec) (*plists.LaunchAgent, error) {
	exe, err := e.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	var assoc []string
	app := BundleOf(exe)
	if app == "" && e.Warn != nil {
		e.Warn(exe+" is not inside an .app bundle; DeviceCheck needs the signed helper bundle",
			"make universal bundle sign, then run dist/Attestd.app/Contents/MacOS/attestd agent install")
	} else if info, err := infoPlist(app); err == nil {
		if id, ok := info["CFBundleIdentifier"].(string); ok && id != "" {
			assoc = []string{id}
		}
	}
	sockPath := spec.SocketPath
	if sockPath != "" {
		if sockPath, err = filepath.Abs(sockPath); err != nil {
			return nil, err
		}
	}
	return plists.NewLaunchAgent(plists.AgentConfig{
		Label: spec.Label, Program: exe, Provider: spec.Provider, AppAttestRegister: spec.AppAttestRegister,
		SocketPath: sockPath, PeerRequirement: spec.PeerRequirement, AssociatedBundleIDs: assoc,
	})
}

// Installed is what Install wrote and loaded.
type Installed struct {
	Target
	Agent   *plists.LaunchAgent
	LogPath string // where the agent logs, ~ expanded
}

// Install writes the agent's plist and loads it, replacing a loaded copy.
func (e Env) Install(ctx context.Context, spec Spec) (Installed, error) {
	t, err := e.Target(spec.Label)
	if err != nil {
		return Installed{}, err
	}
	a, err := e.Plist(spec)
	if err != nil {
		return Installed{}, err
	}
	in := Installed{Target: t, Agent: a}
	in.LogPath, _ = plists.FlagValue(a.ProgramArguments, "log-file")
	if p, err := logsetup.ExpandHome(in.LogPath, e.HomeDir); err == nil {
		in.LogPath = p
	}
	if err := e.write(a, t.PlistPath, in.LogPath); err != nil {
		return in, err
	}
	return in, e.bootstrap(ctx, t)
}

// write writes the plist (atomically) and makes the directories the agent
// needs.
func (e Env) write(a *plists.LaunchAgent, plistPath, logPath string) error {
	b, err := plists.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(plistPath), 0o755); err != nil {
		return err
	}
	os.MkdirAll(filepath.Dir(logPath), 0o755) // ~/Library/Logs normally exists; serve creates it too
	if sock := a.Sockets[plists.DefaultSocketName].SockPathName; sock != "" {
		if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
	}
	tmp := plistPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, plistPath); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// bootstrap loads the plist, first booting out a loaded copy.
func (e Env) bootstrap(ctx context.Context, t Target) error {
	// Replace a loaded copy; "not loaded" is the usual answer and fine.
	_, bootoutErr := e.Launchctl(ctx, "bootout", t.Service)
	out, err := e.Launchctl(ctx, "bootstrap", t.Domain, t.PlistPath)
	// launchd may still be tearing down a copy it just booted out
	// ("Bootstrap failed: 5"); give it a moment, a bounded number of times.
	for i := 0; err != nil && bootoutErr == nil && i < 5; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.RetryDelay):
		}
		out, err = e.Launchctl(ctx, "bootstrap", t.Domain, t.PlistPath)
	}
	if err != nil {
		return hint.Wrap(fmt.Errorf("launchctl bootstrap %s %s: %v: %s", t.Domain, t.PlistPath, err, strings.TrimSpace(string(out))),
			fmt.Sprintf("check the plist with: plutil -lint %s; \"Bootstrap failed: 5\" usually means it is still loaded (launchctl bootout %s) or this is not a GUI login session (DeviceCheck needs one)", t.PlistPath, t.Service))
	}
	return nil
}

// Removed is what Uninstall did.
type Removed struct {
	Target
	// WasInstalled is false when there was neither a plist nor a loaded
	// agent.
	WasInstalled bool
	// BootoutOutput is what launchctl said when bootout failed although a
	// plist was there ("" when it succeeded).
	BootoutOutput string
}

// Uninstall unloads the agent and removes its plist.
func (e Env) Uninstall(ctx context.Context, label string) (Removed, error) {
	t, err := e.Target(label)
	if err != nil {
		return Removed{}, err
	}
	r := Removed{Target: t, WasInstalled: true}
	out, bootErr := e.Launchctl(ctx, "bootout", t.Service)
	rmErr := os.Remove(t.PlistPath)
	switch {
	case rmErr != nil && !errors.Is(rmErr, os.ErrNotExist):
		return r, rmErr
	case rmErr != nil && bootErr != nil:
		r.WasInstalled = false
	case bootErr != nil:
		r.BootoutOutput = strings.TrimSpace(string(out))
	}
	return r, nil
}

// Loaded is what launchctl knows of an agent.
type Loaded struct {
	Target
	// PlistMissing is true for an agent still loaded whose plist is gone.
	PlistMissing bool
	// Print is launchctl print's output.
	Print []byte
}

// Status asks launchctl about the agent; an agent that is not installed or
// not loaded is an error saying how to fix it.
func (e Env) Status(ctx context.Context, label string) (Loaded, error) {
	t, err := e.Target(label)
	if err != nil {
		return Loaded{}, err
	}
	_, statErr := os.Stat(t.PlistPath)
	out, err := e.Launchctl(ctx, "print", t.Service)
	if err != nil {
		if statErr != nil {
			return Loaded{}, hint.Wrap(fmt.Errorf("%s is not installed (no %s)", t.Service, t.PlistPath),
				"install it with: attestd agent install (from the signed Attestd.app)")
		}
		return Loaded{}, hint.Wrap(fmt.Errorf("%s is not loaded: %s", t.Service, strings.TrimSpace(string(out))),
			fmt.Sprintf("load it with: launchctl bootstrap %s %s (or attestd agent install)", t.Domain, t.PlistPath))
	}
	return Loaded{Target: t, PlistMissing: statErr != nil, Print: out}, nil
}
