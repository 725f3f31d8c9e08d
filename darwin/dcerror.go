package darwin

import (
	"fmt"

	"github.com/attestd/attestd/bridge/provider"
)

// DCErrorDomain is DeviceCheck's NSError domain (DCErrorDomain in
// DeviceCheck/DCError.h).
const DCErrorDomain = "com.apple.devicecheck.error"

// DeviceCheck's error codes, the DCError enum in DeviceCheck/DCError.h.
const (
	DCErrorUnknownSystemFailure = 0
	DCErrorFeatureUnsupported   = 1
	DCErrorInvalidInput         = 2
	DCErrorInvalidKey           = 3
	DCErrorServerUnavailable    = 4
)

// dcCodes names each DCError code as Apple's Swift API spells it and says
// what to do about it.
var dcCodes = map[int64]struct{ name, hint string }{
	DCErrorUnknownSystemFailure: {"unknownSystemFailure",
		"a transient DeviceCheck failure; it is retried. If it persists, check that the helper runs as a Developer-ID-signed bundle in the user's Aqua session"},
	DCErrorFeatureUnsupported: {"featureUnsupported",
		"DeviceCheck is not available on this Mac or macOS version; " + provider.MacOSRequirement},
	DCErrorInvalidInput: {"invalidInput",
		"DeviceCheck rejected the request's input; report this as a bug in attestd"},
	DCErrorInvalidKey: {"invalidKey",
		"DeviceCheck rejected the app's identity: sign the helper bundle with a Developer ID Application certificate of your team"},
	DCErrorServerUnavailable: {"serverUnavailable",
		"Apple's DeviceCheck service could not be reached; check the network connection; it is retried"},
}

// DCError is the NSError that DeviceCheck passed to the completion handler
// of generateTokenWithCompletionHandler:. Its chain holds a
// *provider.Error with Apple's code when the domain is DCErrorDomain.
type DCError struct {
	Domain      string // NSError domain
	Code        int64  // NSError code
	Description string // NSError localizedDescription
	err         *provider.Error
}

// CodeName returns Apple's name for the code ("invalidKey"), or "" when
// the domain is not DeviceCheck's or the code is not one Apple documents.
func (e *DCError) CodeName() string {
	if e.Domain != DCErrorDomain {
		return ""
	}
	return dcCodes[e.Code].name
}

func (e *DCError) Error() string { return e.err.Error() }

// Unwrap returns the *provider.Error that carries the reason and code for
// clients.
func (e *DCError) Unwrap() error { return e.err }

// NewDCError maps an NSError's domain, code and localized description to a
// *DCError. The native layer makes one from the completion handler's
// NSError; tests use it to stand in for DeviceCheck.
func NewDCError(domain string, code int64, description string) *DCError {
	e := &DCError{Domain: domain, Code: code, Description: description}
	pe := &provider.Error{Reason: provider.ReasonProviderError}
	what := fmt.Sprintf("%s code %d", domain, code)
	if domain == DCErrorDomain {
		pe.DCCode, pe.HasDCCode = int(code), true
		if c, ok := dcCodes[code]; ok {
			what = fmt.Sprintf("%s (%s)", c.name, what)
			pe.HintText = c.hint
		} else {
			what = fmt.Sprintf("unknown DeviceCheck error (%s)", what)
		}
		if code == DCErrorFeatureUnsupported {
			pe.Reason = provider.ReasonUnsupported
		}
	}
	pe.Msg = "DeviceCheck: " + what
	if description != "" {
		pe.Msg += ": " + description
	}
	e.err = pe
	return e
}
