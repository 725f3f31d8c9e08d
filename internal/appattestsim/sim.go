// Package appattestsim simulates App Attest on any OS, for
// "attestd serve|bridge --provider appattest-sim" and for tests: software
// keys certified by the development root (verify/appattest/devattest)
// behind the same interface as darwin's App Attest, with darwin's checks
// and errors, and a latency setting; an in-memory key store stands in for
// the Keychain. The provider on top is the real one
// (bridge/provider/appattest), so the registration flow, the header and
// the fallback are exactly what a Mac runs.
//
// Its keys PROVE NOTHING: a server accepts them only with the development
// root and development keys allowed (attestd gate --allow-dev).
package appattestsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/appattest"
	"github.com/attestd/attestd/darwin"
	vappattest "github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

// Name is the simulator's provider name (--provider appattest-sim).
const Name = "appattest-sim"

// Service is App Attest simulated: GenerateKey makes a devattest key for
// the App ID, AttestKey certifies it by the development root, and
// GenerateAssertion signs with it, each after Latency. Arguments are
// checked as darwin checks them; a key id it did not make, or one
// Invalidate named, fails with App Attest's invalidKey. It satisfies
// darwin.AppAttestService.
type Service struct {
	appID       string
	environment vappattest.Environment
	latency     time.Duration

	mu      sync.Mutex
	keys    map[string]*devattest.Key
	invalid map[string]bool
}

var _ darwin.AppAttestService = (*Service)(nil)

// NewService returns a simulated App Attest for appID ("TEAMID.bundle.id")
// whose calls each take latency. environment selects the AAGUID (empty:
// development).
func NewService(appID string, environment vappattest.Environment, latency time.Duration) (*Service, error) {
	if appID == "" {
		return nil, errors.New("appattest-sim: no App ID: give --app-id TEAMID.bundle.id")
	}
	if latency < 0 {
		return nil, fmt.Errorf("appattest-sim: negative latency %v", latency)
	}
	if environment == "" {
		environment = vappattest.Development
	}
	return &Service{appID: appID, environment: environment, latency: latency,
		keys: map[string]*devattest.Key{}, invalid: map[string]bool{}}, nil
}

// Supported implements darwin.AppAttestService: the simulator works
// everywhere.
func (s *Service) Supported() (bool, error) { return true, nil }

// GenerateKey implements darwin.AppAttestService.
func (s *Service) GenerateKey(ctx context.Context) (string, error) {
	if err := s.wait(ctx, darwin.OpGenerateKey); err != nil {
		return "", err
	}
	k, err := devattest.NewKey(s.appID)
	if err != nil {
		return "", err
	}
	k.Environment = s.environment
	var id [darwin.KeyIDSize]byte
	copy(id[:], k.ID())
	text := darwin.FormatKeyID(id)
	s.mu.Lock()
	s.keys[text] = k
	s.mu.Unlock()
	return text, nil
}

// AttestKey implements darwin.AppAttestService.
func (s *Service) AttestKey(ctx context.Context, keyID string, clientDataHash []byte) ([]byte, error) {
	k, err := s.call(ctx, darwin.OpAttestKey, keyID, clientDataHash)
	if err != nil {
		return nil, err
	}
	return k.Attest(clientDataHash)
}

// GenerateAssertion implements darwin.AppAttestService.
func (s *Service) GenerateAssertion(ctx context.Context, keyID string, clientDataHash []byte) ([]byte, error) {
	k, err := s.call(ctx, darwin.OpGenerateAssertion, keyID, clientDataHash)
	if err != nil {
		return nil, err
	}
	return k.Assert(clientDataHash)
}

// Invalidate makes every later call with keyID fail with invalidKey, as
// App Attest does after a reinstall or a restore.
func (s *Service) Invalidate(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalid[keyID] = true
}

// Key returns the key keyID names, for tests that check its assertions.
func (s *Service) Key(keyID string) (*devattest.Key, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	return k, ok
}

// KeyIDs returns the ids of the keys made so far.
func (s *Service) KeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	return ids
}

// call checks a signing call's arguments as darwin does, waits the
// latency and returns the key.
func (s *Service) call(ctx context.Context, op darwin.AppAttestOp, keyID string, clientDataHash []byte) (*devattest.Key, error) {
	if _, err := darwin.ParseKeyID(keyID); err != nil {
		return nil, fmt.Errorf("appattest %s: %w", op, err)
	}
	if len(clientDataHash) != darwin.ClientDataHashSize {
		return nil, fmt.Errorf("appattest %s: %w, got %d", op, darwin.ErrBadClientDataHash, len(clientDataHash))
	}
	if err := s.wait(ctx, op); err != nil {
		return nil, err
	}
	s.mu.Lock()
	k, ok := s.keys[keyID]
	invalid := s.invalid[keyID]
	s.mu.Unlock()
	if !ok || invalid {
		return nil, darwin.NewAppAttestError(op, darwin.DCErrorDomain, darwin.DCErrorInvalidKey, "simulated: the key is invalid")
	}
	return k, nil
}

// wait waits the latency, or fails as darwin's calls do when ctx ends.
func (s *Service) wait(ctx context.Context, op darwin.AppAttestOp) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("appattest %s: %w", op, err)
	}
	if s.latency <= 0 {
		return nil
	}
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
		if ctx.Err() == nil { // both ready: a late answer is dropped, as darwin drops it
			return nil
		}
	case <-ctx.Done():
	}
	return &provider.Error{Reason: provider.ReasonTimeout, Msg: "appattest " + string(op) + " (simulated)", Err: ctx.Err()}
}

// Keys is the simulator's key store, in memory: the Keychain item of a
// run that lasts as long as the process.
type Keys struct {
	mu sync.Mutex
	id string
}

var _ darwin.KeyStore = (*Keys)(nil)

// Get implements darwin.KeyStore; with no key id it returns an error
// wrapping appattest.ErrNoKeyID and darwin.ErrNotFound.
func (k *Keys) Get(context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.id == "" {
		return "", fmt.Errorf("%w (%w)", appattest.ErrNoKeyID, darwin.ErrNotFound)
	}
	return k.id, nil
}

// Set implements darwin.KeyStore.
func (k *Keys) Set(_ context.Context, keyID string) error {
	if _, err := darwin.ParseKeyID(keyID); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.id = keyID
	return nil
}

// Delete implements darwin.KeyStore.
func (k *Keys) Delete(context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.id = ""
	return nil
}

// Config configures the simulated provider.
type Config struct {
	// AppID is "TEAMID.bundle.id" (--app-id): on a Mac it is the signed
	// bundle's, here it must be given.
	AppID string
	// Environment selects the keys' AAGUID; empty means development.
	Environment vappattest.Environment
	// Server is the registration base URL (--appattest-register).
	Server string
	// Ready is --appattest-ready.
	Ready int
	// Latency is how long each simulated App Attest call takes, and each
	// token of the default fallback (--dev-latency).
	Latency time.Duration
	// Fallback answers until the key is registered; nil means the
	// development provider with Latency.
	Fallback provider.Provider
	// Provider, when set, is called with the provider's configuration
	// before it is made, so tests can tune its timing (backoff, checks,
	// assertion timeout).
	Provider func(*appattest.Config)
	// HTTP carries the requests to Server; nil is http.DefaultClient.
	HTTP *http.Client
	// Logger gets the provider's events; nil discards.
	Logger *slog.Logger
}

// Sim is the simulated App Attest provider with its service and key
// store.
type Sim struct {
	*appattest.Provider
	Service *Service
	Keys    *Keys
}

// New returns the simulated provider: the real App Attest provider over a
// simulated service and an in-memory key store. Start it (or ask it for
// an answer) to begin registering; Close it when done.
func New(cfg Config) (*Sim, error) {
	svc, err := NewService(cfg.AppID, cfg.Environment, cfg.Latency)
	if err != nil {
		return nil, err
	}
	fallback := cfg.Fallback
	if fallback == nil {
		fallback = provider.Dev{Latency: cfg.Latency}
	}
	keys := &Keys{}
	pc := appattest.Config{Name: Name, Start: func() (appattest.Service, error) { return svc, nil },
		Keys: keys, Server: cfg.Server, HTTP: cfg.HTTP, Fallback: fallback, Ready: cfg.Ready, Logger: cfg.Logger}
	if cfg.Provider != nil {
		cfg.Provider(&pc)
	}
	p, err := appattest.New(pc)
	if err != nil {
		return nil, err
	}
	return &Sim{Provider: p, Service: svc, Keys: keys}, nil
}
