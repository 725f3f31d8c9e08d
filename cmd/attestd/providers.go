package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// providerNames lists the values of --provider.
const providerNames = "auto|devicecheck|dev"

// newProvider returns the token provider named by --provider. "auto" is
// DeviceCheck on macOS and the development provider elsewhere, with one
// warning line on stderr.
func newProvider(name string, s *stdio) (provider.Provider, error) {
	switch name {
	case "dev":
		return provider.Dev{}, nil
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
		return provider.Dev{}, nil
	}
	return nil, usagef("unknown provider %q; want one of %s", name, providerNames)
}

func providerHint(err error) error {
	if h := provider.HintOf(err); h != "" {
		return withHint(err, "%s", h)
	}
	if errors.Is(err, darwin.ErrUnsupported) || errors.Is(err, provider.ErrUnsupported) {
		return withHint(err, "DeviceCheck works only on macOS 12 or later; use --provider dev for development")
	}
	return withHint(err, "run \"attestd doctor\" to see which check fails")
}
