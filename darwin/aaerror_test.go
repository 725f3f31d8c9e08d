package darwin

import (
	"errors"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

func TestAppAttestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		domain, desc string
		code         int64
		wantName     string
		wantReason   string
		wantDC       bool
		wantHint     string // substring; "" for no hint
		wantIs       []error
		wantMsg      string // substring of Error()
	}{
		{DCErrorDomain, "failed", 0, "unknownSystemFailure", provider.ReasonProviderError, true, "try again later", nil,
			"appattest attestKey: unknownSystemFailure (com.apple.devicecheck.error code 0): failed"},
		{DCErrorDomain, "not here", 1, "featureUnsupported", provider.ReasonUnsupported, true, "macOS 27",
			[]error{provider.ErrUnsupported}, "featureUnsupported (com.apple.devicecheck.error code 1): not here"},
		{DCErrorDomain, "", 2, "invalidInput", provider.ReasonProviderError, true, "bug", nil,
			"appattest attestKey: invalidInput (com.apple.devicecheck.error code 2)"},
		{DCErrorDomain, "gone", 3, "invalidKey", provider.ReasonProviderError, true, "new key",
			[]error{ErrInvalidKey}, "invalidKey (com.apple.devicecheck.error code 3): gone"},
		{DCErrorDomain, "offline", 4, "serverUnavailable", provider.ReasonProviderError, true, "same key",
			[]error{ErrServerUnavailable}, "serverUnavailable (com.apple.devicecheck.error code 4): offline"},
		// macOS 27's code for a key policy the Mac cannot enforce: its value
		// is not public, so any unknown code gets this treatment.
		{DCErrorDomain, "policy", 5, "", provider.ReasonProviderError, true, "Full Security",
			[]error{ErrUnknownDCErrorCode}, "unknown DeviceCheck error (com.apple.devicecheck.error code 5): policy"},
		{DCErrorDomain, "", -1, "", provider.ReasonProviderError, true, "report the code",
			[]error{ErrUnknownDCErrorCode}, "unknown DeviceCheck error (com.apple.devicecheck.error code -1)"},
		{"NSCocoaErrorDomain", "XPC", 4097, "", provider.ReasonProviderError, false, "", nil,
			"appattest attestKey: NSCocoaErrorDomain code 4097: XPC"},
		{"NSCocoaErrorDomain", "", 3, "", provider.ReasonProviderError, false, "", nil,
			"appattest attestKey: NSCocoaErrorDomain code 3"},
	}
	sentinels := []error{ErrInvalidKey, ErrServerUnavailable, ErrUnknownDCErrorCode, provider.ErrUnsupported}
	for _, tt := range tests {
		t.Run(tt.domain+"/"+tt.wantName+"/"+tt.desc, func(t *testing.T) {
			t.Parallel()
			e := NewAppAttestError(OpAttestKey, tt.domain, tt.code, tt.desc)
			var err error = e
			if got := e.CodeName(); got != tt.wantName {
				t.Errorf("CodeName = %q, want %q", got, tt.wantName)
			}
			if got := provider.ReasonOf(err); got != tt.wantReason {
				t.Errorf("ReasonOf = %q, want %q", got, tt.wantReason)
			}
			code, ok := provider.DCErrorCodeOf(err)
			if ok != tt.wantDC || (ok && int64(code) != tt.code) {
				t.Errorf("DCErrorCodeOf = %d, %v; want %d, %v", code, ok, tt.code, tt.wantDC)
			}
			h := hint.Of(err)
			if tt.wantHint == "" && h != "" || !strings.Contains(h, tt.wantHint) {
				t.Errorf("hint = %q, want one containing %q", h, tt.wantHint)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.wantMsg)
			}
			for _, s := range sentinels {
				want := false
				for _, w := range tt.wantIs {
					want = want || w == s
				}
				if got := errors.Is(err, s); got != want {
					t.Errorf("errors.Is(err, %q) = %v, want %v", s, got, want)
				}
			}
			var ae *AppAttestError
			if !errors.As(err, &ae) || ae.Op != OpAttestKey || ae.Domain != tt.domain || ae.Code != tt.code || ae.Description != tt.desc {
				t.Errorf("errors.As *AppAttestError = %+v", ae)
			}
		})
	}
}

// Every code Apple documents has a hint of its own, and none is
// DeviceCheck's: the same code means something else for App Attest.
func TestAppAttestHintsCoverCodes(t *testing.T) {
	t.Parallel()
	if len(aaHints) != len(dcCodes) {
		t.Fatalf("%d App Attest hints for %d DCError codes", len(aaHints), len(dcCodes))
	}
	for code, c := range dcCodes {
		h := aaHints[code]
		if h == "" {
			t.Errorf("no App Attest hint for %s", c.name)
		}
		if h == c.hint {
			t.Errorf("%s: the App Attest hint is DeviceCheck's", c.name)
		}
	}
}
