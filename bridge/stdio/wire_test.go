package stdio

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/provider"
)

// TestAnswersOnTheWire pins the exact lines the bridge answers the
// app-server's attestation/generate with.
func TestAnswersOnTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", fmt.Errorf("token source: %w", context.DeadlineExceeded),
			`{"id":3,"error":{"code":-32000,"message":"attestation failed: token source: context deadline exceeded","data":{"reason":"timeout"}}}`},
		{"Apple's code, no hint sent", &provider.Error{Reason: provider.ReasonUnsupported, Msg: "DeviceCheck: featureUnsupported",
			HintText: "not sent", DCCode: 1, HasDCCode: true},
			`{"id":3,"error":{"code":-32000,"message":"attestation failed: DeviceCheck: featureUnsupported","data":{"dcErrorCode":1,"reason":"unsupported"}}}`},
		{"the daemon's error as it came", fmt.Errorf("daemon: %w", jsonrpc.NewError(jsonrpc.CodeAttestation, "attestation failed: x <y>",
			map[string]string{"reason": "provider_error", "hint": "h"})),
			`{"id":3,"error":{"code":-32000,"message":"attestation failed: x <y>","data":{"hint":"h","reason":"provider_error"}}}`},
		{"plain error", errors.New("boom"),
			`{"id":3,"error":{"code":-32000,"message":"attestation failed: boom","data":{"reason":"provider_error"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(jsonrpc.EncodeError(jsonrpc.IntID(3), attestationError(tc.err)))
			if got != tc.want+"\n" {
				t.Errorf("answer\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}
