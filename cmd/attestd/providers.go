package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// providerNames lists the values of --provider.
const providerNames = "auto|devicecheck|dev"

// providerFlags are the flags that choose and tune the token provider.
type providerFlags struct {
	name       *string
	devLatency *time.Duration
}

// addProviderFlags defines --provider (defaulting to def) and
// --dev-latency on fs.
func addProviderFlags(fs *flag.FlagSet, def, usage string) providerFlags {
	return providerFlags{
		name:       fs.String("provider", def, usage),
		devLatency: fs.Duration("dev-latency", 0, "with the dev provider: make each token take this long, as DeviceCheck's few hundred milliseconds do (e.g. 300ms)"),
	}
}

// newProvider returns the token provider chosen by the flags. "auto" is
// DeviceCheck on macOS and the development provider elsewhere, with one
// warning line on stderr.
func (f providerFlags) newProvider(s *streams) (provider.Provider, error) {
	if *f.devLatency < 0 {
		return nil, usagef("--dev-latency must not be negative")
	}
	return newProvider(*f.name, s, provider.Dev{Latency: *f.devLatency})
}

// newProvider returns the provider called name; dev is the development
// provider to use for "dev" (and for "auto" off macOS).
func newProvider(name string, s *streams, dev provider.Dev) (provider.Provider, error) {
	switch name {
	case "dev":
		return dev, nil
	case "devicecheck":
		p, err := darwin.NewDeviceCheck(darwin.DeviceCheckOptions{})
		if err != nil {
			return nil, providerHint(err)
		}
		return p, nil
	case "auto":
		if runtime.GOOS == "darwin" {
			p, err := darwin.NewDeviceCheck(darwin.DeviceCheckOptions{})
			if err != nil {
				return nil, providerHint(err)
			}
			return p, nil
		}
		fmt.Fprintf(s.err, "attestd: warning: DeviceCheck needs macOS (this is %s); using the development provider, whose tokens are never valid in production\n", runtime.GOOS)
		return dev, nil
	}
	return nil, usagef("unknown provider %q; want one of %s", name, providerNames)
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
