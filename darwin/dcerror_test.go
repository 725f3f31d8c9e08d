package darwin

import (
	"errors"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

func TestDCErrorMapping(t *testing.T) {
	tests := []struct {
		domain, desc string
		code         int64
		wantName     string
		wantReason   string
		wantDC       bool
		wantHint     bool
		wantMsg      string // substring of Error()
	}{
		{DCErrorDomain, "failed", 0, "unknownSystemFailure", provider.ReasonProviderError, true, true,
			"DeviceCheck: unknownSystemFailure (com.apple.devicecheck.error code 0): failed"},
		{DCErrorDomain, "not here", 1, "featureUnsupported", provider.ReasonUnsupported, true, true,
			"featureUnsupported (com.apple.devicecheck.error code 1): not here"},
		{DCErrorDomain, "x", 2, "invalidInput", provider.ReasonProviderError, true, true, "invalidInput"},
		{DCErrorDomain, "x", 3, "invalidKey", provider.ReasonProviderError, true, true, "invalidKey"},
		{DCErrorDomain, "x", 4, "serverUnavailable", provider.ReasonProviderError, true, true, "serverUnavailable"},
		{DCErrorDomain, "new", 9, "", provider.ReasonProviderError, true, false,
			"unknown DeviceCheck error (com.apple.devicecheck.error code 9): new"},
		{"NSCocoaErrorDomain", "XPC", 4097, "", provider.ReasonProviderError, false, false,
			"DeviceCheck: NSCocoaErrorDomain code 4097: XPC"},
		{"NSCocoaErrorDomain", "", 3, "", provider.ReasonProviderError, false, false,
			"DeviceCheck: NSCocoaErrorDomain code 3"},
	}
	for _, tt := range tests {
		t.Run(tt.domain+"/"+tt.wantName, func(t *testing.T) {
			e := NewDCError(tt.domain, tt.code, tt.desc)
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
			if hint := hint.Of(err); (hint != "") != tt.wantHint {
				t.Errorf("HintOf = %q, want a hint: %v", hint, tt.wantHint)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.wantMsg)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatal("no *provider.Error in the chain")
			}
			var de *DCError
			if !errors.As(err, &de) || de.Domain != tt.domain || de.Code != tt.code || de.Description != tt.desc {
				t.Errorf("errors.As *DCError = %+v", de)
			}
			if tt.code == DCErrorFeatureUnsupported && tt.domain == DCErrorDomain && !strings.Contains(pe.Msg, "featureUnsupported") {
				t.Errorf("Msg = %q does not name the code", pe.Msg)
			}
		})
	}
}

func TestDCErrorCodesMatchHeader(t *testing.T) {
	// DCError.h: unknownSystemFailure, featureUnsupported, invalidInput,
	// invalidKey, serverUnavailable, in that order from 0.
	want := []string{"unknownSystemFailure", "featureUnsupported", "invalidInput", "invalidKey", "serverUnavailable"}
	if len(dcCodes) != len(want) {
		t.Fatalf("%d codes, want %d", len(dcCodes), len(want))
	}
	for i, name := range want {
		if got := dcCodes[int64(i)].name; got != name {
			t.Errorf("code %d = %q, want %q", i, got, name)
		}
	}
}
