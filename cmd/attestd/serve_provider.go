package main

import (
	"log/slog"
	"runtime"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// serveProvider returns the provider the daemon serves. DeviceCheck
// (--provider devicecheck, or auto on macOS) comes as a provider.Lazy that
// nothing has started yet: serve takes its socket first and starts it
// after, and when it cannot start (another OS, no GUI session, an
// unsupported Mac) the daemon keeps serving and every request gets the
// reason and hint at once, instead of the daemon exiting and launchd
// starting it again on every connection. The development provider needs
// no start and is returned as it is, with lazy nil.
func (f providerFlags) serveProvider(s *stdio, logger *slog.Logger) (prov provider.Provider, lazy *provider.Lazy, err error) {
	if *f.devLatency < 0 {
		return nil, nil, usagef("--dev-latency must not be negative")
	}
	switch name := *f.name; {
	case name == "devicecheck", name == "auto" && runtime.GOOS == "darwin":
		lazy = provider.NewLazy(provider.LazyConfig{
			Kind:  header.KindDeviceCheck,
			Name:  "DeviceCheck",
			Start: startDeviceCheck,
			OnStart: func(err error) {
				if err == nil {
					logger.Info("provider started", "provider", "devicecheck")
					return
				}
				logger.Warn("provider cannot start; answering every request with its reason",
					"provider", "devicecheck", "reason", provider.ReasonOf(err), "err", err, "hint", hint.Of(err))
			},
		})
		return lazy, lazy, nil
	}
	prov, err = f.newProvider(s)
	return prov, nil, err
}

// startDeviceCheck makes the DeviceCheck provider, giving its failure a
// hint when it has none, since clients see that hint in data.hint.
func startDeviceCheck() (provider.Provider, error) {
	p, err := darwin.NewDeviceCheck(darwin.DeviceCheckOptions{})
	if err != nil && hint.Of(err) == "" {
		advice := provider.DoctorHint
		if provider.ReasonOf(err) == provider.ReasonUnsupported {
			advice = provider.DeviceCheckNeedsMacOS + "; " + provider.UseDevProvider
		}
		err = &provider.Error{Reason: provider.ReasonOf(err), HintText: advice, Err: err}
	}
	return p, err
}

// serveTokens is the pool as the server sees it. Its status also shows a
// provider that has not started: as the pool's last error, before any
// request has run into it, and counted in consecutiveFailures.
type serveTokens struct {
	*pool.Pool
	lazy *provider.Lazy // nil for a provider that needs no start
}

// Status returns the pool's status with the provider's start failure.
func (t serveTokens) Status() protocol.PoolStatus {
	st := t.Pool.Status()
	if t.lazy == nil {
		return st
	}
	ls := t.lazy.State()
	if ls.Started || ls.Err == nil {
		return st
	}
	if st.LastError == nil || st.LastError.At.Before(ls.At) {
		st.LastError = &protocol.PoolFailure{Reason: provider.ReasonOf(ls.Err), Message: ls.Err.Error(), At: ls.At}
	}
	st.ConsecutiveFailures = max(st.ConsecutiveFailures, ls.Attempts)
	return st
}
