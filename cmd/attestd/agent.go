package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/logsetup"
	"github.com/attestd/attestd/packaging/plists"
)

func init() { register(newAgentCommand(systemAgentEnv())) }

// newAgentCommand returns the agent command acting on env.
func newAgentCommand(env agentEnv) *command {
	c := &command{
		name: "agent",
		summary: "Install, remove or inspect a development LaunchAgent for this helper (macOS).\n\n" +
			"install writes ~/Library/LaunchAgents/LABEL.plist running this executable\n" +
			"(\"attestd serve --launchd Listeners\") on demand in the GUI session, logging to\n" +
			"~/Library/Logs/LABEL.log, and loads it with launchctl bootstrap gui/$UID; launchd\n" +
			"publishes the socket in $ATTESTD_SOCKET_<label> (attestd token --agent LABEL finds it).\n" +
			"Run it from the signed helper bundle (Attestd.app/Contents/MacOS/attestd):\n" +
			"DeviceCheck needs the bundle's Team ID.\n" +
			"uninstall unloads and removes it; status shows launchctl print for it.\n" +
			"Shipping apps register the plist in Contents/Library/LaunchAgents with\n" +
			"SMAppService instead (see packaging/README.md).",
		usage: "agent install|uninstall|status [--label LABEL] [install flags]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runAgent(ctx, s, c, env, args) }
	return c
}

// agentEnv is what "attestd agent" needs from the system; tests give it a
// fake Mac.
type agentEnv struct {
	goos       string
	executable func() (string, error)
	homeDir    func() (string, error)
	uid        func() int
	// launchctl runs launchctl with args and returns its combined output.
	launchctl func(ctx context.Context, args ...string) ([]byte, error)
	// retryDelay is the wait before bootstrap is tried again after a
	// bootout.
	retryDelay time.Duration
}

// systemAgentEnv is the real system.
func systemAgentEnv() agentEnv {
	return agentEnv{
		goos:       runtime.GOOS,
		executable: os.Executable,
		homeDir:    os.UserHomeDir,
		uid:        os.Getuid,
		launchctl: func(ctx context.Context, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, "launchctl", args...).CombinedOutput()
		},
		retryDelay: 200 * time.Millisecond,
	}
}

// errAgentUnsupported reports "attestd agent" off macOS.
var errAgentUnsupported = errors.New("LaunchAgents exist only on macOS")

func runAgent(ctx context.Context, s *streams, agent *command, env agentEnv, args []string) error {
	if len(args) == 0 {
		return usagef("agent: want a subcommand: install, uninstall or status")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		newFlagSet(s, agent).Usage()
		return nil
	case "install", "uninstall", "status":
	default:
		return usagef("agent: unknown subcommand %q; want install, uninstall or status", sub)
	}
	c := &command{name: "agent " + sub, usage: "agent " + sub + " [flags]", summary: agent.summary}
	fs := newFlagSet(s, c)
	label := fs.String("label", plists.DefaultLabel, "launchd label; the plist is ~/Library/LaunchAgents/LABEL.plist")
	var sockPath, provider, peerReq *string
	var printOnly *bool
	if sub == "install" {
		sockPath = fs.String("socket", "", "fixed socket path (mode 0600) instead of launchd's private one; for development by one user only (launchd expands neither ~ nor variables)")
		provider = fs.String("provider", plists.DefaultProvider, "provider the agent runs ("+providerNames+")")
		peerReq = fs.String("peer-requirement", "", "serve only peers whose code satisfies this requirement (see attestd serve -h)")
		printOnly = fs.Bool("print", false, "print the plist instead of installing it (any OS)")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("agent %s: unexpected argument %q", sub, fs.Arg(0))
	}
	if *label == "" || strings.ContainsAny(*label, "/ ") || strings.HasPrefix(*label, ".") {
		return usagef("agent %s: bad label %q (reverse-DNS, no '/' or spaces)", sub, *label)
	}
	if provider != nil && !slices.Contains(strings.Split(providerNames, "|"), *provider) {
		return usagef("agent install: unknown provider %q; want one of %s", *provider, providerNames)
	}
	if sub == "install" && *printOnly {
		a, err := env.plist(s, *label, *sockPath, *provider, *peerReq)
		if err != nil {
			return err
		}
		b, err := plists.Marshal(a)
		if err != nil {
			return err
		}
		_, err = s.out.Write(b)
		return err
	}
	if env.goos != "darwin" {
		return withHint(fmt.Errorf("agent %s: %w (this is %s)", sub, errAgentUnsupported, env.goos),
			"on %s run the daemon directly: attestd serve --provider dev (or make run); \"attestd agent install --print\" shows the plist", env.goos)
	}
	home, err := env.homeDir()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	plistPath := filepath.Join(home, "Library", "LaunchAgents", *label+".plist")
	domain := fmt.Sprintf("gui/%d", env.uid())
	service := domain + "/" + *label
	switch sub {
	case "install":
		return env.install(ctx, s, *label, *sockPath, *provider, *peerReq, plistPath, domain, service)
	case "uninstall":
		return env.uninstall(ctx, s, plistPath, service)
	default:
		return env.status(ctx, s, plistPath, domain, service)
	}
}

// plist builds the development LaunchAgent for the running executable,
// with the plist generator the packaging uses: the same arguments, socket
// key rule and log file as a shipped agent.
func (env agentEnv) plist(s *streams, label, sockPath, provider, peerReq string) (*plists.LaunchAgent, error) {
	exe, err := env.executable()
	if err != nil {
		return nil, fmt.Errorf("agent: find this executable: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	var assoc []string
	app := bundleOf(exe)
	if app == "" {
		fmt.Fprintf(s.err, "attestd: warning: %s is not inside an .app bundle; DeviceCheck needs the signed helper bundle\n", exe)
		fmt.Fprintf(s.err, "attestd: hint: make universal bundle sign, then run dist/Attestd.app/Contents/MacOS/attestd agent install\n")
	} else if data, err := os.ReadFile(filepath.Join(app, "Contents", "Info.plist")); err == nil {
		if info, err := plists.Dict(data); err == nil {
			if id, ok := info["CFBundleIdentifier"].(string); ok && id != "" {
				assoc = []string{id}
			}
		}
	}
	if sockPath != "" {
		if sockPath, err = filepath.Abs(sockPath); err != nil {
			return nil, err
		}
	}
	return plists.NewLaunchAgent(plists.AgentConfig{
		Label: label, Program: exe, Provider: provider, SocketPath: sockPath,
		PeerRequirement: peerReq, AssociatedBundleIDs: assoc,
	})
}

// bundleOf returns the .app directory exe is the main executable of
// (X.app/Contents/MacOS/exe), or "".
func bundleOf(exe string) string {
	macos := filepath.Dir(exe)
	contents := filepath.Dir(macos)
	app := filepath.Dir(contents)
	if filepath.Base(macos) == "MacOS" && filepath.Base(contents) == "Contents" && strings.HasSuffix(app, ".app") {
		return app
	}
	return ""
}

// install writes the agent's plist and loads it, replacing a loaded copy.
func (env agentEnv) install(ctx context.Context, s *streams, label, sockPath, provider, peerReq, plistPath, domain, service string) error {
	a, err := env.plist(s, label, sockPath, provider, peerReq)
	if err != nil {
		return err
	}
	logPath, _ := plists.FlagValue(a.ProgramArguments, "log-file")
	if p, err := logsetup.ExpandHome(logPath, env.homeDir); err == nil {
		logPath = p
	}
	b, err := plists.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(plistPath), 0o755); err != nil {
		return fmt.Errorf("agent install: %w", err)
	}
	os.MkdirAll(filepath.Dir(logPath), 0o755) // ~/Library/Logs normally exists; serve creates it too
	if sockPath != "" {
		if err := os.MkdirAll(filepath.Dir(a.Sockets[plists.DefaultSocketName].SockPathName), 0o700); err != nil {
			return fmt.Errorf("agent install: socket directory: %w", err)
		}
	}
	tmp := plistPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("agent install: %w", err)
	}
	if err := os.Rename(tmp, plistPath); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("agent install: %w", err)
	}
	// Replace a loaded copy; "not loaded" is the usual answer and fine.
	_, bootoutErr := env.launchctl(ctx, "bootout", service)
	out, err := env.launchctl(ctx, "bootstrap", domain, plistPath)
	// launchd may still be tearing down a copy it just booted out
	// ("Bootstrap failed: 5"); give it a moment, a bounded number of times.
	for i := 0; err != nil && bootoutErr == nil && i < 5; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(env.retryDelay):
		}
		out, err = env.launchctl(ctx, "bootstrap", domain, plistPath)
	}
	if err != nil {
		return withHint(fmt.Errorf("agent install: launchctl bootstrap %s %s: %v: %s", domain, plistPath, err, strings.TrimSpace(string(out))),
			"check the plist with: plutil -lint %s; \"Bootstrap failed: 5\" usually means it is still loaded (launchctl bootout %s) or this is not a GUI login session (DeviceCheck needs one)", plistPath, service)
	}
	fmt.Fprintf(s.out, "installed %s\n  plist:  %s\n  runs:   %s\n", label, plistPath, strings.Join(a.ProgramArguments, " "))
	sock := a.Sockets[plists.DefaultSocketName]
	if sock.SockPathName != "" {
		fmt.Fprintf(s.out, "  socket: %s\n", sock.SockPathName)
	} else {
		fmt.Fprintf(s.out, "  socket: launchd's private path, in $%s (launchctl getenv %s)\n", sock.SecureSocketWithKey, sock.SecureSocketWithKey)
	}
	fmt.Fprintf(s.out, "  log:    %s\n", logPath)
	if label == plists.DefaultLabel {
		fmt.Fprintf(s.out, "try it:   attestd token\n")
	} else {
		fmt.Fprintf(s.out, "try it:   attestd token --agent %s\n", label)
	}
	fmt.Fprintf(s.out, "check it: attestd agent status --label %s\n", label)
	return nil
}

// uninstall unloads the agent and removes its plist.
func (env agentEnv) uninstall(ctx context.Context, s *streams, plistPath, service string) error {
	out, bootErr := env.launchctl(ctx, "bootout", service)
	rmErr := os.Remove(plistPath)
	switch {
	case rmErr != nil && !errors.Is(rmErr, os.ErrNotExist):
		return fmt.Errorf("agent uninstall: %w", rmErr)
	case rmErr != nil && bootErr != nil:
		fmt.Fprintf(s.out, "%s was not installed\n", service)
		return nil
	}
	if bootErr != nil {
		fmt.Fprintf(s.err, "attestd: note: launchctl bootout %s: %s\n", service, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(s.out, "removed %s (%s)\n", service, plistPath)
	return nil
}

// status prints what launchctl knows of the agent.
func (env agentEnv) status(ctx context.Context, s *streams, plistPath, domain, service string) error {
	_, statErr := os.Stat(plistPath)
	out, err := env.launchctl(ctx, "print", service)
	if err != nil {
		if statErr != nil {
			return withHint(fmt.Errorf("agent status: %s is not installed (no %s)", service, plistPath),
				"install it with: attestd agent install (from the signed Attestd.app)")
		}
		return withHint(fmt.Errorf("agent status: %s is not loaded: %s", service, strings.TrimSpace(string(out))),
			"load it with: launchctl bootstrap %s %s (or attestd agent install)", domain, plistPath)
	}
	fmt.Fprintf(s.out, "plist: %s\n", plistPath)
	if statErr != nil {
		fmt.Fprintf(s.out, "note: loaded, but the plist is gone; attestd agent uninstall unloads it\n")
	}
	s.out.Write(out)
	return nil
}
