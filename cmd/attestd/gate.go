package main

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/attestd/attestd/internal/envflag"
	"github.com/attestd/attestd/internal/gate"
	"github.com/attestd/attestd/internal/inspect"
	"github.com/attestd/attestd/verify"
)

func init() {
	c := &command{
		name: "gate",
		summary: "Check attestations over HTTP beside any backend: forward-auth for nginx, Caddy, Traefik and Envoy, or a reverse proxy.\n\n" +
			"Forward-auth (no --upstream): a proxy sends each request's headers to /auth (or below it); the answer is\n" +
			"200 with X-Attestd-Kind, -Team, -Bundle, -Fingerprint, -Age-Ms and -Key-Id (valid), 401 (missing or\n" +
			"malformed), 403 (refused: forged, replayed, too old, dev) or 503 with Retry-After (could not check).\n" +
			"With --upstream every request is checked the same way and forwarded there (websockets too).\n" +
			"App Attest (--app-id): apps register their keys at /appattest/challenge, /appattest/register and\n" +
			"/appattest/keys/ID, served by the gate unchecked in both modes; then each assertion is checked here.\n" +
			"/healthz, /readyz and /metrics are on --admin-listen, else (forward-auth only) on --listen.\n" +
			"Every flag can also come from the environment, as each one says; the command line wins.\n" +
			"SIGTERM or SIGINT: /readyz turns 503, open requests and streams get --shutdown-grace, exit 0.",
		usage: "gate --listen ADDR [--upstream URL] [--team-id T --key-id K --key FILE] [--environment E] [--app-id ID…] [--kinds K] [--replay-redis URL [--redis-mode M]] [flags]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runGate(ctx, s, c, args) }
	register(c)
}

// runGate turns the flags into gate settings, opens the listeners and runs
// the gate until a signal ends ctx.
func runGate(ctx context.Context, s *streams, c *command, args []string) error {
	var st gate.Settings
	fs := newFlagSet(s, c)
	listen := fs.String("listen", "", "the `ADDR` (host:port) to serve on; required")
	admin := fs.String("admin-listen", "", "serve /healthz, /readyz and /metrics on this `ADDR` instead")
	fs.StringVar(&st.Upstream, "upstream", "", "proxy mode: forward every valid request to this `URL`")
	fs.StringVar(&st.TeamID, "team-id", "", "Apple developer team id (the JWT iss)")
	fs.StringVar(&st.KeyID, "key-id", "", "id of the DeviceCheck key (the JWT kid)")
	fs.StringVar(&st.KeyFile, "key", "", "the key's .p8 `FILE` (AuthKey_KEYID.p8)")
	fs.StringVar(&st.Environment, "environment", "production", "DeviceCheck's Apple environment: production, development or a base URL (https, or http to loopback)")
	fs.BoolVar(&st.AllowDev, "allow-dev", false, "accept tokens from the dev provider, and App Attest keys from an --appattest-root (never in production)")
	maxAge := fs.Duration("max-age", verify.DefaultMaxAge, "refuse tokens generated longer ago than this (0: no limit)")
	fs.DurationVar(&st.Timeout, "timeout", verify.DefaultTimeout, "time limit for one check: the replay store, Apple, retries")
	fs.Float64Var(&st.AppleRateLimit, "apple-rate-limit", verify.DefaultRateLimit, "requests a second to Apple at most (negative: no limit)")
	fs.IntVar(&st.AppleMaxConcurrent, "apple-max-concurrent", verify.DefaultMaxConcurrent, "requests to Apple in flight at most (negative: no bound)")
	fs.StringVar(&st.ReplayRedis, "replay-redis", "", "keep replay records in this Redis `URL`, shared by every gate (default: this process's memory)")
	fs.StringVar(&st.RedisMode, "redis-mode", "single", "how --replay-redis reads: single, cluster (redis://h1:p?addr=h2:p…) or sentinel (…?master_name=NAME)")
	fs.BoolVar(&st.AllowWhenDown, "allow-when-down", false, "admit a token that passed every local check while Apple counts as down")
	fs.StringVar(&st.ClientKey, "client-key", "remote-addr", "what names a client for the fair share of calls to Apple: remote-addr or header:NAME (from a --trusted-proxy only)")
	fs.Func("trusted-proxy", "a `CIDR` (or address) of proxies whose forwarding headers are believed; repeat, or separate with commas", appendTo(&st.TrustedProxies, ","))
	fs.Func("kinds", "the `KINDS` accepted, separated by commas: aa (App Attest), dc (DeviceCheck), dev (needs --allow-dev); default: aa with --app-id, dc with the key, dev with --allow-dev", appendTo(&st.Kinds, ","))
	fs.Func("app-id", "App Attest: an App `ID` (TEAMID.bundle.id) whose keys may register; repeat, or separate with commas; aa needs one", appendTo(&st.AppIDs, ","))
	fs.StringVar(&st.AppAttestEnvironment, "appattest-environment", "production", "App Attest: the environment keys must come from: production, development or both")
	fs.Func("appattest-root", "App Attest: a root certificate trusted beside Apple's, a `PEM` file or its text (tests: the development root; refused without --allow-dev, which its keys need); repeatable", appendTo(&st.AppAttestRoots, ""))
	fs.StringVar(&st.Header, "header", verify.HeaderName, "the request header holding the attestation")
	fs.DurationVar(&st.ShutdownGrace, "shutdown-grace", gate.DefaultShutdownGrace, "after SIGTERM, how long open requests, streams and websockets get")
	logFlags := addLogFlags(fs, "info")
	env := envflag.Bind(fs)
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	if err := env.Fill(s.getenv); err != nil {
		return err
	}
	if *listen == "" {
		return usagef("give --listen ADDR (or $ATTESTD_LISTEN)")
	}
	if st.MaxAge = *maxAge; st.MaxAge == 0 {
		st.MaxAge = -1 // the flag's 0 is "no limit"; the Verifier's zero is its default
	}
	logger, err := logFlags.logger(s)
	if err != nil {
		return err
	}
	cfg, closeAll, err := st.Config(logger)
	var bad *gate.SettingError
	if errors.As(err, &bad) {
		return usagef("--%v", bad)
	} else if err != nil {
		return withHint(err, "%s", inspect.AppleKeyHint)
	}
	defer closeAll()
	ln, adminLn, err := gateListeners(*listen, *admin)
	if err != nil {
		return err
	}
	return gate.Run(ctx, cfg, ln, adminLn)
}

// appendTo returns a flag.Func that appends a value to list, split at sep
// unless sep is "".
func appendTo(list *[]string, sep string) func(string) error {
	return func(v string) error {
		if sep == "" {
			*list = append(*list, v)
		} else {
			*list = append(*list, strings.Split(v, sep)...)
		}
		return nil
	}
}

// gateListeners opens the main listener and, when asked for, the admin
// one.
func gateListeners(listen, admin string) (ln, adminLn net.Listener, err error) {
	if ln, err = net.Listen("tcp", listen); err != nil {
		return nil, nil, withHint(err, "choose another --listen address, or stop what holds it")
	}
	if admin != "" {
		if adminLn, err = net.Listen("tcp", admin); err != nil {
			ln.Close()
			return nil, nil, withHint(err, "choose another --admin-listen address, or stop what holds it")
		}
	}
	return ln, adminLn, nil
}
