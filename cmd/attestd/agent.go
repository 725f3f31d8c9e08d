package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/attestd/attestd/internal/agent"
	"github.com/attestd/attestd/internal/providers"
	"github.com/attestd/attestd/packaging/plists"
)

func init() { register(newAgentCommand(agent.System())) }

// newAgentCommand returns the agent command acting on env.
func newAgentCommand(env agent.Env) *command {
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

func runAgent(ctx context.Context, s *streams, c *command, env agent.Env, args []string) error {
	sub, spec, printOnly, err := parseAgentFlags(s, c, args)
	if err != nil || sub == "" {
		return err
	}
	env.Warn = func(msg, hint string) {
		fmt.Fprintf(s.err, "attestd: warning: %s\nattestd: hint: %s\n", msg, hint)
	}
	if printOnly {
		a, err := env.Plist(spec)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		b, err := plists.Marshal(a)
		if err != nil {
			return err
		}
		_, err = s.out.Write(b)
		return err
	}
	switch sub {
	case "install":
		in, err := env.Install(ctx, spec)
		if err == nil {
			printInstalled(s, in)
		}
		return agentError(sub, env.GOOS, err)
	case "uninstall":
		r, err := env.Uninstall(ctx, spec.Label)
		if err == nil {
			printRemoved(s, r)
		}
		return agentError(sub, env.GOOS, err)
	}
	l, err := env.Status(ctx, spec.Label)
	if err != nil {
		return agentError(sub, env.GOOS, err)
	}
	fmt.Fprintf(s.out, "plist: %s\n", l.PlistPath)
	if l.PlistMissing {
		fmt.Fprintf(s.out, "note: loaded, but the plist is gone; attestd agent uninstall unloads it\n")
	}
	s.out.Write(l.Print)
	return nil
}

// parseAgentFlags parses "agent SUB [flags]"; sub is "" when only help
// was asked for.
func parseAgentFlags(s *streams, agentCmd *command, args []string) (sub string, spec agent.Spec, printOnly bool, err error) {
	if len(args) == 0 {
		return "", spec, false, usagef("agent: want a subcommand: install, uninstall or status")
	}
	sub, args = args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		newFlagSet(s, agentCmd).Usage()
		return "", spec, false, nil
	case "install", "uninstall", "status":
	default:
		return "", spec, false, usagef("agent: unknown subcommand %q; want install, uninstall or status", sub)
	}
	fs := newFlagSet(s, &command{name: "agent " + sub, usage: "agent " + sub + " [flags]", summary: agentCmd.summary})
	fs.StringVar(&spec.Label, "label", plists.DefaultLabel, "launchd label; the plist is ~/Library/LaunchAgents/LABEL.plist")
	if sub == "install" {
		fs.StringVar(&spec.SocketPath, "socket", "", "fixed socket path (mode 0600) instead of launchd's private one; for development by one user only (launchd expands neither ~ nor variables)")
		fs.StringVar(&spec.Provider, "provider", plists.DefaultProvider, "provider the agent runs ("+providers.AgentNames+")")
		fs.StringVar(&spec.AppAttestRegister, "appattest-register", "", "with appattest or auto: the `URL` of the server the key registers with (see attestd serve -h)")
		fs.StringVar(&spec.PeerRequirement, "peer-requirement", "", "serve only peers whose code satisfies this requirement (see attestd serve -h)")
		fs.BoolVar(&printOnly, "print", false, "print the plist instead of installing it (any OS)")
	}
	if err := parseFlags(fs, args); err != nil {
		return "", spec, false, err
	}
	switch {
	case fs.NArg() > 0:
		return "", spec, false, usagef("agent %s: unexpected argument %q", sub, fs.Arg(0))
	case spec.Label == "" || strings.ContainsAny(spec.Label, "/ ") || strings.HasPrefix(spec.Label, "."):
		return "", spec, false, usagef("agent %s: bad label %q (reverse-DNS, no '/' or spaces)", sub, spec.Label)
	case sub == "install" && !slices.Contains(strings.Split(providers.AgentNames, "|"), spec.Provider):
		return "", spec, false, usagef("agent install: unknown provider %q; want one of %s", spec.Provider, providers.AgentNames)
	case sub == "install":
		err = providers.Spec{Name: spec.Provider, Register: spec.AppAttestRegister}.Check(true)
	}
	return sub, spec, printOnly, err
}

// agentError says which subcommand failed, and what to do off macOS.
func agentError(sub, goos string, err error) error {
	if errors.Is(err, agent.ErrUnsupported) {
		return withHint(fmt.Errorf("agent %s: %w", sub, err),
			"on %s run the daemon directly: attestd serve --provider dev (or make run); \"attestd agent install --print\" shows the plist", goos)
	}
	if err != nil {
		return fmt.Errorf("agent %s: %w", sub, err)
	}
	return nil
}

func printInstalled(s *streams, in agent.Installed) {
	fmt.Fprintf(s.out, "installed %s\n  plist:  %s\n  runs:   %s\n", in.Label, in.PlistPath, strings.Join(in.Agent.ProgramArguments, " "))
	sock := in.Agent.Sockets[plists.DefaultSocketName]
	if sock.SockPathName != "" {
		fmt.Fprintf(s.out, "  socket: %s\n", sock.SockPathName)
	} else {
		fmt.Fprintf(s.out, "  socket: launchd's private path, in $%s (launchctl getenv %s)\n", sock.SecureSocketWithKey, sock.SecureSocketWithKey)
	}
	fmt.Fprintf(s.out, "  log:    %s\n", in.LogPath)
	if in.Label == plists.DefaultLabel {
		fmt.Fprintf(s.out, "try it:   attestd token\n")
	} else {
		fmt.Fprintf(s.out, "try it:   attestd token --agent %s\n", in.Label)
	}
	fmt.Fprintf(s.out, "check it: attestd agent status --label %s\n", in.Label)
}

func printRemoved(s *streams, r agent.Removed) {
	if !r.WasInstalled {
		fmt.Fprintf(s.out, "%s was not installed\n", r.Service)
		return
	}
	if r.BootoutOutput != "" {
		fmt.Fprintf(s.err, "attestd: note: launchctl bootout %s: %s\n", r.Service, r.BootoutOutput)
	}
	fmt.Fprintf(s.out, "removed %s (%s)\n", r.Service, r.PlistPath)
}
