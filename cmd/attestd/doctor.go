package main

import (
	"context"

	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/diag"
	"github.com/attestd/attestd/internal/logsetup"
	"github.com/attestd/attestd/packaging/plists"
)

func init() { register(newDoctorCommand(diag.System())) }

// newDoctorCommand returns the doctor command, whose checks ask env.
func newDoctorCommand(env diag.Env) *command {
	c := &command{
		name: "doctor",
		summary: "Check whether this Mac and this helper can get DeviceCheck tokens.\n\n" +
			"Each check reports pass, fail or skipped, with a hint for failures; the exit\n" +
			"status is 1 when any check fails. When everything passes, doctor asks\n" +
			"DeviceCheck for one token and prints only its fingerprint.",
		usage: "doctor [--json] [--launchd NAME] [--socket PATH | --agent LABEL|KEY] [--timeout DURATION] [--no-token]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runDoctor(ctx, s, c, env, args) }
	return c
}

func runDoctor(ctx context.Context, s *streams, c *command, env diag.Env, args []string) error {
	fs := newFlagSet(s, c)
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	cfg := diag.DoctorConfig{Version: version}
	fs.StringVar(&cfg.Launchd, "launchd", darwin.DefaultLaunchdSocket, "the `NAME` of the socket in the LaunchAgent plist's Sockets dictionary")
	where := addClientFlags(fs)
	fs.DurationVar(&cfg.Timeout, "timeout", darwin.DefaultTimeout, "how long to wait for the test token")
	fs.BoolVar(&cfg.NoToken, "no-token", false, "do not ask DeviceCheck for a test token")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	sock, err := where.resolve(ctx, s)
	if err != nil {
		return err
	}
	cfg.Socket = sock.Path
	cfg.AgentLabel, cfg.LogFile = agentLogFile(where.agentLabel(s))
	if cfg.LogFile != "" {
		cfg.CrashFile = logsetup.CrashPath(cfg.LogFile)
	}
	return printReport(s, diag.Doctor(ctx, env, cfg), *jsonOut)
}

// agentLogFile returns label and the path of the log its LaunchAgent
// writes (serve --log-file ~/Library/Logs/LABEL.log), "" when the label is
// unknown.
func agentLogFile(label string) (string, string) {
	if label == "" {
		return "", ""
	}
	p, err := logsetup.ExpandHome(plists.LogFile(label), logsetup.UserHome)
	if err != nil {
		return label, ""
	}
	return label, p
}
