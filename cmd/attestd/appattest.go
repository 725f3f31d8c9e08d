package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/internal/appattestcli"
	"github.com/attestd/attestd/internal/envflag"
)

func init() {
	c := &command{
		name: "appattest",
		summary: "Check App Attest attestation and assertion objects, and the server's registered keys.\n\n" +
			"attestation and assertion read FILE (- for standard input): the raw CBOR object, or its\n" +
			"standard or URL-safe base64 with or without padding. assertion's key is the one\n" +
			"--attestation certifies (its chain checked at --at, its challenge not needed) or\n" +
			"--public-key. keys lists, shows or revokes the keys in the --replay-redis store.\n" +
			"JSON on standard output. Exit status: 0 valid (keys: done); 1 not valid (keys: no such\n" +
			"key); 2 usage error; 4 could not check (the --attestation refused, the store down).",
		usage: "appattest attestation --app-id ID [--app-id ID…] (--client-data-hash B64 | --client-data FILE)\n" +
			"                                  [--at RFC3339] [--environment development|production] [--root PEM] FILE|-\n" +
			"       attestd appattest assertion   (--attestation FILE [--at RFC3339] [--root PEM] | --public-key PEM) --app-id ID\n" +
			"                                  (--client-data-hash B64 | --client-data FILE) [--after-counter N] FILE|-\n" +
			"       attestd appattest keys list|show|revoke [KEYID] --replay-redis URL [--timeout D]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runAppAttest(ctx, s, c, args) }
	register(c)
}

func runAppAttest(ctx context.Context, s *streams, c *command, args []string) error {
	if len(args) == 0 {
		return usagef("appattest: want attestation, assertion or keys")
	}
	fs := newFlagSet(s, c)
	a := appattestcli.ObjectArgs{Kind: args[0]}
	var v appattestcli.Verdict
	var err error
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fs.Usage()
		return nil
	case "attestation", "assertion":
		fs.Var(&a.AppIDs, "app-id", "an accepted App ID, TEAMID.bundle.id (attestation: repeatable)")
		fs.StringVar(&a.ClientDataHash, "client-data-hash", "", "the clientDataHash, base64 (standard or URL-safe)")
		fs.StringVar(&a.ClientData, "client-data", "", "a file whose SHA-256 is the clientDataHash")
		fs.StringVar(&a.At, "at", "", "check the attestation's chain at this time (RFC 3339; default now)")
		fs.Var(&a.Roots, "root", "a root certificate (PEM) trusted beside Apple's, e.g. the development root (repeatable)")
		fs.StringVar(&a.Environment, "environment", "", "attestation: accept only this environment (development or production; default both)")
		fs.StringVar(&a.Attestation, "attestation", "", "assertion: the key's attestation object")
		fs.StringVar(&a.PublicKey, "public-key", "", "assertion: the key, a PEM PUBLIC KEY or CERTIFICATE")
		fs.Int64Var(&a.AfterCounter, "after-counter", -1, "assertion: refuse a counter not above N")
		pos, perr := parseInterleaved(fs, args[1:])
		if perr != nil {
			return perr
		} else if len(pos) > 1 {
			return usagef("give one object: FILE or -")
		}
		a.Object = firstOr(pos, "")
		v, err = appattestcli.CheckObject(a, s.in, time.Now())
	case "keys":
		v, err = runKeys(ctx, s, fs, args[1:])
	default:
		return usagef("appattest: unknown subcommand %q; want attestation, assertion or keys", args[0])
	}
	var ue *appattestcli.UsageError
	if errors.As(err, &ue) {
		return usagef("%v", ue)
	}
	if err != nil {
		return err
	}
	return printAppAttest(s, v)
}

// runKeys runs "appattest keys list|show|revoke [KEYID]".
func runKeys(ctx context.Context, s *streams, fs *flag.FlagSet, args []string) (appattestcli.Verdict, error) {
	cfg := appattestcli.KeysConfig{}
	fs.StringVar(&cfg.RedisURL, "replay-redis", "", "the Redis of the server's replay and App Attest key store (redis://…, rediss://…, unix:///path)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "time limit for the whole command")
	secrets := envflag.Bind(fs, "replay-redis")
	args, ids := appattestcli.DashKeyIDs(args)
	pos, err := parseInterleaved(fs, args)
	pos = append(pos, ids...)
	if err == nil {
		err = secrets.Fill(s.getenv)
	}
	if err != nil {
		return appattestcli.Verdict{}, err
	}
	return appattestcli.RunKeys(ctx, cfg, pos)
}

// printAppAttest prints the verdict's report as JSON and, unless all went
// well, the error and its hint; it returns what makes the process exit
// with the verdict's code.
func printAppAttest(s *streams, v appattestcli.Verdict) error {
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v.Report); err != nil || v.Code == 0 {
		return err
	}
	fmt.Fprintf(s.err, "attestd: error: %v\n", v.Err)
	if h := hint.Of(v.Err); h != "" {
		fmt.Fprintf(s.err, "attestd: hint: %s\n", h)
	}
	return exitCode(v.Code)
}
