package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/verifyprom"
)

// Settings are a gate's settings as plain values, as "attestd gate"'s
// flags and environment give them. Config turns them into a Config: the
// Verifier, its Client and replay store, the metrics and the checks of
// /readyz. Zero values mean the defaults of the fields they fill.
type Settings struct {
	// Upstream is the proxy mode's upstream URL (http or https); empty
	// means forward-auth mode.
	Upstream string
	// TeamID, KeyID and KeyFile are the DeviceCheck key; all or none.
	// With none, no DeviceCheck token is accepted.
	TeamID, KeyID, KeyFile string
	// Environment is production (empty), development or a base URL
	// (verify.EnvironmentURL).
	Environment string
	// AllowDev accepts tokens from the development provider, and App
	// Attest assertions of keys from a root other than Apple's.
	AllowDev bool
	// Kinds are the kinds accepted: "aa", "dc", "dev" (which needs
	// AllowDev). Empty means every kind that is set up: dc with the
	// DeviceCheck key, aa with AppIDs, dev with AllowDev.
	Kinds []string
	// AppIDs are the App IDs ("TEAMID.bundle.id") whose App Attest keys
	// may register; aa needs at least one.
	AppIDs []string
	// AppAttestEnvironment is the App Attest environment registered keys
	// must come from: production (empty), development or both.
	AppAttestEnvironment string
	// AppAttestRoots are roots trusted beside Apple's for App Attest
	// (devattest's development root, in tests): PEM files, or PEM text.
	AppAttestRoots []string
	// MaxAge is verify.Verifier.MaxAge: zero the default, negative no
	// limit.
	MaxAge time.Duration
	// Timeout bounds one check in all (Verifier and Client Timeout).
	Timeout time.Duration
	// AppleRateLimit and AppleMaxConcurrent are the Client's RateLimit
	// and MaxConcurrent: zero the defaults, negative no limit.
	AppleRateLimit     float64
	AppleMaxConcurrent int
	// ReplayRedis is the Redis that keeps replay records, in RedisMode's
	// URL form (redisreplay.OpenMode); empty keeps them in this process.
	ReplayRedis, RedisMode string
	// AllowWhenDown, Header and ShutdownGrace are Config's.
	AllowWhenDown bool
	Header        string
	ShutdownGrace time.Duration
	// ClientKey is ClientKeyFunc's spec; TrustedProxies the ranges
	// (ParsePrefixes) whose forwarding headers are believed.
	ClientKey      string
	TrustedProxies []string
}

// SettingError says which setting is wrong; Setting is the flag's name
// ("client-key").
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }

// Unwrap returns the error.
func (e *SettingError) Unwrap() error { return e.Err }

// ErrNoKey means DeviceCheck tokens are to be accepted without the key to
// check them with, or nothing at all could pass.
var ErrNoKey = errors.New("give --team-id, --key-id and --key (the DeviceCheck key the gate asks Apple with), --app-id for App Attest alone, or --allow-dev to accept development tokens alone")

// Config makes the Config the settings describe, logging to logger. The
// DeviceCheck key is loaded now (one every user can read is used all the
// same, with a warning). When kind "aa" is accepted, the App Attest key
// and challenge stores are made (in the replay store's Redis, or in
// memory) and the registration handler is mounted at RegistrationPath.
// Call closeAll when the gate has stopped: it closes the replay store
// and the Client's idle connections. Bad values are *SettingError.
func (s Settings) Config(logger *slog.Logger) (Config, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	cfg, err := s.config(logger, &closers)
	if err != nil {
		closeAll()
		return Config{}, nil, err
	}
	return cfg, closeAll, nil
}

// config is Config; what must be closed is added to closers as it opens.
func (s Settings) config(logger *slog.Logger, closers *[]func()) (Config, error) {
	cfg := Config{Header: s.Header, AllowWhenDown: s.AllowWhenDown, ShutdownGrace: s.ShutdownGrace, Logger: logger}
	if err := s.network(&cfg); err != nil {
		return Config{}, err
	}
	cfg.Registry = newRegistry()
	metrics := verifyprom.New()
	cfg.Registry.MustRegister(metrics)
	keyGiven := countSet(s.TeamID, s.KeyID, s.KeyFile)
	if keyGiven != 0 && keyGiven != 3 {
		return Config{}, &SettingError{"key", ErrNoKey}
	}
	kinds, err := s.acceptedKinds(keyGiven == 3)
	if err != nil {
		return Config{}, err
	}
	v := &verify.Verifier{AllowDev: s.AllowDev, Kinds: kinds, MaxAge: s.MaxAge, Timeout: s.Timeout, Observer: metrics}
	if err := s.client(v, keyGiven == 3, metrics, logger); err != nil {
		return Config{}, err
	}
	if v.Client != nil {
		*closers = append(*closers, v.Client.CloseIdleConnections)
	}
	replay, ready, closeStore, err := s.replays(v, logger)
	if err != nil {
		return Config{}, err
	}
	*closers = append(*closers, closeStore)
	cfg.Verifier, cfg.Ready = v, ready
	if slices.Contains(kinds, header.KindAppAttest) {
		if err := s.appAttest(&cfg, v, replay, logger); err != nil {
			return Config{}, err
		}
	}
	logger.Info("gate: accepting", "kinds", strings.Join(kinds, ","))
	return cfg, nil
}

// network fills what comes from the network settings: the upstream, the
// header's name, the client key and the trusted proxies.
func (s Settings) network(cfg *Config) error {
	trusted, err := ParsePrefixes(s.TrustedProxies)
	if err != nil {
		return &SettingError{"trusted-proxy", err}
	}
	cfg.TrustedProxies = trusted
	if cfg.ClientKey, err = ClientKeyFunc(s.ClientKey, trusted); err != nil {
		return &SettingError{"client-key", err}
	}
	if s.Header != "" && !validHeaderName(s.Header) {
		return &SettingError{"header", fmt.Errorf("%q is not a header name", s.Header)}
	}
	if s.Upstream != "" {
		u, err := url.Parse(s.Upstream)
		switch {
		case err != nil:
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // not the URL again: it may carry a password
			}
			return &SettingError{"upstream", err}
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.RawQuery != "", u.Fragment != "":
			return &SettingError{"upstream", errors.New("want http://host[:port][/path] or https://…, without a query or fragment")}
		}
		cfg.Upstream = u
	}
	return nil
}

// client loads the key, when given, and gives v the Client that asks
// Apple; without one, v checks no DeviceCheck token (acceptedKinds has
// left dc out).
func (s Settings) client(v *verify.Verifier, hasKey bool, obs verify.Observer, logger *slog.Logger) error {
	base, err := verify.EnvironmentURL(s.Environment)
	if err != nil {
		return &SettingError{"environment", err}
	}
	if !hasKey {
		if slices.Equal(v.Kinds, []string{header.KindDev}) {
			logger.Warn("gate: no DeviceCheck key: only development tokens can pass (--allow-dev); never run this in production")
		}
		v.NoClient = true
		return nil
	}
	key, err := verify.LoadPrivateKey(s.KeyFile)
	if errors.Is(err, verify.ErrKeyReadable) {
		logger.Warn("gate: " + err.Error())
	} else if err != nil {
		return err
	}
	v.Client, err = verify.NewClient(verify.Config{
		TeamID: s.TeamID, KeyID: s.KeyID, Key: key, BaseURL: base, Timeout: s.Timeout,
		RateLimit: s.AppleRateLimit, MaxConcurrent: s.AppleMaxConcurrent, Observer: obs,
	})
	return err
}

// replays gives v its replay store: Redis, whose health /readyz checks
// (and which it returns), or this process's memory.
func (s Settings) replays(v *verify.Verifier, logger *slog.Logger) (*redisreplay.Store, []ReadyCheck, func(), error) {
	mode, err := redisreplay.ParseMode(s.RedisMode)
	if err != nil {
		return nil, nil, nil, &SettingError{"redis-mode", err}
	}
	if s.ReplayRedis == "" {
		logger.Info("gate: replay records are kept in this process: give --replay-redis when more than one gate serves the same clients")
		v.Replays = verify.NewMemoryReplayCache()
		return nil, nil, func() {}, nil
	}
	store, err := redisreplay.OpenMode(s.ReplayRedis, mode, redisreplay.Options{Logger: logger})
	if err != nil {
		return nil, nil, nil, &SettingError{"replay-redis", err}
	}
	v.Replays = store
	health := func(ctx context.Context) error {
		_, err := store.Health(ctx)
		if errors.Is(err, redisreplay.ErrPolicyUnknown) {
			return nil // logged by the store: checks go on
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := health(ctx); err != nil {
		logger.Warn("gate: the replay store is not ready; every check fails closed (503) until it is", "err", err)
	}
	return store, []ReadyCheck{{Name: "replay_store", Check: health}}, func() { store.Close() }, nil
}

func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}
