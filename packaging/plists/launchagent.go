package plists

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/attestd/attestd/bridge/socket"
)

// LaunchAgent is a launchd job property list for the helper. The same
// type serves the plist shipped in Host.app/Contents/Library/LaunchAgents
// (BundleProgram, registered with SMAppService) and the development one
// "attestd agent install" writes to ~/Library/LaunchAgents (Program).
//
// There is deliberately no KeepAlive or RunAtLoad: launchd starts the
// helper when a client connects to its socket.
type LaunchAgent struct {
	Label string `plist:"Label"`
	// Program is an absolute path; BundleProgram is relative to the app
	// bundle that registered the plist. Exactly one is set.
	Program       string `plist:"Program,omitempty"`
	BundleProgram string `plist:"BundleProgram,omitempty"`
	// ProgramArguments is the whole argv, argv[0] included.
	ProgramArguments       []string          `plist:"ProgramArguments"`
	Sockets                map[string]Socket `plist:"Sockets"`
	LimitLoadToSessionType string            `plist:"LimitLoadToSessionType"`
	ProcessType            string            `plist:"ProcessType,omitempty"`
	// AssociatedBundleIdentifiers names the app shown for this agent in
	// System Settings > Login Items (macOS 13+) when it is not registered
	// through SMAppService.
	AssociatedBundleIdentifiers []string `plist:"AssociatedBundleIdentifiers,omitempty"`
}

// Socket is one entry of a launchd job's Sockets dictionary.
type Socket struct {
	SockType string `plist:"SockType,omitempty"`
	// SecureSocketWithKey makes launchd create the socket in a private
	// per-user directory and export its path in this environment variable.
	SecureSocketWithKey string `plist:"SecureSocketWithKey,omitempty"`
	SockPathName        string `plist:"SockPathName,omitempty"`
	// SockPathMode is decimal in the plist: 384 is 0600.
	SockPathMode int `plist:"SockPathMode,omitempty"`
}

// AgentConfig describes a LaunchAgent for NewLaunchAgent. Zero values take
// the defaults above.
type AgentConfig struct {
	Label string
	// BundleProgram (relative to the host app) or Program (absolute).
	BundleProgram string
	Program       string
	Provider      string
	// SocketName is the Sockets key and the name passed to --launchd.
	SocketName string
	// SocketPath, when set, is a fixed socket path (mode 0600) instead of
	// a launchd-chosen one exported in SocketKey. Every user of the Mac
	// would share it (launchd expands neither "~" nor variables), so only
	// the development agent (attestd agent install --socket) offers it.
	SocketPath string
	// SocketKey is the SecureSocketWithKey variable; empty derives it
	// from Label (socket.KeyForLabel).
	SocketKey string
	// PeerRequirement, when set, is passed as --peer-requirement: only
	// peers whose code satisfies it are served.
	PeerRequirement string
	// LogFile is passed as --log-file; empty means LogFile(Label). "-"
	// writes no log file.
	LogFile string
	// AssociatedBundleIDs: optional, see LaunchAgent.
	AssociatedBundleIDs []string
}

// NewLaunchAgent returns the LaunchAgent for c: it runs
// "attestd serve --launchd NAME --provider P --log-file F
// [--peer-requirement R]" on demand in the Aqua session, with one stream
// socket whose path launchd publishes in the host's own variable.
func NewLaunchAgent(c AgentConfig) (*LaunchAgent, error) {
	if c.Label == "" {
		c.Label = DefaultLabel
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
	if c.SocketName == "" {
		c.SocketName = DefaultSocketName
	}
	if strings.ContainsAny(c.Label, "/ ") {
		return nil, fmt.Errorf("launchd label %q: no '/' or spaces", c.Label)
	}
	if c.SocketKey == "" && c.SocketPath == "" {
		key, err := socket.KeyForLabel(c.Label)
		if err != nil {
			return nil, err
		}
		c.SocketKey = key
	} else if c.SocketKey != "" {
		if err := socket.CheckKey(c.SocketKey); err != nil {
			return nil, err
		}
	}
	switch c.LogFile {
	case "":
		c.LogFile = LogFile(c.Label)
	case "-":
		c.LogFile = ""
	}
	var argv0 string
	switch {
	case c.Program != "" && c.BundleProgram != "":
		return nil, errors.New("launch agent: set Program or BundleProgram, not both")
	case c.Program != "":
		if !path.IsAbs(c.Program) {
			return nil, fmt.Errorf("launch agent: Program %q is not an absolute path", c.Program)
		}
		argv0 = c.Program
	case c.BundleProgram != "":
		if path.IsAbs(c.BundleProgram) || path.Clean(c.BundleProgram) != c.BundleProgram || strings.HasPrefix(c.BundleProgram, "..") {
			return nil, fmt.Errorf("launch agent: BundleProgram %q must be a clean path relative to the app bundle", c.BundleProgram)
		}
		argv0 = path.Base(c.BundleProgram)
	default:
		return nil, errors.New("launch agent: no Program or BundleProgram")
	}
	sock := Socket{SockType: "stream"}
	if c.SocketPath != "" {
		if !path.IsAbs(c.SocketPath) {
			return nil, fmt.Errorf("launch agent: socket path %q is not absolute", c.SocketPath)
		}
		sock.SockPathName = c.SocketPath
		sock.SockPathMode = SockPathMode0600
	} else {
		sock.SecureSocketWithKey = c.SocketKey
	}
	argv := []string{argv0, "serve", "--launchd", c.SocketName, "--provider", c.Provider}
	if c.LogFile != "" {
		argv = append(argv, "--log-file", c.LogFile)
	}
	if c.PeerRequirement != "" {
		argv = append(argv, "--peer-requirement", c.PeerRequirement)
	}
	return &LaunchAgent{
		Label:                       c.Label,
		Program:                     c.Program,
		BundleProgram:               c.BundleProgram,
		ProgramArguments:            argv,
		Sockets:                     map[string]Socket{c.SocketName: sock},
		LimitLoadToSessionType:      SessionAqua,
		ProcessType:                 ProcessTypeInteractive,
		AssociatedBundleIdentifiers: c.AssociatedBundleIDs,
	}, nil
}

// FlagValue returns the value of flag ("--name" or "-name", followed by the
// value or joined with "=") in a "serve" argument vector (argv[0]
// included), as Go's flag package reads it, and whether it is there.
func FlagValue(argv []string, name string) (string, bool) {
	if len(argv) < 2 {
		return "", false
	}
	args := argv[1:]
	for i, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if n != name {
			continue
		}
		if hasVal {
			return val, true
		}
		if i+1 < len(args) {
			return args[i+1], true
		}
		return "", false
	}
	return "", false
}

// LaunchdSocketName returns the launchd socket name that a "serve"
// argument vector (argv[0] included) activates with "--launchd NAME" or
// "--launchd=NAME", as Go's flag package reads them, and whether there is
// one.
func LaunchdSocketName(argv []string) (string, bool) {
	v, ok := FlagValue(argv, "launchd")
	return v, ok && v != ""
}
