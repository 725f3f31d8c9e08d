package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/internal/inspect"
	"github.com/attestd/attestd/internal/probe"
	"github.com/attestd/attestd/internal/providers"
	"github.com/attestd/attestd/verify"
)

func init() { register(newProbeCommand(nil)) }

// newProbeCommand returns the probe command. clock is the probe's clock;
// nil is the real one (tests pass one that moves only when the probe
// sleeps).
func newProbeCommand(clock probe.Clock) *command {
	c := &command{
		name: "probe",
		summary: "Measure DeviceCheck's latency on this Mac and, with a DeviceCheck key, a token's lifetime and reuse.\n\n" +
			"Latency: one cold call, then --count calls: min, p50, p90, p99 (nearest rank) and max.\n" +
			"Lifetime (with --team-id, --key-id and --key): one fresh token per age in --ages, each\n" +
			"validated with Apple once it is that old, until Apple refuses one; the age-0 token is then\n" +
			"validated a second time (reuse) and a made-up token once (bad). Prints the measured\n" +
			"lifetime, the --max-age it recommends, and Apple's exact HTTP status and body for each\n" +
			"kind of answer. The search takes as long as the largest age it reaches (1 h by default).\n" +
			"With --provider dev it runs anywhere; dev tokens go only to an --environment URL.\n" +
			"With --provider appattest (appattest-sim anywhere): a key made for the probe, one\n" +
			"registration round trip with --appattest-register, then assertions timed as tokens are.",
		usage: "probe [--count N] [--json] [--provider P] [--dev-latency D] [--timeout D] [--team-id T --key-id K --key FILE] [--environment E] [--ages LIST] [--appattest-register URL]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runProbe(ctx, s, c, clock, args) }
	return c
}

// probeFlags are probe's flags.
type probeFlags struct {
	count                  *int
	json                   *bool
	provider               providerFlags
	timeout                *time.Duration
	teamID, keyID, keyFile *string
	env, ages              *string
}

func addProbeFlags(fs *flag.FlagSet) probeFlags {
	return probeFlags{
		count:    fs.Int("count", 20, "tokens to time after the cold first call (0: no latency measurement)"),
		json:     fs.Bool("json", false, "print the report as JSON"),
		provider: addProviderFlags(fs, "auto", "token provider: "+providers.Names),
		timeout:  fs.Duration("timeout", 15*time.Second, "bound on each token and each request to Apple"),
		teamID:   fs.String("team-id", "", "Apple developer team id (the JWT iss), to measure the lifetime"),
		keyID:    fs.String("key-id", "", "id of the DeviceCheck key (the JWT kid)"),
		keyFile:  fs.String("key", "", "the key's .p8 file (AuthKey_KEYID.p8)"),
		env:      fs.String("environment", "production", "Apple environment: production, development (tokens from development-signed helpers) or a base URL"),
		ages:     fs.String("ages", probe.FormatAges(probe.DefaultAges), "token ages to validate, ascending, comma-separated (0s is added when missing)"),
	}
}

func runProbe(ctx context.Context, s *streams, c *command, clock probe.Clock, args []string) error {
	fs := newFlagSet(s, c)
	f := addProbeFlags(fs)
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := f.config(s)
	if err != nil {
		return err
	}
	cfg.Version, cfg.Clock = version, clock
	if !*f.json {
		cfg.OnLifetimeSearch = func(largest time.Duration) {
			fmt.Fprintf(s.err, "attestd: note: measuring the token lifetime takes up to %v (the largest age)\n", largest)
		}
	}
	r, err := probe.Run(ctx, cfg)
	var failed *probe.FailedError
	if err != nil && !errors.As(err, &failed) {
		return err
	}
	if err := writeReport(s.out, *f.json, r, r.WriteText); err != nil {
		return err
	}
	if failed != nil {
		return withHint(failed, "%s", probeHint(r))
	}
	return nil
}

// config checks the flags and turns them into the probe's config.
func (f probeFlags) config(s *streams) (probe.Config, error) {
	if *f.count < 0 || *f.timeout <= 0 {
		return probe.Config{}, usagef("--count must not be negative and --timeout must be positive")
	}
	keyFlags := 0
	for _, v := range []string{*f.teamID, *f.keyID, *f.keyFile} {
		if v != "" {
			keyFlags++
		}
	}
	if keyFlags != 0 && keyFlags != 3 {
		return probe.Config{}, usagef("give all of --team-id, --key-id and --key to measure the lifetime, or none")
	}
	if keyFlags == 0 && *f.count == 0 {
		return probe.Config{}, usagef("nothing to measure: --count 0 and no DeviceCheck key")
	}
	ages, err := probe.ParseAges(*f.ages)
	if err != nil {
		return probe.Config{}, usagef("--ages: %v", err)
	}
	baseURL, err := verify.EnvironmentURL(*f.env)
	if err != nil {
		return probe.Config{}, usagef("--environment: %v", err)
	}
	spec := f.provider.spec(s)
	if spec.UsesAppAttest() {
		if keyFlags != 0 {
			return probe.Config{}, usagef("the lifetime is DeviceCheck's: measure it with --provider devicecheck")
		}
		aa, err := providers.ProbeAppAttest(spec, *f.timeout)
		return probe.Config{AppAttest: aa, Count: *f.count, Timeout: *f.timeout}, err
	}
	prov, err := providers.New(spec, slog.New(slog.DiscardHandler), warner(s))
	if err != nil {
		return probe.Config{}, err
	}
	cfg := probe.Config{Provider: prov, Count: *f.count, Timeout: *f.timeout}
	if keyFlags == 0 {
		return cfg, nil
	}
	if prov.Name() != header.KindDeviceCheck && (baseURL == verify.Production || baseURL == verify.Development) {
		return probe.Config{}, usagef("%s tokens are never valid with Apple: measure the lifetime with --provider devicecheck on a Mac, or point --environment at a test server", prov.Name())
	}
	key, err := verify.LoadPrivateKey(*f.keyFile)
	if err != nil {
		return probe.Config{}, withHint(err, "%s", inspect.AppleKeyHint)
	}
	cfg.Lifetime = &probe.LifetimeConfig{TeamID: *f.teamID, KeyID: *f.keyID, Key: key, BaseURL: baseURL, Ages: ages}
	return cfg, nil
}

func probeHint(r probe.Report) string {
	if r.AppAttest != nil && r.AppAttest.Registration != nil && r.AppAttest.Registration.Error != "" {
		return "check --appattest-register: the server must mount the registration handlers and accept this App ID and environment"
	}
	if r.Lifetime != nil && r.Lifetime.Aborted != "" {
		return "check --team-id, --key-id, --key and --environment (tokens from a development-signed helper validate only with --environment development)"
	}
	return "run \"attestd selftest\" to see which check fails"
}
