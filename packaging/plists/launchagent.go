package plists

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
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
	// Provider is the --provider the agent runs (see Providers);
	// empty means DefaultProvider.
	Provider string
	// AppAttestRegister, when set, is passed as --appattest-register:
	// the base URL of the server the helper registers its App Attest key
	// with (see CheckAppAttestRegister). Only the providers that use App
	// Attest take it.
	AppAttestRegister string
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

// The providers "attestd serve --provider" runs.
const (
	// ProviderAuto uses App Attest where the Mac supports it and a
	// registration URL is set, DeviceCheck otherwise (and meanwhile).
	ProviderAuto = "auto"
	// ProviderDeviceCheck asks DCDevice for DeviceCheck tokens.
	ProviderDeviceCheck = "devicecheck"
	// ProviderAppAttest signs each request with an App Attest key
	// registered with --appattest-register (DeviceCheck tokens until it
	// is registered).
	ProviderAppAttest = "appattest"
	// ProviderAppAttestSim is App Attest's flow with a software key and
	// the development root: for tests, on any OS.
	ProviderAppAttestSim = "appattest-sim"
	// ProviderDev makes development tokens, never valid in production.
	ProviderDev = "dev"
)

// Providers lists every provider NewLaunchAgent accepts.
var Providers = []string{ProviderAuto, ProviderDeviceCheck, ProviderAppAttest, ProviderAppAttestSim, ProviderDev}

// UsesAppAttest reports whether provider uses App Attest, and so takes
// --appattest-register.
func UsesAppAttest(provider string) bool {
	return provider == ProviderAuto || provider == ProviderAppAttest || provider == ProviderAppAttestSim
}

// ErrAppAttestRegister reports an App Attest registration URL a helper
// must not use.
var ErrAppAttestRegister = errors.New("App Attest registration URL must be https://HOST[:PORT][/PATH] (plain http only to 127.0.0.1, ::1 or localhost, for development)")

// CheckAppAttestRegister reports whether raw can be a helper's
// --appattest-register: an absolute https URL with a host and no user
// information (it would be readable by anyone, in the plist), query or
// fragment (it is a base URL the registration paths are appended to).
// Plain http is accepted only to a loopback host, for development.
func CheckAppAttestRegister(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAppAttestRegister, err)
	}
	bad := func(why string) error { return fmt.Errorf("%w: %q %s", ErrAppAttestRegister, raw, why) }
	host := u.Hostname()
	switch {
	case u.Scheme == "http" && host != "" && !isLoopback(host):
		return bad("is plain http to a host that is not this Mac: the key's attestation and the server's answers would travel in the clear")
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("is not an https URL")
	case host == "" || u.Opaque != "":
		return bad("has no host")
	case u.User != nil:
		return bad("carries user information, which would be readable by anyone in the LaunchAgent plist")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("has a query or fragment; give the base URL the registration paths go under")
	case strings.ContainsAny(raw, " \t\r\n"):
		return bad("contains white space")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkProvider reports whether provider is one attestd serve runs and
// register a registration URL it may take.
func checkProvider(provider, register string) error {
	if !slices.Contains(Providers, provider) {
		return fmt.Errorf("unknown provider %q; want one of %s", provider, strings.Join(Providers, ", "))
	}
	if register == "" {
		return nil
	}
	if !UsesAppAttest(provider) {
		return fmt.Errorf("provider %s does not use App Attest, so it takes no registration URL (use %s or %s)", provider, ProviderAuto, ProviderAppAttest)
	}
	return CheckAppAttestRegister(register)
}

// NewLaunchAgent returns the LaunchAgent for c: it runs
// "attestd serve --launchd NAME --provider P [--appattest-register URL]
// --log-file F [--peer-requirement R]" on demand in the Aqua session, with
// one stream socket whose path launchd publishes in the host's own
// variable.
func NewLaunchAgent(c AgentConfig) (*LaunchAgent, error) {
	if c.Label == "" {
		c.Label = DefaultLabel
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
	if err := checkProvider(c.Provider, c.AppAttestRegister); err != nil {
		return nil, fmt.Errorf("launch agent: %w", err)
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
	if c.AppAttestRegister != "" {
		argv = append(argv, "--appattest-register", c.AppAttestRegister)
	}
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
