package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/appattest/registration"
	"github.com/attestd/attestd/verify/redisreplay"
)

// RegistrationPath is where the gate serves App Attest's registration
// (registration.Handler) when it accepts kind "aa": POST
// /appattest/challenge, POST /appattest/register and GET
// /appattest/keys/{id}, unchecked (an app registers before it has an
// attestation to send) and, in proxy mode, never forwarded.
const RegistrationPath = "/appattest/"

// The values of Settings.AppAttestEnvironment besides the two
// environments.
const environmentBoth = "both"

// allKinds are the kinds a gate can accept, in the order they are listed.
var allKinds = []string{header.KindAppAttest, header.KindDeviceCheck, header.KindDev}

// acceptedKinds returns the kinds the gate accepts. Given Kinds are
// checked against what is set up: aa needs AppIDs, dc the DeviceCheck key
// (hasKey), dev AllowDev. With none given, every kind that is set up is
// accepted; nothing set up is ErrNoKey.
func (s Settings) acceptedKinds(hasKey bool) ([]string, error) {
	setUp := map[string]bool{header.KindAppAttest: len(s.AppIDs) > 0, header.KindDeviceCheck: hasKey, header.KindDev: s.AllowDev}
	var kinds []string
	for _, k := range s.Kinds {
		switch k = strings.TrimSpace(k); {
		case k == "":
			continue
		case !slices.Contains(allKinds, k):
			return nil, &SettingError{"kinds", fmt.Errorf("unknown kind %q: want aa (App Attest), dc (DeviceCheck) or dev (development)", k)}
		case k == header.KindDev && !s.AllowDev:
			return nil, &SettingError{"kinds", errors.New("dev needs --allow-dev (development tokens prove nothing: never in production)")}
		case k == header.KindAppAttest && !setUp[k]:
			return nil, &SettingError{"app-id", errors.New("App Attest (aa) needs the App IDs whose keys may register: give --app-id TEAMID.bundle.id, or leave aa out of --kinds")}
		case k == header.KindDeviceCheck && !setUp[k]:
			return nil, &SettingError{"key", ErrNoKey}
		case !slices.Contains(kinds, k):
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		for _, k := range allKinds {
			if setUp[k] {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 {
		return nil, &SettingError{"key", ErrNoKey}
	}
	if !slices.Contains(kinds, header.KindAppAttest) {
		switch {
		case len(s.AppIDs) > 0:
			return nil, &SettingError{"app-id", errors.New("App IDs are for App Attest, which --kinds leaves out: add aa to --kinds, or leave --app-id out")}
		case len(s.AppAttestRoots) > 0:
			return nil, &SettingError{"appattest-root", errors.New("roots are for App Attest, which is off: give --app-id (and aa in --kinds, if given), or leave --appattest-root out")}
		}
	}
	return kinds, nil
}

// appAttest gives v its App Attest key store and cfg the registration
// handler at RegistrationPath, with the gate's client names for its rate
// limit. The stores are Redis on the replay store's connection when
// there is one (replay not nil), so every gate shares keys, counters and
// challenges; else this process's memory.
func (s Settings) appAttest(cfg *Config, v *verify.Verifier, replay *redisreplay.Store, logger *slog.Logger) error {
	envs, err := appAttestEnvironments(s.AppAttestEnvironment)
	if err != nil {
		return &SettingError{"appattest-environment", err}
	}
	roots, err := appAttestRoots(s.AppAttestRoots)
	if err != nil {
		return &SettingError{"appattest-root", err}
	}
	if len(roots) > 1 && !s.AllowDev {
		// Keys from another root pass only with AllowDev: registering them
		// would only fill the store, and the development root's private
		// key ships in the repository, so anyone could.
		return &SettingError{"appattest-root", errors.New("keys from another root than Apple's pass only with --allow-dev (never in production): give --allow-dev, or leave --appattest-root out")}
	}
	var keys appattest.KeyStore
	var challenges appattest.ChallengeStore
	if replay != nil {
		store := appattestredis.New(replay, appattestredis.Options{})
		keys, challenges = store, store
		cfg.Ready = append(cfg.Ready, ReadyCheck{Name: "appattest_key_store", Check: func(ctx context.Context) error {
			return keyStoreHealth(ctx, store)
		}})
	} else {
		logger.Info("gate: App Attest keys and challenges are kept in this process: give --replay-redis when more than one gate serves the same apps")
		keys, challenges = &appattest.MemoryKeyStore{}, &appattest.MemoryChallengeStore{}
	}
	reg, err := registration.NewHandler(registration.Config{Keys: keys, Challenges: challenges, AppIDs: s.AppIDs,
		Environments: envs, Roots: roots, Client: cfg.ClientKey, Logger: logger})
	if err != nil {
		return &SettingError{"app-id", err}
	}
	v.Keys = keys
	if cfg.Mount == nil {
		cfg.Mount = map[string]http.Handler{}
	}
	cfg.Mount[RegistrationPath] = reg
	return nil
}

// keyStoreHealth reads a key no app can have (all zero bytes): the store
// answering that it is unknown means it can be read and may be trusted
// (appattestredis refuses a Redis that may evict).
func keyStoreHealth(ctx context.Context, keys appattest.KeyStore) error {
	_, err := keys.Get(ctx, make([]byte, header.KeyIDLen))
	if errors.Is(err, appattest.ErrUnknownKey) {
		return nil
	}
	if err == nil {
		return errors.New("a key with an all-zero id is registered")
	}
	return err
}

// appAttestEnvironments reads --appattest-environment: production (or
// empty), development or both.
func appAttestEnvironments(s string) ([]appattest.Environment, error) {
	switch e := appattest.Environment(s); e {
	case "", appattest.Production:
		return []appattest.Environment{appattest.Production}, nil
	case appattest.Development:
		return []appattest.Environment{appattest.Development}, nil
	case environmentBoth:
		return []appattest.Environment{appattest.Development, appattest.Production}, nil
	}
	return nil, fmt.Errorf("want production, development or both, not %q", s)
}

// appAttestRoots returns Apple's root and those given: each a PEM file,
// or PEM text itself (as $ATTESTD_APPATTEST_ROOT_FILE hands it over).
// devattest's root is named "development", as attestd appattest --root
// names it; any other after its file ("file:NAME"), or "pem" when given
// as text. A copy of Apple's root adds nothing.
func appAttestRoots(given []string) ([]*appattest.Root, error) {
	apple := appattest.AppleRoot()
	roots := []*appattest.Root{apple}
	for i, g := range given {
		p, name := []byte(g), fmt.Sprintf("pem:%d", i+1)
		if !strings.HasPrefix(strings.TrimSpace(g), "-----BEGIN") {
			var err error
			if p, err = os.ReadFile(g); err != nil {
				return nil, err
			}
			name = "file:" + filepath.Base(g)
		}
		if bytes.Equal(bytes.TrimSpace(p), bytes.TrimSpace(devattest.RootPEM())) {
			name = devattest.RootName
		}
		r, err := appattest.ParseRoot(name, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if !r.Certificate.Equal(apple.Certificate) {
			roots = append(roots, r)
		}
	}
	return roots, nil
}
