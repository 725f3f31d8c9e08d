package darwin

import (
	"context"
	"errors"
	"fmt"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
)

// dcNative is the seam between the DeviceCheck provider's logic and the
// Apple calls; deviceCheckNative implements it with purego on darwin and
// tests implement it with channels.
type dcNative interface {
	guiChecker
	// supported loads DeviceCheck and returns DCDevice.isSupported. It
	// is only called after guiSession reported true.
	supported() (bool, error)
	// request starts one generateTokenWithCompletionHandler: call and
	// returns without waiting for it. Unless it returns an error, Apple
	// calls done later, from any thread, normally once, with the token or
	// the error and where the handler ran.
	request(done func(dcResult)) error
}

// checkDeviceCheck reports whether tokens can be requested: nil, or an
// error chain with provider.ErrNoGUISession or provider.ErrUnsupported. It
// never asks DeviceCheck anything before the GUI session check passed.
func checkDeviceCheck(n dcNative) error {
	if err := checkGUI(n); err != nil {
		return err
	}
	supported, err := n.supported()
	if err != nil {
		return err
	}
	if !supported {
		return errNotSupported
	}
	return nil
}

// errNotSupported is DCDevice.isSupported reporting false.
var errNotSupported = &provider.Error{
	Reason:   provider.ReasonUnsupported,
	Msg:      "DeviceCheck reports this Mac as unsupported (DCDevice.isSupported is false)",
	HintText: provider.UnsupportedHint,
	Err:      provider.ErrUnsupported,
}

// guiChecker is the GUI-session check every native seam starts with.
type guiChecker interface {
	// guiSession reports whether the caller's security session has
	// graphic access (Security's SessionGetInfo).
	guiSession() (bool, error)
}

// checkGUI returns nil when the session has graphic access,
// provider.ErrNoGUISession when it has none, and an error with the reason
// no_gui_session when SessionGetInfo fails.
func checkGUI(n guiChecker) error {
	ok, err := n.guiSession()
	if err != nil {
		return &provider.Error{
			Reason:   provider.ReasonNoGUISession,
			Msg:      "cannot tell whether this process has a GUI login session",
			HintText: provider.NoGUISessionHint,
			Err:      err,
		}
	}
	if !ok {
		return provider.ErrNoGUISession
	}
	return nil
}

// supportedVia is DeviceCheckSupported on top of n.
func supportedVia(n dcNative) (bool, error) {
	if err := checkGUI(n); err != nil {
		return false, err
	}
	return n.supported()
}

// deviceCheck is the DeviceCheck provider: serialized calls with a timeout
// on top of a dcNative.
type deviceCheck struct {
	native dcNative
	// calls runs one generateToken request at a time.
	calls *serialCalls
	// observe, when set, is told where each completion handler ran.
	observe func(Completion)
}

var _ provider.Provider = (*deviceCheck)(nil)

func newDeviceCheckWith(n dcNative, opts DeviceCheckOptions) (*deviceCheck, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("devicecheck: negative timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if err := checkDeviceCheck(n); err != nil {
		return nil, err
	}
	return &deviceCheck{native: n, calls: newSerialCalls("devicecheck", "DeviceCheck", opts.Timeout),
		observe: opts.OnCompletion}, nil
}

// Name implements provider.Provider: the kind of its tokens, "dc".
func (d *deviceCheck) Name() string { return header.KindDeviceCheck }

// dcResult is what the completion handler delivers.
type dcResult struct {
	token []byte
	err   *DCError
	where Completion
}

// Generate implements provider.Provider: one generateToken call, bounded by
// ctx and the provider's timeout (serialCalls).
func (d *deviceCheck) Generate(ctx context.Context) (provider.Answer, error) {
	tok, err := d.token(ctx)
	if err != nil {
		return provider.Answer{}, err
	}
	return provider.Answer{Kind: header.KindDeviceCheck, Token: tok}, nil
}

// token makes one generateToken call.
func (d *deviceCheck) token(ctx context.Context) ([]byte, error) {
	r, err := await(ctx, d.calls, func(deliver func(dcResult)) error {
		return d.native.request(func(r dcResult) {
			if d.observe != nil {
				d.observe(r.where) // every completion, even a late or second one
			}
			deliver(r)
		})
	})
	if err != nil {
		return nil, err
	}
	return r.value()
}

// errNoToken is a completion with neither a token nor an error.
var errNoToken = errors.New("DeviceCheck returned neither a token nor an error")

func (r dcResult) value() ([]byte, error) {
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.token) == 0:
		return nil, &provider.Error{Reason: provider.ReasonProviderError, Err: errNoToken}
	}
	return r.token, nil
}
