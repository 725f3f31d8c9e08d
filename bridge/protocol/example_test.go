package protocol_test

import (
	"encoding/json"
	"fmt"

	"github.com/attestd/attestd/bridge/protocol"
)

// A client that begins a turn and waits at most 250 ms for a token to be
// ready sends these params with attestation/warm, and reads the answer
// into a WarmResult.
func ExampleWarmParams() {
	timeout := int64(250)
	params, _ := json.Marshal(protocol.WarmParams{Turn: protocol.TurnStarted, Wait: true, TimeoutMs: &timeout})
	fmt.Println(protocol.MethodWarm, string(params))

	var res protocol.WarmResult
	_ = json.Unmarshal([]byte(`{"ready":true,"waitedMs":42}`), &res)
	fmt.Println(*res.Ready, *res.WaitedMs)
	// Output:
	// attestation/warm {"wait":true,"timeoutMs":250,"turn":"started"}
	// true 42
}
