package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/internal/envflag"
	"github.com/attestd/attestd/internal/inspect"
	"github.com/attestd/attestd/verify"
)

func init() {
	c := &command{
		name: "verify",
		summary: "Check an attestation the way a server would, and ask Apple's DeviceCheck API about its token.\n\n" +
			"VALUE is the x-oai-attestation header's value: the app-server's {\"v\":1,\"s\":N,\"t\":\"v1.…\"}\n" +
			"envelope or a bare \"v1.\" value; with - or nothing, it is read from standard input\n" +
			"(at most 9472 bytes; longer input is refused, never cut). An App Attest value (kind aa)\n" +
			"is checked against the key store in the --replay-redis Redis, without Apple.\n" +
			"The outcome is always printed as JSON on standard output. Exit status: 0 valid;\n" +
			"1 not valid (Apple said no, or the policy refused: dev token, too old, replay);\n" +
			"2 usage error; 3 without --team-id, --key-id and --key: decoded and checked locally\n" +
			"only; 4 the check could not be made (Apple unreachable or failing, an unexpected\n" +
			"answer, our key refused or unreadable, the replay store down).",
		usage: "verify [VALUE|-] [--team-id T --key-id K --key FILE] [--environment production|development|URL] [--allow-dev] [--max-age D] [--timeout D] [--replay-redis URL]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runVerify(ctx, s, c, args) }
	register(c)
}

func runVerify(ctx context.Context, s *streams, c *command, args []string) error {
	cfg, value, err := parseVerifyFlags(s, c, args)
	if err != nil {
		return err
	}
	cfg.Warn = func(msg string) { fmt.Fprintf(s.err, "attestd: warning: %s\n", msg) }
	v, err := inspect.Check(ctx, cfg, s.in, value)
	var ce *inspect.ConfigError
	if errors.As(err, &ce) {
		return usagef("%v", ce)
	}
	if err != nil {
		return err
	}
	return printVerify(s, v)
}

// parseVerifyFlags parses verify's command line, and the environment for
// the flags that take secrets, checks that they go together, and returns
// the check's config and the VALUE argument ("" or "-" for standard
// input).
func parseVerifyFlags(s *streams, c *command, args []string) (inspect.CheckConfig, string, error) {
	var cfg inspect.CheckConfig
	var apple inspect.Apple
	fs := newFlagSet(s, c)
	fs.StringVar(&apple.TeamID, "team-id", "", "Apple developer team id (the JWT iss)")
	fs.StringVar(&apple.KeyID, "key-id", "", "id of the DeviceCheck key (the JWT kid)")
	fs.StringVar(&apple.KeyFile, "key", "", "the key's .p8 file (AuthKey_KEYID.p8)")
	env := fs.String("environment", "production", "Apple environment: production, development (tokens from development-signed apps) or a base URL (https, or http to loopback)")
	fs.BoolVar(&cfg.AllowDev, "allow-dev", false, "accept tokens from the dev provider (never in production); they are sent to Apple only when --environment is a URL")
	fs.DurationVar(&cfg.MaxAge, "max-age", verify.DefaultMaxAge, "refuse tokens generated longer ago than this (0: no limit)")
	fs.DurationVar(&cfg.Timeout, "timeout", verify.DefaultTimeout, "time limit for the whole check: the replay store, Apple, retries")
	fs.StringVar(&cfg.ReplayRedis, "replay-redis", "", "record the token in this Redis (redis://host:port/db, rediss://…, unix:///path) and refuse it if already there, so checks in separate processes or machines accept a token once; an App Attest value's key and counter are read and updated there")
	secrets := envflag.Bind(fs, "key", "replay-redis")
	pos, err := parseInterleaved(fs, args)
	if err == nil {
		err = secrets.Fill(s.getenv)
	}
	if err != nil {
		return cfg, "", err
	}
	keyFlags := 0
	for _, v := range []string{apple.TeamID, apple.KeyID, apple.KeyFile} {
		if v != "" {
			keyFlags++
		}
	}
	switch {
	case len(pos) > 1:
		return cfg, "", usagef("give one value, or - to read standard input")
	case keyFlags != 0 && keyFlags != 3:
		return cfg, "", usagef("give all of --team-id, --key-id and --key to ask Apple, or none to only decode")
	case cfg.MaxAge < 0 || cfg.Timeout <= 0:
		return cfg, "", usagef("--max-age must not be negative and --timeout must be positive")
	}
	if apple.BaseURL, err = verify.EnvironmentURL(*env); err != nil {
		return cfg, "", usagef("--environment: %v", err)
	}
	if keyFlags == 3 {
		cfg.Apple = &apple
	}
	return cfg, firstOr(pos, ""), nil
}

// printVerify prints the verdict's report as JSON and, unless the value is
// valid, what went wrong and a hint on standard error; it returns what
// makes the process exit with the verdict's code.
func printVerify(s *streams, v inspect.Verdict) error {
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(v.Report); werr != nil {
		return werr
	}
	switch v.Code {
	case inspect.Valid:
		return nil
	case inspect.NotValidated:
		h := hint.Of(v.Err)
		if h == "" {
			fmt.Fprintf(s.err, "attestd: note: decoded only; nothing was validated with Apple\n")
			h = "pass --team-id, --key-id and --key to ask Apple"
		} else {
			fmt.Fprintf(s.err, "attestd: note: decoded only; the assertion was not checked\n")
		}
		fmt.Fprintf(s.err, "attestd: hint: %s\n", h)
		return exitCode(v.Code)
	}
	fmt.Fprintf(s.err, "attestd: error: %v\n", v.Err)
	if h := hint.Of(v.Err); h != "" {
		fmt.Fprintf(s.err, "attestd: hint: %s\n", h)
	}
	return exitCode(v.Code)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// parseInterleaved parses flags given before or after the positional
// arguments, which it returns; everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
