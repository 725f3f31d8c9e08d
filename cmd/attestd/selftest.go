package main

import (
	"context"

	"github.com/attestd/attestd/internal/diag"
)

func init() { register(newSelftestCommand(diag.System())) }

// newSelftestCommand returns the selftest command, whose checks ask env.
func newSelftestCommand(env diag.Env) *command {
	c := &command{
		name: "selftest",
		summary: "Run every check that decides whether attestd works on this machine, and print one report.\n\n" +
			"On a Mac: macOS version and architecture, the GUI session, the main run loop, the own\n" +
			"signing identity, DCDevice.isSupported and a real token (each bounded by --timeout and\n" +
			"timed), the thread and dispatch queue Apple calls the completion handler on, the peer\n" +
			"code requirement (a satisfying peer is served, another refused with peer_refused) and,\n" +
			"with --launchd, a temporary LaunchAgent in gui/$UID that must answer through launchd.\n" +
			"Without a GUI session (SSH) the DeviceCheck checks are skipped; elsewhere every macOS\n" +
			"check is skipped and the portable ones run. Tokens are shown only as sizes and\n" +
			"fingerprints. Exit status 0 when no check failed (skipped checks do not fail).",
		usage: "selftest [--json] [--timeout D] [--launchd]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runSelftest(ctx, s, c, env, args) }
	return c
}

func runSelftest(ctx context.Context, s *streams, c *command, env diag.Env, args []string) error {
	fs := newFlagSet(s, c)
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	cfg := diag.SelftestConfig{Version: version}
	fs.DurationVar(&cfg.Timeout, "timeout", diag.DefaultSelftestTimeout, "bound on each call into Apple (isSupported, generateToken) and on the launchd round trip")
	fs.BoolVar(&cfg.Launchd, "launchd", false, "also bootstrap a temporary LaunchAgent in gui/$UID, get an answer through its socket, and boot it out again (changes your launchd state for a moment)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	if cfg.Timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	return printReport(s, diag.Selftest(ctx, env, cfg), *jsonOut)
}
