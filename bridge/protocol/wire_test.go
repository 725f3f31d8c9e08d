package protocol_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/protocol"
)

// The tables below pin the exact lines on the wire, as jsonrpc encodes
// them: a change to a type, a tag or an omitempty shows up here first.

func ptr[T any](v T) *T { return &v }

var at = time.Date(2025, 3, 4, 5, 6, 7, 800, time.UTC)

func TestResultsOnTheWire(t *testing.T) {
	t.Parallel()
	full := protocol.StatusResult{
		Version:  "1.2.3",
		Provider: "devicecheck",
		Pool: protocol.PoolStatus{
			Provider: "devicecheck", Ready: 1, Capacity: 4, Target: 4, MaxAge: "2m0s",
			Generating: true, Warm: true, WarmUntil: ptr(at), Turns: 2, Waiting: 3, WaitingReady: 1,
			ConsecutiveFailures: 5, RetryAt: ptr(at.Add(time.Second)),
			Counters: protocol.PoolCounters{Requests: 1, Served: 2, Generated: 3, GenerateFailures: 4, Expired: 5, Timeouts: 6, Errors: 7},
			LastError: &protocol.PoolFailure{Reason: "provider_error", Message: "DeviceCheck: invalidKey <&>",
				DCErrorCode: ptr(3), At: at},
		},
		Server: protocol.ServerStats{Uptime: "1h0m0s", ActiveConnections: 1, Accepted: 2, Refused: 3,
			Evicted: 4, Requests: 5, TokensServed: 6, Errors: 7},
	}
	tests := []struct {
		name   string
		result any
		want   string
	}{
		{"generate", protocol.GenerateResult{Token: "v1.abc_-"},
			`{"id":1,"result":{"token":"v1.abc_-"}}`},
		{"initialize", protocol.InitializeResult{ServerInfo: protocol.ServerInfo{Name: "attestd", Version: "1.2.3"},
			Provider: "dev", ProtocolVersion: protocol.Version},
			`{"id":1,"result":{"serverInfo":{"name":"attestd","version":"1.2.3"},"provider":"dev","protocolVersion":1}}`},
		{"status, zero", protocol.StatusResult{},
			`{"id":1,"result":{"version":"","provider":"","pool":{"provider":"","ready":0,"capacity":0,"target":0,"maxAge":"","generating":false,"warm":false,"turns":0,"waiting":0,"waitingReady":0,"consecutiveFailures":0,"counters":{"requests":0,"served":0,"generated":0,"generateFailures":0,"expired":0,"timeouts":0,"errors":0}},"server":{"uptime":"","activeConnections":0,"accepted":0,"refused":0,"evicted":0,"requests":0,"tokensServed":0,"errors":0}}}`},
		{"status, every member", full,
			`{"id":1,"result":{"version":"1.2.3","provider":"devicecheck","pool":{"provider":"devicecheck","ready":1,"capacity":4,"target":4,"maxAge":"2m0s","generating":true,"warm":true,"warmUntil":"2025-03-04T05:06:07.0000008Z","turns":2,"waiting":3,"waitingReady":1,"consecutiveFailures":5,"retryAt":"2025-03-04T05:06:08.0000008Z","counters":{"requests":1,"served":2,"generated":3,"generateFailures":4,"expired":5,"timeouts":6,"errors":7},"lastError":{"reason":"provider_error","message":"DeviceCheck: invalidKey <&>","dcErrorCode":3,"at":"2025-03-04T05:06:07.0000008Z"}},"server":{"uptime":"1h0m0s","activeConnections":1,"accepted":2,"refused":3,"evicted":4,"requests":5,"tokensServed":6,"errors":7}}}`},
		{"status, last error without a code", protocol.StatusResult{Pool: protocol.PoolStatus{
			LastError: &protocol.PoolFailure{Reason: "no_gui_session", Message: "no GUI login session", At: at}}},
			`{"id":1,"result":{"version":"","provider":"","pool":{"provider":"","ready":0,"capacity":0,"target":0,"maxAge":"","generating":false,"warm":false,"turns":0,"waiting":0,"waitingReady":0,"consecutiveFailures":0,"counters":{"requests":0,"served":0,"generated":0,"generateFailures":0,"expired":0,"timeouts":0,"errors":0},"lastError":{"reason":"no_gui_session","message":"no GUI login session","at":"2025-03-04T05:06:07.0000008Z"}},"server":{"uptime":"","activeConnections":0,"accepted":0,"refused":0,"evicted":0,"requests":0,"tokensServed":0,"errors":0}}}`},
		{"warm, hint", protocol.WarmResult{}, `{"id":1,"result":{}}`},
		{"warm, ready", protocol.WarmResult{Ready: ptr(true), WaitedMs: ptr(int64(12))},
			`{"id":1,"result":{"ready":true,"waitedMs":12}}`},
		{"warm, not ready", protocol.WarmResult{Ready: ptr(false), WaitedMs: ptr(int64(0))},
			`{"id":1,"result":{"ready":false,"waitedMs":0}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line, err := jsonrpc.EncodeResult(jsonrpc.IntID(1), tc.result)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(line); got != tc.want+"\n" {
				t.Errorf("encoded\n %s\nwant\n %s", got, tc.want)
			}
			var resp struct{ Result json.RawMessage }
			if err := json.Unmarshal(line, &resp); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, resp.Result, tc.result)
		})
	}
}

// roundTrip checks that raw decodes into a value of v's type equal to v.
func roundTrip(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	got := reflect.New(reflect.TypeOf(v))
	if err := json.Unmarshal(raw, got.Interface()); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if !reflect.DeepEqual(got.Elem().Interface(), v) {
		t.Errorf("decoded %s as %+v, want %+v", raw, got.Elem().Interface(), v)
	}
}

func TestRequestsOnTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		id     jsonrpc.ID
		method string
		params any
		want   string
	}{
		{"generate", jsonrpc.IntID(7), protocol.MethodGenerate, struct{}{},
			`{"id":7,"method":"attestation/generate","params":{}}`},
		{"status", jsonrpc.IntID(7), protocol.MethodStatus, struct{}{},
			`{"id":7,"method":"attestation/status","params":{}}`},
		{"initialize", jsonrpc.StringID("a"), protocol.MethodInitialize, nil,
			`{"id":"a","method":"initialize"}`},
		{"warm hint", jsonrpc.ID{}, protocol.MethodWarm, protocol.WarmParams{},
			`{"method":"attestation/warm","params":{}}`},
		{"turn started", jsonrpc.ID{}, protocol.MethodWarm, protocol.WarmParams{Turn: protocol.TurnStarted},
			`{"method":"attestation/warm","params":{"turn":"started"}}`},
		{"turn completed", jsonrpc.ID{}, protocol.MethodWarm, protocol.WarmParams{Turn: protocol.TurnCompleted},
			`{"method":"attestation/warm","params":{"turn":"completed"}}`},
		{"wait", jsonrpc.IntID(8), protocol.MethodWarm, protocol.WarmParams{Wait: true, TimeoutMs: ptr(int64(250))},
			`{"id":8,"method":"attestation/warm","params":{"wait":true,"timeoutMs":250}}`},
		{"wait, zero timeout, in a turn", jsonrpc.IntID(8), protocol.MethodWarm,
			protocol.WarmParams{Wait: true, TimeoutMs: ptr(int64(0)), Turn: protocol.TurnStarted},
			`{"id":8,"method":"attestation/warm","params":{"wait":true,"timeoutMs":0,"turn":"started"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line, err := jsonrpc.EncodeRequest(tc.id, tc.method, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(line); got != tc.want+"\n" {
				t.Errorf("encoded\n %s\nwant\n %s", got, tc.want)
			}
			if p, ok := tc.params.(protocol.WarmParams); ok {
				var req struct{ Params json.RawMessage }
				if err := json.Unmarshal(line, &req); err != nil {
					t.Fatal(err)
				}
				roundTrip(t, req.Params, p)
			}
		})
	}
}

func TestErrorDataOnTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data protocol.ErrorData
		want string
	}{
		{"reason only", protocol.ErrorData{Reason: "peer_refused"},
			`{"id":1,"error":{"code":-32000,"message":"attestation failed","data":{"reason":"peer_refused"}}}`},
		{"with Apple's code", protocol.ErrorData{Reason: "provider_error", DCErrorCode: ptr(0)},
			`{"id":1,"error":{"code":-32000,"message":"attestation failed","data":{"reason":"provider_error","dcErrorCode":0}}}`},
		{"with a hint", protocol.ErrorData{Reason: "unsupported", DCErrorCode: ptr(1), Hint: `use "--provider dev" <here> & now`},
			`{"id":1,"error":{"code":-32000,"message":"attestation failed","data":{"reason":"unsupported","dcErrorCode":1,"hint":"use \"--provider dev\" \u003chere\u003e \u0026 now"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := jsonrpc.NewError(jsonrpc.CodeAttestation, "attestation failed", tc.data)
			line := jsonrpc.EncodeError(jsonrpc.IntID(1), e)
			if got := string(line); got != tc.want+"\n" {
				t.Errorf("encoded\n %s\nwant\n %s", got, tc.want)
			}
			roundTrip(t, e.Data, tc.data)
		})
	}
}
