package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/redisreplay"
)

// The exit statuses of a check, as "attestd verify" exits with them (2 is
// the command's usage error).
const (
	Valid        = 0
	NotValid     = 1 // Apple said no, or the policy refused
	NotValidated = 3 // decoded and checked locally; Apple (or the App Attest key store) was not asked
	NotChecked   = 4 // the check could not be made: Apple, our key, the replay or key store
)

// outcomes names each exit status in the report.
var outcomes = map[int]string{Valid: "valid", NotValid: "not_valid", NotValidated: "decoded_only", NotChecked: "not_checked"}

// Outcome returns the name of an exit status in the report ("valid",
// "not_valid", "decoded_only", "not_checked").
func Outcome(code int) string { return outcomes[code] }

// AppleKeyHint is the hint of a DeviceCheck key (--key) that cannot be
// loaded, for every command that asks Apple.
const AppleKeyHint = "give the .p8 file Apple let you download once when you created the key (Certificates, Identifiers & Profiles > Keys)"

// Apple says how to ask Apple about a token.
type Apple struct {
	TeamID, KeyID string
	KeyFile       string // the .p8 file
	BaseURL       string // verify.Production, verify.Development or a test server
}

// CheckConfig says how to check one value.
type CheckConfig struct {
	AllowDev bool
	// MaxAge refuses values generated longer ago; 0 means no limit.
	MaxAge time.Duration
	// Timeout bounds the whole check: the replay store, Apple, retries.
	Timeout time.Duration
	// ReplayRedis, when set, records the token in that Redis, so checks
	// in separate processes accept it once. It needs Apple.
	ReplayRedis string
	// Apple, when set, asks Apple; nil decodes and checks locally only.
	Apple *Apple
	// Warn gets warnings a person should see (a key file others can read,
	// a replay store whose policy cannot be read); nil drops them.
	Warn func(string)
}

// Verdict is how a check ended: the report to print, the exit status and,
// unless the value is valid, why (with a hint.Of).
type Verdict struct {
	Report *Report
	Code   int
	Err    error
}

// ConfigError is a CheckConfig that cannot be used (a --replay-redis URL
// that does not parse); the command treats it as a usage error.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Check reads the value (arg, or stdin when arg is "" or "-") and checks
// it: locally always, then with Apple and the replay store when cfg asks
// (a DeviceCheck token), or with the App Attest key store in the replay
// store's Redis (an App Attest value, kind "aa"). Its error is for what
// is not about the value: a CheckConfig that cannot be used, or stdin
// that cannot be read.
func Check(ctx context.Context, cfg CheckConfig, stdin io.Reader, arg string) (Verdict, error) {
	warn := cfg.Warn
	if warn == nil {
		warn = func(string) {}
	}
	v := &verify.Verifier{AllowDev: cfg.AllowDev, MaxAge: cfg.MaxAge, Timeout: cfg.Timeout}
	if cfg.MaxAge == 0 {
		v.MaxAge = -1 // no limit; the Verifier's zero is its default
	}
	// One run checks one token: a cache of its own (the process-wide
	// default would carry over between runs in one process).
	v.Replays = verify.NewMemoryReplayCache()
	in, err := ReadValue(stdin, arg)
	if err != nil && !errors.Is(err, ErrInputTooLong) {
		return Verdict{}, err
	}
	in = TrimHeaderName(in)
	aa := err == nil && isAppAttest(in)
	r := &Report{}
	if cfg.ReplayRedis != "" {
		if cfg.Apple == nil && !aa {
			return Verdict{}, &ConfigError{errors.New("--replay-redis needs --team-id, --key-id and --key for a DeviceCheck token: a token is recorded as used only when it is checked")}
		}
		store, err := redisreplay.Open(cfg.ReplayRedis, redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return Verdict{}, &ConfigError{fmt.Errorf("--replay-redis: %w", err)}
		}
		defer store.Close()
		v.Replays = store
		if aa {
			v.Keys = appattestredis.New(store, appattestredis.Options{})
		}
		r.ReplayStore = replayStore(ctx, store, cfg.Timeout, warn)
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", verify.ErrMalformed, err)
		r.fill(nil, err)
		return r.verdict(exitCode(err, false), hint.Wrap(err, Hint(err, cfg.ReplayRedis))), nil
	}
	if aa {
		return checkAppAttest(ctx, v, r, in, cfg.ReplayRedis), nil
	}
	return checkDeviceCheck(ctx, cfg, v, r, in, warn), nil
}

// checkDeviceCheck checks a DeviceCheck (or development) token: locally,
// then with Apple when cfg says how.
func checkDeviceCheck(ctx context.Context, cfg CheckConfig, v *verify.Verifier, r *Report, in string, warn func(string)) Verdict {
	var res *verify.Result
	var err error
	switch {
	case cfg.Apple == nil:
		if res, err = checkLocally(v, in); err == nil {
			err = verify.ErrNotValidated
		}
	default:
		r.Environment = cfg.Apple.BaseURL
		// Local checks first: a token the policy refuses needs no key.
		if res, err = checkLocally(v, in); err != nil {
			break
		}
		if v.Client, err = appleClient(cfg, warn); err != nil {
			r.fill(res, err)
			r.Reason = "bad_key"
			return r.verdict(NotChecked, hint.Wrap(fmt.Errorf("could not check the token: %w", err), AppleKeyHint))
		}
		defer v.Client.CloseIdleConnections()
		res, err = v.Verify(ctx, in)
	}
	r.fill(res, err)
	code := exitCode(err, cfg.Apple != nil)
	if code == NotChecked {
		err = fmt.Errorf("could not check the token: %w", err)
	}
	return r.verdict(code, hint.Wrap(err, Hint(err, cfg.ReplayRedis)))
}

// verdict names code in the report and returns the Verdict.
func (r *Report) verdict(code int, err error) Verdict {
	r.Outcome = outcomes[code]
	if code == Valid {
		err = nil
	}
	return Verdict{Report: r, Code: code, Err: err}
}

// appleClient loads the key and makes the Client that asks Apple. A key
// file every user can read is used all the same, with a warning.
func appleClient(cfg CheckConfig, warn func(string)) (*verify.Client, error) {
	key, err := verify.LoadPrivateKey(cfg.Apple.KeyFile)
	if errors.Is(err, verify.ErrKeyReadable) {
		warn(err.Error())
	} else if err != nil {
		return nil, err
	}
	return verify.NewClient(verify.Config{TeamID: cfg.Apple.TeamID, KeyID: cfg.Apple.KeyID, Key: key, BaseURL: cfg.Apple.BaseURL, Timeout: cfg.Timeout})
}

// replayStore reads the replay store's eviction policy, for the report: a
// policy that may evict makes the check fail closed (its error says so);
// one that cannot be read is a warning. A Redis that does not answer is
// left to the check, which fails closed and says so.
func replayStore(ctx context.Context, store *redisreplay.Store, timeout time.Duration, warn func(string)) *ReplayStore {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	masters, err := store.Health(ctx)
	if errors.Is(err, redisreplay.ErrPolicyUnknown) {
		warn(fmt.Sprintf("%v; make sure maxmemory-policy is noeviction on every master", err))
	}
	if len(masters) == 0 {
		return nil
	}
	return &ReplayStore{Masters: masters}
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

// exitCode maps the outcome of a check to the exit status.
func exitCode(err error, asked bool) int {
	switch {
	case err == nil:
		return Valid
	case verify.Rejected(err):
		return NotValid
	case !asked && errors.Is(err, verify.ErrNotValidated):
		return NotValidated
	}
	return NotChecked
}
