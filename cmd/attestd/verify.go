package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay"
)

// Exit codes of "attestd verify" besides 0 (valid), 1 (not valid: Apple
// said no, or the policy refused) and 2 (usage).
const (
	exitNotValidated = 3 // decoded and checked locally; Apple was not asked
	exitNotChecked   = 4 // the check could not be made: Apple, our key, the replay store
)

func init() {
	c := &command{
		name: "verify",
		summary: "Check an attestation the way a server would, and ask Apple's DeviceCheck API about its token.\n\n" +
			"VALUE is the x-oai-attestation header's value: the app-server's {\"v\":1,\"s\":N,\"t\":\"v1.…\"}\n" +
			"envelope or a bare \"v1.\" value; with - or nothing, it is read from standard input\n" +
			"(at most 9472 bytes; longer input is refused, never cut).\n" +
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
	f, err := parseVerifyFlags(s, c, args)
	if err != nil {
		return err
	}
	v := &verify.Verifier{AllowDev: f.allowDev, MaxAge: f.maxAge, Timeout: f.timeout}
	if f.maxAge == 0 {
		v.MaxAge = -1 // the flag's 0 is "no limit"; the Verifier's zero is its default
	}
	// One run checks one token: a cache of its own (the process-wide
	// default would carry over between in-process runs in tests).
	v.Replays = verify.NewMemoryReplayCache()
	out := &verifyOutput{}
	if f.replayRedis != "" {
		store, err := redisreplay.Open(f.replayRedis, redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return usagef("--replay-redis: %v", err)
		}
		defer store.Close()
		v.Replays = store
		out.ReplayStore = reportReplayStore(ctx, s, store, f.timeout)
	}
	in, err := readValue(s, f.value)
	if err != nil && !errors.Is(err, errInputTooLong) {
		return err
	}
	var res *verify.Result
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %w", verify.ErrMalformed, err)
	case !f.asks:
		if res, err = checkLocally(v, trimHeaderName(in)); err == nil {
			err = verify.ErrNotValidated
		}
	default:
		out.Environment = f.baseURL
		// Local checks first: a token the policy refuses needs no key.
		if res, err = checkLocally(v, trimHeaderName(in)); err != nil {
			break
		}
		if v.Client, err = f.client(s); err != nil {
			out.fill(res, err)
			out.Reason = "bad_key"
			return printVerify(s, out, exitNotChecked, withHint(fmt.Errorf("could not check the token: %w", err), "%s", appleKeyHint))
		}
		defer v.Client.CloseIdleConnections()
		res, err = v.Verify(ctx, trimHeaderName(in))
	}
	out.fill(res, err)
	code := verifyExitCode(err, f.asks)
	if code == exitNotChecked {
		err = fmt.Errorf("could not check the token: %w", err)
	}
	return printVerify(s, out, code, withHint(err, "%s", verifyHint(err, f.replayRedis)))
}

// verifyFlags is what "attestd verify" was asked to do.
type verifyFlags struct {
	teamID, keyID, keyFile string
	baseURL                string
	allowDev               bool
	maxAge, timeout        time.Duration
	replayRedis            string
	value                  string // the VALUE argument; "" or "-" for standard input
	asks                   bool   // the key flags are given: ask Apple
}

// parseVerifyFlags parses verify's command line, and the environment for
// the flags that take secrets, and checks that they go together.
func parseVerifyFlags(s *streams, c *command, args []string) (*verifyFlags, error) {
	f := &verifyFlags{}
	fs := newFlagSet(s, c)
	fs.StringVar(&f.teamID, "team-id", "", "Apple developer team id (the JWT iss)")
	fs.StringVar(&f.keyID, "key-id", "", "id of the DeviceCheck key (the JWT kid)")
	fs.StringVar(&f.keyFile, "key", "", "the key's .p8 file (AuthKey_KEYID.p8)")
	env := fs.String("environment", "production", "Apple environment: production, development (tokens from development-signed apps) or a base URL (https, or http to loopback)")
	fs.BoolVar(&f.allowDev, "allow-dev", false, "accept tokens from the dev provider (never in production); they are sent to Apple only when --environment is a URL")
	fs.DurationVar(&f.maxAge, "max-age", verify.DefaultMaxAge, "refuse tokens generated longer ago than this (0: no limit)")
	fs.DurationVar(&f.timeout, "timeout", verify.DefaultTimeout, "time limit for the whole check: the replay store, Apple, retries")
	fs.StringVar(&f.replayRedis, "replay-redis", "", "record the token in this Redis (redis://host:port/db, rediss://…, unix:///path) and refuse it if already there, so checks in separate processes or machines accept a token once")
	secrets := bindEnv(fs, "key", "replay-redis")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	if err := secrets.fill(s.getenv); err != nil {
		return nil, err
	}
	if len(pos) > 1 {
		return nil, usagef("give one value, or - to read standard input")
	}
	f.value = firstOr(pos, "")
	keyFlags := 0
	for _, v := range []string{f.teamID, f.keyID, f.keyFile} {
		if v != "" {
			keyFlags++
		}
	}
	switch {
	case keyFlags != 0 && keyFlags != 3:
		return nil, usagef("give all of --team-id, --key-id and --key to ask Apple, or none to only decode")
	case f.replayRedis != "" && keyFlags == 0:
		return nil, usagef("--replay-redis needs --team-id, --key-id and --key: a token is recorded as used only when it is checked")
	case f.maxAge < 0 || f.timeout <= 0:
		return nil, usagef("--max-age must not be negative and --timeout must be positive")
	}
	f.asks = keyFlags == 3
	if f.baseURL, err = verify.EnvironmentURL(*env); err != nil {
		return nil, usagef("--environment: %v", err)
	}
	return f, nil
}

// client loads the key and makes the Client that asks Apple. A key file
// every user can read is used all the same, with a warning.
func (f *verifyFlags) client(s *streams) (*verify.Client, error) {
	key, err := verify.LoadPrivateKey(f.keyFile)
	if errors.Is(err, verify.ErrKeyReadable) {
		fmt.Fprintf(s.err, "attestd: warning: %v\n", err)
	} else if err != nil {
		return nil, err
	}
	return verify.NewClient(verify.Config{TeamID: f.teamID, KeyID: f.keyID, Key: key, BaseURL: f.baseURL, Timeout: f.timeout})
}

// reportReplayStore reads the replay store's eviction policy, for the
// output: a policy that may evict makes the check fail closed (its error
// says so); one that cannot be read is a warning. A Redis that does not
// answer is left to the check, which fails closed and says so.
func reportReplayStore(ctx context.Context, s *streams, store *redisreplay.Store, timeout time.Duration) *replayStoreOutput {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	masters, err := store.Health(ctx)
	if errors.Is(err, redisreplay.ErrPolicyUnknown) {
		fmt.Fprintf(s.err, "attestd: warning: %v; make sure maxmemory-policy is noeviction on every master\n", err)
	}
	if len(masters) == 0 {
		return nil
	}
	return &replayStoreOutput{Masters: masters}
}

// checkLocally parses in and applies v's local policy, without Apple or
// the replay store.
func checkLocally(v *verify.Verifier, in string) (*verify.Result, error) {
	a, err := verify.Parse(in)
	if a == nil {
		return nil, err
	}
	res := &verify.Result{Attestation: *a}
	if !a.GeneratedAt.IsZero() {
		res.Age = time.Since(a.GeneratedAt)
	}
	if err == nil {
		err = v.Check(a)
	}
	return res, err
}

// verifyExitCode maps the outcome of a check to the exit status.
func verifyExitCode(err error, asked bool) int {
	switch {
	case err == nil:
		return 0
	case verify.Rejected(err):
		return 1
	case !asked && errors.Is(err, verify.ErrNotValidated):
		return exitNotValidated
	}
	return exitNotChecked
}

// outcomes names each exit status in the JSON output.
var outcomes = map[int]string{0: "valid", 1: "not_valid", exitNotValidated: "decoded_only", exitNotChecked: "not_checked"}

// printVerify prints out as JSON and, unless the token is valid, what
// went wrong and a hint on standard error; it returns what makes the
// process exit with code.
func printVerify(s *streams, out *verifyOutput, code int, err error) error {
	out.Outcome = outcomes[code]
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(out); werr != nil {
		return werr
	}
	switch code {
	case 0:
		return nil
	case exitNotValidated:
		fmt.Fprintf(s.err, "attestd: note: decoded only; nothing was validated with Apple\n")
		fmt.Fprintf(s.err, "attestd: hint: pass --team-id, --key-id and --key to ask Apple\n")
		return exitCode(code)
	}
	fmt.Fprintf(s.err, "attestd: error: %v\n", err)
	if h := hint.Of(err); h != "" {
		fmt.Fprintf(s.err, "attestd: hint: %s\n", h)
	}
	return exitCode(code)
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

// trimHeaderName drops a leading "x-oai-attestation:" so a header line
// copied from a log can be pasted as is.
func trimHeaderName(s string) string {
	s = strings.TrimSpace(s)
	if name, rest, ok := strings.Cut(s, ":"); ok && strings.EqualFold(strings.TrimSpace(name), verify.HeaderName) {
		return strings.TrimSpace(rest)
	}
	return s
}

// verifyOutput is what "attestd verify" prints. It never holds the token,
// only its fingerprint.
type verifyOutput struct {
	// Valid is true only when every check passed (exit status 0).
	Valid bool `json:"valid"`
	// Outcome names the exit status: valid, not_valid, decoded_only or
	// not_checked.
	Outcome string `json:"outcome"`
	// Validated is true when Apple answered about the token: it accepted
	// it, or refused it as a bad device token.
	Validated   bool   `json:"validated"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	Environment string `json:"environment,omitempty"`
	// ReplayStore is what the --replay-redis store said of itself.
	ReplayStore *replayStoreOutput `json:"replayStore,omitempty"`

	Form          string `json:"form,omitempty"`
	Status        *int   `json:"status,omitempty"`
	StatusName    string `json:"statusName,omitempty"`
	StatusMeaning string `json:"statusMeaning,omitempty"`
	Kind          string `json:"kind,omitempty"`
	Fingerprint   string `json:"fingerprint,omitempty"`
	TokenBytes    int    `json:"tokenBytes,omitempty"`
	GeneratedAt   string `json:"generatedAt,omitempty"`
	Age           string `json:"age,omitempty"`
	BundleID      string `json:"bundleId,omitempty"`
	TeamID        string `json:"teamId,omitempty"`

	Apple *appleOutput `json:"apple,omitempty"`
}

// replayStoreOutput is the Redis of --replay-redis: each master's
// maxmemory-policy ("" when it could not be read).
type replayStoreOutput struct {
	Masters []redisreplay.MasterPolicy `json:"masters"`
}

// appleOutput is Apple's answer when it was not a success.
type appleOutput struct {
	HTTPStatus int    `json:"httpStatus"`
	Body       string `json:"body,omitempty"`
	Attempts   int    `json:"attempts"`
}

func (o *verifyOutput) fill(res *verify.Result, err error) {
	o.Valid = err == nil && res != nil && res.Valid
	if err != nil {
		o.Reason, o.Error = verify.Reason(err), err.Error()
	}
	var ae *verify.AppleError
	if errors.As(err, &ae) {
		o.Apple = &appleOutput{HTTPStatus: ae.Status, Body: ae.Body, Attempts: ae.Attempts}
	}
	if res == nil {
		return
	}
	o.Validated = res.AppleChecked
	o.Form = string(res.Form)
	st := int(res.Status)
	o.Status, o.StatusName, o.StatusMeaning = &st, res.Status.String(), verify.StatusText(res.Status)
	o.Kind, o.Fingerprint, o.TokenBytes = res.Kind, res.Fingerprint(), len(res.Token)
	if !res.GeneratedAt.IsZero() {
		o.GeneratedAt = res.GeneratedAt.UTC().Format(time.RFC3339Nano)
		if res.Age != 0 {
			o.Age = res.Age.Round(time.Millisecond).String()
		}
	}
	o.BundleID, o.TeamID = res.BundleID, res.TeamID
}

func verifyHint(err error, redisURL string) string {
	switch {
	case errors.Is(err, verify.ErrMissing), errors.Is(err, verify.ErrMalformed):
		return `give the x-oai-attestation header's value (one, at most 9472 bytes): a "v1." value or the {"v":1,"s":0,"t":"v1.…"} envelope`
	case errors.Is(err, verify.ErrClientStatus):
		return "the app-server got no token from its client; on the client's Mac run \"attestd doctor\" and \"attestd status\""
	case errors.Is(err, verify.ErrDevToken):
		return "this token is from the dev provider and proves nothing; pass --allow-dev to accept it (never in production)"
	case errors.Is(err, verify.ErrTooOld):
		return "check a fresh token, or raise --max-age"
	case errors.Is(err, verify.ErrFuture):
		return "the client's clock or this machine's is wrong"
	case errors.Is(err, verify.ErrReplay):
		return "each token is good for one check, and this one was already checked (it is in the --replay-redis store)"
	case errors.Is(err, redisreplay.ErrEvictionPolicy):
		return "Redis may evict the records that make a token single-use: set maxmemory-policy noeviction on every master (CONFIG SET maxmemory-policy noeviction, or your provider's parameter; see verify/README.md)"
	case errors.Is(err, verify.ErrReplayStore):
		return fmt.Sprintf("the replay store did not answer, and the check fails closed without it: check that Redis runs at %s", redactURL(redisURL))
	case errors.Is(err, verify.ErrBadDeviceToken):
		return "tokens from a development-signed helper validate only with --environment development"
	case errors.Is(err, verify.ErrBadAuthorization), errors.Is(err, verify.ErrExpiredAuthorization), errors.Is(err, verify.ErrForbidden):
		return "check --team-id and --key-id, this machine's clock, and that the key has DeviceCheck enabled (Certificates, Identifiers & Profiles > Keys)"
	case errors.Is(err, verify.ErrUnexpectedResponse):
		return "that answer did not come from Apple's API: a proxy, a captive portal or a wrong --environment URL is in the way; nothing was validated"
	case errors.Is(err, verify.ErrRateLimited):
		return "Apple rate-limited this team; try again later"
	case unreachable(err):
		return "Apple could not be asked within --timeout; check the network path to the --environment and try again"
	}
	return ""
}

// unreachable reports whether err says Apple did not answer, failed or
// ran out of time. (verify.AppleDown says more: that its breaker counts
// Apple as down, which one run of a few attempts never shows.)
func unreachable(err error) bool {
	switch verify.Reason(err) {
	case "network", "apple_server_error", "apple_unavailable", "timeout":
		return true
	}
	return false
}

// redactURL returns u with its password, if any, shown as "xxxxx": a
// --replay-redis URL may carry Redis's password, and stderr ends up in
// CI logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the --replay-redis URL"
	}
	return p.Redacted()
}
