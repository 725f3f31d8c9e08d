package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/protocol"
)

// TestAppAttestStatusOnTheWire pins what attestation/status adds for the
// App Attest providers: the kind last served, the count per kind, and the
// provider's state.
func TestAppAttestStatusOnTheWire(t *testing.T) {
	t.Parallel()
	code := 4
	st := protocol.PoolStatus{Provider: "appattest", LastKind: "aa", ServedByKind: map[string]uint64{"aa": 5, "dc": 2},
		AppAttest: &protocol.AppAttestStatus{State: protocol.AppAttestRegistered, Registered: true,
			KeyID: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Environment: "production", Server: "https://gate.example/a",
			Ahead: 1, Fallback: "dc", Counters: protocol.AppAttestCounters{KeysMade: 1, Registrations: 1, Checks: 2, Assertions: 5, AssertionFailures: 1, Fallbacks: 2},
			LastCheck: ptr(at), NextAttempt: ptr(at), LastError: &protocol.PoolFailure{Reason: "provider_error", Message: "timeout", DCErrorCode: &code, At: at}}}
	line, err := jsonrpc.EncodeResult(jsonrpc.IntID(1), st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":1,"result":{"provider":"appattest","ready":0,"capacity":0,"target":0,"maxAge":"","generating":false,"warm":false,"turns":0,"waiting":0,"waitingReady":0,"consecutiveFailures":0,"counters":{"requests":0,"served":0,"generated":0,"generateFailures":0,"expired":0,"timeouts":0,"errors":0},` +
		`"lastKind":"aa","servedByKind":{"aa":5,"dc":2},"appAttest":{"state":"registered","registered":true,"keyId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","environment":"production","server":"https://gate.example/a","ahead":1,"fallback":"dc",` +
		`"counters":{"keysMade":1,"registrations":1,"checks":2,"assertions":5,"assertionFailures":1,"fallbacks":2},"lastCheck":"2025-03-04T05:06:07.0000008Z","nextAttempt":"2025-03-04T05:06:07.0000008Z",` +
		`"lastError":{"reason":"provider_error","message":"timeout","dcErrorCode":4,"at":"2025-03-04T05:06:07.0000008Z"}}}}` + "\n"
	if string(line) != want {
		t.Errorf("encoded\n %s\nwant\n %s", line, want)
	}
	var resp struct{ Result json.RawMessage }
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, resp.Result, st)
}
