package darwin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
)

// dcNative is the seam between the DeviceCheck provider's logic and the
// Apple calls; deviceCheckNative implements it with purego on darwin and
// tests implement it with channels.
type dcNative interface {
	// guiSession reports whether the caller's security session has
	// graphic access (Security's SessionGetInfo).
	guiSession() (bool, error)
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

// checkGUI returns nil when the session has graphic access,
// provider.ErrNoGUISession when it has none, and an error with the reason
// no_gui_session when SessionGetInfo fails.
func checkGUI(n dcNative) error {
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
	native  dcNative
	timeout time.Duration
	// slot holds a value while an Apple request is outstanding. It is
	// emptied when Apple calls the completion handler, not when Generate
	// returns.
	slot chan struct{}
	// timer returns a channel that fires once the provider's timeout has
	// passed, and a func that stops it; tests replace it.
	timer func(time.Duration) (<-chan time.Time, func())
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
	return &deviceCheck{native: n, timeout: opts.Timeout, slot: make(chan struct{}, 1), timer: realTimer,
		observe: opts.OnCompletion}, nil
}

// Kind implements provider.Provider.
func (d *deviceCheck) Kind() string { return header.KindDeviceCheck }

// dcResult is what the completion handler delivers.
type dcResult struct {
	token []byte
	err   *DCError
	where Completion
}

// Generate implements provider.Provider: one generateToken call, bounded by
// ctx and the provider's timeout.
func (d *deviceCheck) Generate(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devicecheck: not asking DeviceCheck: %w", err)
	}
	expired, stop := d.timer(d.timeout)
	defer stop()

	select {
	case d.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("devicecheck: waiting for the previous DeviceCheck request: %w", ctx.Err())
	case <-expired:
		return nil, d.timeoutErr("the previous DeviceCheck request is still outstanding")
	}

	// Room for one value: a completion that comes after Generate gave up
	// must never block Apple's thread.
	results := make(chan dcResult, 1)
	var once sync.Once
	done := func(r dcResult) {
		if d.observe != nil {
			d.observe(r.where)
		}
		once.Do(func() {
			results <- r
			<-d.slot
		})
	}
	if err := d.native.request(done); err != nil {
		<-d.slot
		return nil, err
	}

	var err error
	select {
	case r := <-results:
		return r.value()
	case <-ctx.Done():
		err = fmt.Errorf("devicecheck: no answer from DeviceCheck: %w", ctx.Err())
	case <-expired:
		err = d.timeoutErr("no answer from DeviceCheck")
	}
	select {
	case r := <-results: // arrived together with the deadline: use it
		return r.value()
	default:
		return nil, err
	}
}

// timeoutErr reports the provider's own timeout.
func (d *deviceCheck) timeoutErr(what string) error {
	return &provider.Error{
		Reason: provider.ReasonTimeout,
		Msg:    fmt.Sprintf("devicecheck: %s after %v", what, d.timeout),
		Err:    context.DeadlineExceeded,
	}
}

// realTimer is deviceCheck.timer outside tests.
func realTimer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
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
