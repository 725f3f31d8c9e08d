package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/appattest"
	"github.com/attestd/attestd/darwin"
	"github.com/attestd/attestd/internal/appattestsim"
	"github.com/attestd/attestd/internal/daemon"
	"github.com/attestd/attestd/internal/probe"
	"github.com/attestd/attestd/packaging/plists"
)

// allProviderNames lists the values of --provider of serve, bridge and
// probe.
const allProviderNames = "auto|devicecheck|appattest|appattest-sim|dev"

// providerNames lists the providers "attestd agent install" offers: those
// that need no flag it does not pass (App Attest's registration URL,
// which make bundle passes).
const providerNames = "auto|devicecheck|dev"

// providerFlags are the flags that choose and tune the token provider.
type providerFlags struct {
	name, register, appID *string
	ready                 *int
	devLatency            *time.Duration
}

// addProviderFlags defines --provider (defaulting to def), the App
// Attest flags and --dev-latency on fs.
func addProviderFlags(fs *flag.FlagSet, def, usage string) providerFlags {
	return providerFlags{
		name:       fs.String("provider", def, usage),
		register:   fs.String("appattest-register", "", "App Attest: register the key with the server at this base URL (an attestd gate); DeviceCheck tokens until it is registered"),
		ready:      fs.Int("appattest-ready", 0, "App Attest: keep this many assertions made ahead while busy (at most --prefetch); 0 makes each one when a request asks"),
		appID:      fs.String("app-id", "", "with appattest-sim: the App ID TEAMID.bundle.id its keys are for (on a Mac, App Attest's is the signed bundle's)"),
		devLatency: fs.Duration("dev-latency", 0, "with the dev and appattest-sim providers: make each token (and simulated App Attest call) take this long, as DeviceCheck's few hundred milliseconds do (e.g. 300ms)"),
	}
}

// newProvider returns the token provider chosen by the flags. "auto" is
// App Attest on macOS with --appattest-register, else DeviceCheck on
// macOS, else the development provider, with one warning line on stderr.
func (f providerFlags) newProvider(s *streams, logger *slog.Logger) (provider.Provider, error) {
	if err := f.check(true); err != nil {
		return nil, err
	}
	if usesAppAttest(*f.name, *f.register) {
		return f.appAttest(s, logger)
	}
	return newProvider(*f.name, s, provider.Dev{Latency: *f.devLatency})
}

// check says when the flags do not go together; App Attest needs a
// registration URL when it is to serve (not to probe).
func (f providerFlags) check(serving bool) error {
	name := *f.name
	switch {
	case *f.devLatency < 0:
		return usagef("--dev-latency must not be negative")
	case *f.ready < 0:
		return usagef("--appattest-ready must not be negative")
	case (*f.register != "" || *f.ready != 0 || *f.appID != "") && !plists.UsesAppAttest(name):
		return usagef("--appattest-register, --appattest-ready and --app-id go with --provider appattest, appattest-sim or auto")
	case (name == "appattest" || name == "appattest-sim") && *f.register == "" && serving:
		return usagef("--provider %s needs --appattest-register URL: the server its key is registered with", name)
	case name == "appattest-sim" && *f.appID == "":
		return usagef("--provider appattest-sim needs --app-id TEAMID.bundle.id")
	case *f.register != "":
		if err := plists.CheckAppAttestRegister(*f.register); err != nil {
			return usagef("--appattest-register: %v", err)
		}
	}
	return nil
}

// usesAppAttest reports whether --provider name runs App Attest here:
// appattest and appattest-sim, and auto on macOS with a registration URL.
func usesAppAttest(name, register string) bool {
	return name == "appattest" || name == "appattest-sim" || name == "auto" && register != "" && runtime.GOOS == "darwin"
}

// appAttest returns the App Attest provider of the flags: the simulator,
// or Apple's with the key id in the Keychain item of this helper's
// LaunchAgent label (else its bundle id).
func (f providerFlags) appAttest(s *streams, logger *slog.Logger) (provider.Provider, error) {
	if *f.name == "appattest-sim" {
		return appattestsim.New(appattestsim.Config{AppID: *f.appID, Server: *f.register, Ready: *f.ready,
			Latency: *f.devLatency, Logger: logger.With("provider", appattestsim.Name)})
	}
	label, _ := ownAgent(s)
	return daemon.AppAttest(daemon.AppAttestConfig{Server: *f.register, Ready: *f.ready, Logger: logger,
		KeychainService: darwin.KeychainService(label, selfIdentity(logger).BundleID)})
}

// probeAppAttest returns what attestd probe measures App Attest with:
// Apple's or the simulator, and the registration server when given.
func (f providerFlags) probeAppAttest(timeout time.Duration) (*probe.AppAttestConfig, error) {
	if err := f.check(false); err != nil {
		return nil, err
	}
	cfg := &probe.AppAttestConfig{Start: func() (appattest.Service, error) {
		return darwin.NewAppAttest(darwin.AppAttestOptions{Timeout: timeout})
	}}
	if *f.name == "appattest-sim" {
		svc, err := appattestsim.NewService(*f.appID, "", *f.devLatency)
		cfg.Start = func() (appattest.Service, error) { return svc, err }
	}
	if *f.register != "" {
		cfg.Register = &appattest.Client{BaseURL: *f.register}
	}
	return cfg, nil
}

// newProvider returns the provider called name; dev is the development
// provider to use for "dev" (and for "auto" off macOS).
func newProvider(name string, s *streams, dev provider.Dev) (provider.Provider, error) {
	switch {
	case name == "dev":
		return dev, nil
	case name == "devicecheck" || name == "auto" && runtime.GOOS == "darwin":
		p, err := darwin.NewDeviceCheck(darwin.DeviceCheckOptions{})
		if err != nil {
			return nil, providerHint(err)
		}
		return p, nil
	case name == "auto":
		fmt.Fprintf(s.err, "attestd: warning: DeviceCheck needs macOS (this is %s); using the development provider, whose tokens are never valid in production\n", runtime.GOOS)
		return dev, nil
	}
	return nil, usagef("unknown provider %q; want one of %s", name, allProviderNames)
}

// providerHint gives a provider's start failure a hint when it carries
// none.
func providerHint(err error) error {
	switch {
	case hint.Of(err) != "":
		return err
	case errors.Is(err, darwin.ErrUnsupported) || errors.Is(err, provider.ErrUnsupported):
		return hint.Wrap(err, provider.UnsupportedHint)
	}
	return hint.Wrap(err, provider.DoctorHint)
}

// closeProvider stops a provider's background work (App Attest's).
func closeProvider(p provider.Provider) {
	if c, ok := p.(io.Closer); ok {
		c.Close()
	}
}
