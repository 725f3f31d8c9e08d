// Package providers makes the token provider a command asks for by name
// (--provider auto, devicecheck, appattest, appattest-sim or dev): which
// one "auto" means on this system, the checks its settings must pass, the
// hint each failure to start carries, and the variant the daemon serves
// (DeviceCheck started only once the daemon has its socket).
package providers

import (
	"errors"
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

// Names lists the values of --provider of serve, bridge and probe.
const Names = "auto|devicecheck|appattest|appattest-sim|dev"

// AgentNames lists the providers "attestd agent install" offers: those
// that need no flag it does not pass (the simulator's --app-id).
const AgentNames = "auto|devicecheck|appattest|dev"

// Spec names a provider and its settings, as the command line gives them.
type Spec struct {
	Name string
	// Register is App Attest's registration server (base URL).
	Register string
	// AppID is the simulator's App ID (TEAMID.bundle.id).
	AppID string
	// Ready is how many App Attest assertions to keep made ahead.
	Ready int
	// DevLatency makes each dev token (and simulated App Attest call)
	// take this long.
	DevLatency time.Duration
	// AgentLabel is this helper's LaunchAgent label, for the Keychain
	// item that holds App Attest's key id ("" outside a helper bundle).
	AgentLabel string
}

// UsageError is settings that do not go together; a command reports it
// as a usage error.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// Check says when the settings do not go together (a *UsageError). App
// Attest needs a registration URL when it is to serve, not to probe.
func (s Spec) Check(serving bool) error {
	switch {
	case s.DevLatency < 0:
		return usagef("--dev-latency must not be negative")
	case s.Ready < 0:
		return usagef("--appattest-ready must not be negative")
	case (s.Register != "" || s.Ready != 0 || s.AppID != "") && !plists.UsesAppAttest(s.Name):
		return usagef("--appattest-register, --appattest-ready and --app-id go with --provider appattest, appattest-sim or auto")
	case s.Name != "auto" && s.Name != "devicecheck" && s.Name != "appattest" && s.Name != "appattest-sim" && s.Name != "dev":
		return usagef("unknown provider %q; want one of %s", s.Name, Names)
	case (s.Name == "appattest" || s.Name == "appattest-sim") && s.Register == "" && serving:
		return usagef("--provider %s needs --appattest-register URL: the server its key is registered with", s.Name)
	case s.Name == "appattest-sim" && s.AppID == "":
		return usagef("--provider appattest-sim needs --app-id TEAMID.bundle.id")
	case s.Register != "":
		if err := plists.CheckAppAttestRegister(s.Register); err != nil {
			return usagef("--appattest-register: %v", err)
		}
	}
	return nil
}

// UsesAppAttest reports whether the spec runs App Attest here:
// appattest and appattest-sim, and auto on macOS with a registration URL.
func (s Spec) UsesAppAttest() bool {
	return s.Name == "appattest" || s.Name == "appattest-sim" || s.Name == "auto" && s.Register != "" && runtime.GOOS == "darwin"
}

// New returns the provider the spec names, started where it needs a
// start. "auto" is App Attest on macOS with a registration URL, else
// DeviceCheck on macOS, else the development provider, after warn is told
// so. Close it with Close.
func New(s Spec, logger *slog.Logger, warn func(string)) (provider.Provider, error) {
	if err := s.Check(true); err != nil {
		return nil, err
	}
	if s.UsesAppAttest() {
		return appAttest(s, logger)
	}
	dev := provider.Dev{Latency: s.DevLatency}
	switch {
	case s.Name == "dev":
		return dev, nil
	case s.Name == "devicecheck" || s.Name == "auto" && runtime.GOOS == "darwin":
		p, err := darwin.NewDeviceCheck(darwin.DeviceCheckOptions{})
		if err != nil {
			return nil, Hint(err)
		}
		return p, nil
	}
	warn(fmt.Sprintf("DeviceCheck needs macOS (this is %s); using the development provider, whose tokens are never valid in production", runtime.GOOS))
	return dev, nil
}

// ForDaemon returns the provider the daemon serves. DeviceCheck
// (devicecheck, or auto on macOS without a registration URL) comes as
// daemon.DeviceCheck makes it, and App Attest with it as its fallback,
// both started only once the daemon has its socket; the development
// provider needs no start.
func ForDaemon(s Spec, logger *slog.Logger, warn func(string)) (provider.Provider, error) {
	if err := s.Check(true); err != nil {
		return nil, err
	}
	if s.Name == "devicecheck" || s.Name == "auto" && runtime.GOOS == "darwin" && s.Register == "" {
		return daemon.DeviceCheck(logger), nil
	}
	return New(s, logger, warn)
}

// appAttest returns the App Attest provider of the spec: the simulator,
// or Apple's with the key id in the Keychain item of this helper's
// LaunchAgent label (else its bundle id).
func appAttest(s Spec, logger *slog.Logger) (provider.Provider, error) {
	if s.Name == "appattest-sim" {
		return appattestsim.New(appattestsim.Config{AppID: s.AppID, Server: s.Register, Ready: s.Ready,
			Latency: s.DevLatency, Logger: logger.With("provider", appattestsim.Name)})
	}
	return daemon.AppAttest(daemon.AppAttestConfig{Server: s.Register, Ready: s.Ready, Logger: logger,
		KeychainService: darwin.KeychainService(s.AgentLabel, SelfIdentity(logger).BundleID)})
}

// ProbeAppAttest returns what attestd probe measures App Attest with:
// Apple's or the simulator, and the registration server when given.
func ProbeAppAttest(s Spec, timeout time.Duration) (*probe.AppAttestConfig, error) {
	if err := s.Check(false); err != nil {
		return nil, err
	}
	cfg := &probe.AppAttestConfig{Start: func() (appattest.Service, error) {
		return darwin.NewAppAttest(darwin.AppAttestOptions{Timeout: timeout})
	}}
	if s.Name == "appattest-sim" {
		svc, err := appattestsim.NewService(s.AppID, "", s.DevLatency)
		cfg.Start = func() (appattest.Service, error) { return svc, err }
	}
	if s.Register != "" {
		cfg.Register = &appattest.Client{BaseURL: s.Register}
	}
	return cfg, nil
}

// Hint gives a provider's start failure a hint when it carries none.
func Hint(err error) error {
	switch {
	case hint.Of(err) != "":
		return err
	case errors.Is(err, darwin.ErrUnsupported) || errors.Is(err, provider.ErrUnsupported):
		return hint.Wrap(err, provider.UnsupportedHint)
	}
	return hint.Wrap(err, provider.DoctorHint)
}

// Close stops a provider's background work (App Attest's).
func Close(p provider.Provider) {
	if c, ok := p.(io.Closer); ok {
		c.Close()
	}
}

// SelfIdentity returns the bundle and team this executable is signed as,
// for the header's b and m: on macOS only, and empty (with a warning in
// the log) when the signature cannot be read.
func SelfIdentity(logger *slog.Logger) darwin.Identity {
	if runtime.GOOS != "darwin" {
		return darwin.Identity{}
	}
	id, err := darwin.SelfIdentity()
	if err != nil {
		logger.Warn("cannot read own signing identity; header b and m stay empty", "err", err)
	}
	return id
}
