package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/appattest"
	"github.com/attestd/attestd/darwin"
)

// AppAttestConfig configures the App Attest provider (--provider
// appattest, and auto with a registration URL on a Mac).
type AppAttestConfig struct {
	// Server is the registration base URL (--appattest-register).
	Server string
	// Ready is --appattest-ready.
	Ready int
	// KeychainService is the service of the Keychain item that keeps the
	// key id: darwin.KeychainService(the LaunchAgent label, the bundle
	// id).
	KeychainService string
	// HTTP carries the requests to Server; nil is http.DefaultClient.
	HTTP *http.Client
	// Logger gets the provider's events, and the DeviceCheck fallback's;
	// nil discards.
	Logger *slog.Logger
}

// AppAttest returns the App Attest provider as the daemon runs it: Apple's
// App Attest, the key id in the login Keychain, DeviceCheck (started
// lazily, as DeviceCheck returns it) answering until the key is
// registered. Nothing runs before the daemon starts it: on a Mac without
// App Attest (isSupported false, before macOS 27) its start fails for
// good and DeviceCheck answers every request.
func AppAttest(cfg AppAttestConfig) (*appattest.Provider, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	keys := &keychain{service: cfg.KeychainService}
	return appattest.New(appattest.Config{
		Name:     "appattest",
		Start:    func() (appattest.Service, error) { return darwin.NewAppAttest(darwin.AppAttestOptions{}) },
		Keys:     keys,
		NoKeyID:  NoKeyID,
		Server:   cfg.Server,
		HTTP:     cfg.HTTP,
		Fallback: DeviceCheck(cfg.Logger),
		Ready:    cfg.Ready,
		Logger:   cfg.Logger.With("provider", "appattest"),
	})
}

// NoKeyID reports whether an error of darwin's Keychain item means that it
// holds no usable key id: none stored, or a value that is not a key id
// (a new key's id replaces it).
func NoKeyID(err error) bool {
	return errors.Is(err, darwin.ErrNotFound) || errors.Is(err, darwin.ErrBadKeyID) || errors.Is(err, appattest.ErrNoKeyID)
}

// keychain is darwin's Keychain item, opened on first use: the provider
// reads it only once App Attest has started, so another OS never opens
// it.
type keychain struct {
	service string
	once    sync.Once
	kc      *darwin.Keychain
	err     error
}

func (k *keychain) open() (*darwin.Keychain, error) {
	k.once.Do(func() { k.kc, k.err = darwin.NewKeychain(darwin.KeychainOptions{Service: k.service}) })
	return k.kc, k.err
}

// Get implements appattest.KeyStore.
func (k *keychain) Get(ctx context.Context) (string, error) {
	kc, err := k.open()
	if err != nil {
		return "", err
	}
	return kc.Get(ctx)
}

// Set implements appattest.KeyStore.
func (k *keychain) Set(ctx context.Context, keyID string) error {
	kc, err := k.open()
	if err != nil {
		return err
	}
	return kc.Set(ctx, keyID)
}

var (
	_ provider.Provider  = (*appattest.Provider)(nil)
	_ appattest.KeyStore = (*darwin.Keychain)(nil)
	_ appattest.Service  = (darwin.AppAttestService)(nil)
)
