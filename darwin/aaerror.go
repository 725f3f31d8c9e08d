package darwin

import (
	"errors"
	"fmt"

	"github.com/attestd/attestd/bridge/provider"
)

// Sentinels an *AppAttestError matches with errors.Is.
var (
	// ErrInvalidKey is DCErrorInvalidKey from App Attest: the key is no
	// longer usable (a reinstall, a restore to another Mac, a reset of
	// the Secure Enclave). Make a new key and register it again.
	ErrInvalidKey = errors.New("the App Attest key is invalid: make a new key and register it again")
	// ErrServerUnavailable is DCErrorServerUnavailable: attestKey could
	// not reach Apple's App Attest server. Try again later with the same
	// key and clientDataHash, which keeps the device's risk metric intact.
	ErrServerUnavailable = errors.New("Apple's App Attest server could not be reached: try again later with the same key")
	// ErrUnknownDCErrorCode is a DCError code this attestd does not know,
	// such as the one macOS 27 added for a key access-control policy the
	// Mac cannot enforce, whose value Apple has not published. The
	// *AppAttestError carries the number.
	ErrUnknownDCErrorCode = errors.New("a DeviceCheck error code attestd does not know")
)

// aaHints says what to do about each DCError code when App Attest, not
// DCDevice, returned it; the names are dcCodes'.
var aaHints = map[int64]string{
	DCErrorUnknownSystemFailure: "App Attest failed inside macOS; try again later, and if it persists, " +
		"run \"attestd selftest\" in the user's session",
	DCErrorFeatureUnsupported: AppAttestRequirement,
	DCErrorInvalidInput: "App Attest refused the key id or clientDataHash attestd passed; " +
		"report this as a bug in attestd",
	DCErrorInvalidKey: "the key was invalidated (a reinstall, a restore or a Secure Enclave reset does that): " +
		"attestd makes a new key and registers it again",
	DCErrorServerUnavailable: "Apple's App Attest server could not be reached; check the network connection; " +
		"attestd tries again later with the same key",
}

// unknownCodeHint is the hint of a DCError code attestd does not know.
const unknownCodeHint = "a newer macOS returned a DeviceCheck error code attestd does not know; macOS 27 added at " +
	"least one, for a key access-control policy the Mac cannot enforce: its App Attest keys require Full Security " +
	"mode and System Integrity Protection, so check both (Startup Security Utility; csrutil status), and report " +
	"the code with the macOS version"

// AppAttestError is the NSError App Attest passed to a completion
// handler. Its chain holds a *provider.Error with Apple's code
// (data.dcErrorCode on the wire), the reason unsupported for
// featureUnsupported and provider_error otherwise, and a hint. It matches
// ErrInvalidKey, ErrServerUnavailable, ErrUnknownDCErrorCode and, for
// featureUnsupported, provider.ErrUnsupported with errors.Is.
type AppAttestError struct {
	Op          AppAttestOp // the method that failed
	Domain      string      // NSError domain
	Code        int64       // NSError code
	Description string      // NSError localizedDescription
	err         *provider.Error
}

// NewAppAttestError maps the NSError a DCAppAttestService method returned
// to an *AppAttestError. The native layer makes one from the completion
// handler's NSError; tests use it to stand in for App Attest.
func NewAppAttestError(op AppAttestOp, domain string, code int64, description string) *AppAttestError {
	e := &AppAttestError{Op: op, Domain: domain, Code: code, Description: description}
	pe := &provider.Error{Reason: provider.ReasonProviderError}
	what := fmt.Sprintf("%s code %d", domain, code)
	if domain == DCErrorDomain {
		pe.DCCode, pe.HasDCCode = int(code), true
		if c, ok := dcCodes[code]; ok {
			what = fmt.Sprintf("%s (%s)", c.name, what)
			pe.HintText = aaHints[code]
		} else {
			what = fmt.Sprintf("unknown DeviceCheck error (%s)", what)
			pe.HintText = unknownCodeHint
		}
		if code == DCErrorFeatureUnsupported {
			pe.Reason = provider.ReasonUnsupported
		}
	}
	pe.Msg = fmt.Sprintf("appattest %s: %s", op, what)
	if description != "" {
		pe.Msg += ": " + description
	}
	e.err = pe
	return e
}

// CodeName returns Apple's name for the code ("invalidKey"), or "" when
// the domain is not DeviceCheck's or the code is not one Apple documents.
func (e *AppAttestError) CodeName() string {
	if e.Domain != DCErrorDomain {
		return ""
	}
	return dcCodes[e.Code].name
}

func (e *AppAttestError) Error() string { return e.err.Error() }

// Unwrap returns the *provider.Error that carries the reason, code and
// hint for clients.
func (e *AppAttestError) Unwrap() error { return e.err }

// Is reports whether the error is the one target names: ErrInvalidKey,
// ErrServerUnavailable, ErrUnknownDCErrorCode or provider.ErrUnsupported.
func (e *AppAttestError) Is(target error) bool {
	if e.Domain != DCErrorDomain {
		return false
	}
	switch target {
	case ErrInvalidKey:
		return e.Code == DCErrorInvalidKey
	case ErrServerUnavailable:
		return e.Code == DCErrorServerUnavailable
	case provider.ErrUnsupported:
		return e.Code == DCErrorFeatureUnsupported
	case ErrUnknownDCErrorCode:
		_, known := dcCodes[e.Code]
		return !known
	}
	return false
}
