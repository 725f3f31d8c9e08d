package darwin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// AppAttestService is Apple's App Attest service (DCAppAttestService in
// DeviceCheck.framework) as the App Attest provider uses it. NewAppAttest
// returns the real one on macOS; code built on top of it takes the
// interface, so its tests pass a fake on any OS.
//
// Each method that asks Apple is bounded by its ctx and the service's
// timeout (AppAttestOptions.Timeout), and at most one request of each
// method is outstanding at a time: a call that Apple never answers keeps
// later calls of that method waiting, up to their own deadlines, instead
// of piling them onto Apple, while the other two methods go on. Apple's
// failures are *AppAttestError values: errors.Is(err, ErrInvalidKey) means
// the key is gone for good (make a new key and register it again),
// errors.Is(err, ErrServerUnavailable) that Apple's server could not be
// reached (try again later with the same key and clientDataHash). A
// timeout has provider.ReasonTimeout and wraps context.DeadlineExceeded.
type AppAttestService interface {
	// Supported reports DCAppAttestService.isSupported, the only
	// authority on whether this Mac and this app can use App Attest. It
	// fails with a provider.ErrNoGUISession chain, without touching
	// DeviceCheck, when the process has no GUI login session.
	Supported() (bool, error)
	// GenerateKey makes a new key pair in the Secure Enclave and returns
	// its key id as Apple gives it: standard base64 of 32 bytes (see
	// ParseKeyID). Nothing else refers to the key, so keep the id
	// (KeyStore). Every call makes another key.
	GenerateKey(ctx context.Context) (keyID string, err error)
	// AttestKey asks Apple's server to attest the key, binding
	// clientDataHash (32 bytes: SHA-256 of the registration challenge)
	// into the certificate's nonce, and returns the attestation object
	// (CBOR) to send to the registration server. A key can be attested
	// again until it has made its first assertion.
	AttestKey(ctx context.Context, keyID string, clientDataHash []byte) (attestation []byte, err error)
	// GenerateAssertion signs clientDataHash (32 bytes) with the key in
	// the Secure Enclave, without the network, and returns the assertion
	// object (CBOR).
	GenerateAssertion(ctx context.Context, keyID string, clientDataHash []byte) (assertion []byte, err error)
}

// AppAttestOp names one DCAppAttestService method, in errors and
// completion reports.
type AppAttestOp string

// The App Attest methods.
const (
	OpGenerateKey       AppAttestOp = "generateKey"       // generateKeyWithCompletionHandler:
	OpAttestKey         AppAttestOp = "attestKey"         // attestKey:clientDataHash:completionHandler:
	OpGenerateAssertion AppAttestOp = "generateAssertion" // generateAssertion:clientDataHash:completionHandler:
)

// AppAttestOptions configure NewAppAttest.
type AppAttestOptions struct {
	// Timeout bounds each call to Apple; zero means DefaultTimeout
	// (10 s). A call Apple answers later than this fails with a timeout;
	// the late answer is dropped.
	Timeout time.Duration
	// OnCompletion, when set, is called with the method and where Apple
	// ran each completion handler, on Apple's thread, after the result
	// has been copied; it must return quickly. For attestd selftest, as
	// DeviceCheckOptions.OnCompletion.
	OnCompletion func(op AppAttestOp, where Completion)
}

// AppAttestRequirement says what App Attest on a Mac needs, for hints.
const AppAttestRequirement = "App Attest on the Mac needs macOS 27 or later, and a helper bundle whose " +
	"provisioning profile grants com.apple.developer.devicecheck.appattest-environment"

// NewAppAttest returns Apple's App Attest service. It fails with a
// provider.ErrNoGUISession chain without a GUI login session (DeviceCheck
// would trap the process), and with a provider.ErrUnsupported chain when
// this macOS has no DCAppAttestService, lacks one of its methods, or
// DCAppAttestService.isSupported is false; off macOS it returns an error
// wrapping ErrUnsupported.
func NewAppAttest(opts AppAttestOptions) (AppAttestService, error) { return newAppAttest(opts) }

// AppAttestSupported reports DCAppAttestService.isSupported. It checks
// the GUI session first and fails with a provider.ErrNoGUISession chain,
// without touching DeviceCheck, when there is none; a macOS without the
// class or its methods gives a provider.ErrUnsupported chain.
func AppAttestSupported() (bool, error) { return appAttestSupported() }

// KeyIDSize is the size of an App Attest key id: SHA-256 of the key's
// public key.
const KeyIDSize = sha256.Size

// ClientDataHashSize is the size of the clientDataHash attestd passes to
// App Attest: always a SHA-256 digest. (Apple accepts other sizes; attestd
// never needs them.)
const ClientDataHashSize = sha256.Size

// Errors for arguments App Attest would refuse.
var (
	ErrBadKeyID          = errors.New("not an App Attest key id (standard base64 of 32 bytes, as generateKey returns it)")
	ErrBadClientDataHash = fmt.Errorf("clientDataHash must be a SHA-256 digest (%d bytes)", ClientDataHashSize)
)

// ParseKeyID returns the 32 bytes of a key id in the one form App Attest
// gives it: standard base64 with padding, nothing else (not even the line
// breaks a base64 decoder skips). Anything else wraps ErrBadKeyID.
func ParseKeyID(keyID string) ([KeyIDSize]byte, error) {
	var id [KeyIDSize]byte
	raw, err := base64.StdEncoding.Strict().DecodeString(keyID)
	if err != nil || len(raw) != KeyIDSize {
		return [KeyIDSize]byte{}, fmt.Errorf("%w: %q", ErrBadKeyID, keyID)
	}
	copy(id[:], raw)
	if FormatKeyID(id) != keyID {
		return [KeyIDSize]byte{}, fmt.Errorf("%w: %q", ErrBadKeyID, keyID)
	}
	return id, nil
}

// FormatKeyID returns the key id App Attest would give for id.
func FormatKeyID(id [KeyIDSize]byte) string { return base64.StdEncoding.EncodeToString(id[:]) }

// aaNative is the seam between the App Attest logic and the Apple calls;
// appAttestNative implements it with purego on darwin and tests implement
// it with channels.
type aaNative interface {
	guiChecker
	// supported loads DCAppAttestService and returns isSupported. It is
	// only called after guiSession reported true.
	supported() (bool, error)
	// Each request starts one call and returns without waiting for it.
	// Unless it returns an error, Apple calls done later, from any
	// thread, normally once. They are only called on a service that
	// supported() loaded.
	generateKey(done func(aaResult)) error
	attestKey(keyID string, clientDataHash []byte, done func(aaResult)) error
	generateAssertion(keyID string, clientDataHash []byte, done func(aaResult)) error
}

// aaResult is what a completion handler delivers: the key id
// (generateKey) or the object's bytes, or the error, and where it ran.
type aaResult struct {
	keyID string
	data  []byte
	err   *AppAttestError
	where Completion
}

// appAttest is the AppAttestService on top of an aaNative.
type appAttest struct {
	native aaNative
	// calls holds one serialCalls per method.
	calls   map[AppAttestOp]*serialCalls
	observe func(AppAttestOp, Completion)
}

var _ AppAttestService = (*appAttest)(nil)

func newAppAttestWith(n aaNative, opts AppAttestOptions) (*appAttest, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("appattest: negative timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if err := checkAppAttest(n); err != nil {
		return nil, err
	}
	a := &appAttest{native: n, calls: map[AppAttestOp]*serialCalls{}, observe: opts.OnCompletion}
	for _, op := range []AppAttestOp{OpGenerateKey, OpAttestKey, OpGenerateAssertion} {
		a.calls[op] = newSerialCalls("appattest "+string(op), "App Attest", opts.Timeout)
	}
	return a, nil
}

// checkAppAttest reports whether App Attest can be used: nil, or an error
// chain with provider.ErrNoGUISession or provider.ErrUnsupported. It never
// touches DeviceCheck before the GUI session check passed.
func checkAppAttest(n aaNative) error {
	ok, err := appAttestSupportedVia(n)
	if err != nil {
		return err
	}
	if !ok {
		return errAppAttestNotSupported
	}
	return nil
}

// appAttestSupportedVia is AppAttestSupported on top of n.
func appAttestSupportedVia(n aaNative) (bool, error) {
	if err := checkGUI(n); err != nil {
		return false, err
	}
	return n.supported()
}

// errAppAttestNotSupported is DCAppAttestService.isSupported reporting
// false: every Mac up to macOS 26 does.
var errAppAttestNotSupported = &provider.Error{
	Reason:   provider.ReasonUnsupported,
	Msg:      "App Attest reports this Mac or app as unsupported (DCAppAttestService.isSupported is false)",
	HintText: AppAttestRequirement + "; use DeviceCheck meanwhile",
	Err:      provider.ErrUnsupported,
}

// errAppAttestMissing is a macOS whose DeviceCheck lacks what (the class,
// the shared instance, or one of its methods).
func errAppAttestMissing(what string) error {
	return &provider.Error{
		Reason:   provider.ReasonUnsupported,
		Msg:      "App Attest is not available on this macOS: " + what,
		HintText: AppAttestRequirement,
		Err:      provider.ErrUnsupported,
	}
}

// Supported implements AppAttestService.
func (a *appAttest) Supported() (bool, error) { return appAttestSupportedVia(a.native) }

// GenerateKey implements AppAttestService.
func (a *appAttest) GenerateKey(ctx context.Context) (string, error) {
	r, err := a.call(ctx, OpGenerateKey, a.native.generateKey)
	if err != nil {
		return "", err
	}
	if _, err := ParseKeyID(r.keyID); err != nil {
		return "", &provider.Error{Reason: provider.ReasonProviderError,
			Msg: "appattest generateKey: App Attest returned a key id attestd cannot carry", Err: err}
	}
	return r.keyID, nil
}

// AttestKey implements AppAttestService.
func (a *appAttest) AttestKey(ctx context.Context, keyID string, clientDataHash []byte) ([]byte, error) {
	return a.signingCall(ctx, OpAttestKey, a.native.attestKey, keyID, clientDataHash)
}

// GenerateAssertion implements AppAttestService.
func (a *appAttest) GenerateAssertion(ctx context.Context, keyID string, clientDataHash []byte) ([]byte, error) {
	return a.signingCall(ctx, OpGenerateAssertion, a.native.generateAssertion, keyID, clientDataHash)
}

// signingCall checks the arguments of attestKey or generateAssertion,
// makes the call, and returns the object it answered with.
func (a *appAttest) signingCall(ctx context.Context, op AppAttestOp,
	request func(string, []byte, func(aaResult)) error, keyID string, clientDataHash []byte) ([]byte, error) {
	if err := checkSigningArgs(keyID, clientDataHash); err != nil {
		return nil, fmt.Errorf("appattest %s: %w", op, err)
	}
	hash := append([]byte(nil), clientDataHash...) // the caller may reuse its slice
	r, err := a.call(ctx, op, func(done func(aaResult)) error { return request(keyID, hash, done) })
	if err != nil {
		return nil, err
	}
	if len(r.data) == 0 {
		return nil, &provider.Error{Reason: provider.ReasonProviderError, Msg: "appattest " + string(op), Err: errNoResult}
	}
	return r.data, nil
}

// errNoResult is a completion with neither a result nor an error.
var errNoResult = errors.New("App Attest returned neither a result nor an error")

// checkSigningArgs refuses what App Attest would refuse, or attestd never
// means to pass: a key id not in Apple's form, a clientDataHash that is
// not a SHA-256 digest.
func checkSigningArgs(keyID string, clientDataHash []byte) error {
	if _, err := ParseKeyID(keyID); err != nil {
		return err
	}
	if len(clientDataHash) != ClientDataHashSize {
		return fmt.Errorf("%w, got %d", ErrBadClientDataHash, len(clientDataHash))
	}
	return nil
}

// call runs one request of op on its serialCalls, reports every
// completion to the observer, and returns Apple's error as the error.
func (a *appAttest) call(ctx context.Context, op AppAttestOp, request func(done func(aaResult)) error) (aaResult, error) {
	r, err := await(ctx, a.calls[op], func(deliver func(aaResult)) error {
		return request(func(r aaResult) {
			if a.observe != nil {
				a.observe(op, r.where) // every completion, even a late or second one
			}
			deliver(r)
		})
	})
	if err != nil {
		return aaResult{}, err
	}
	if r.err != nil {
		return aaResult{}, r.err
	}
	return r, nil
}
