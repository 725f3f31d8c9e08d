package daemon

import (
	"log/slog"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// DeviceCheck returns the DeviceCheck provider as the daemon runs it: a
// provider.Lazy that nothing has started yet. Run starts it once it has
// its listeners, and when it cannot start (another OS, no GUI session, an
// unsupported Mac) the daemon keeps serving and every request gets the
// reason and hint at once, instead of the daemon exiting and launchd
// starting it again on every connection. Each attempt's result is logged
// to logger (nil discards).
func DeviceCheck(logger *slog.Logger) *provider.Lazy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return provider.NewLazy(provider.LazyConfig{
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

// lazyOf returns the Lazy provider whose start attestation/status shows:
// p itself, or the fallback of an App Attest provider.
func lazyOf(p provider.Provider) *provider.Lazy {
	for range 2 {
		if l, ok := p.(*provider.Lazy); ok {
			return l
		}
		f, ok := p.(interface{ Fallback() provider.Provider })
		if !ok {
			return nil
		}
		p = f.Fallback()
	}
	return nil
}

// tokens is the pool as the server sees it. Its status also shows a
// provider that has not started: as the pool's last error, before any
// request has run into it, and counted in consecutiveFailures.
type tokens struct {
	*pool.Pool
	lazy *provider.Lazy // nil for a provider that needs no start
}

// Status returns the pool's status with the provider's start failure.
func (t tokens) Status() protocol.PoolStatus {
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
