package server

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
)

// The wire shape of attestation/warm, pinned line by line.
func TestWarmWireShape(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{})
	ts.pool.Warm()
	c := ts.dial(t)
	for _, tc := range []struct {
		name, send string
		want       string // a regular expression for the whole answer line
		turns      int    // the pool's running turns afterwards
	}{
		{"hint", `{"id":1,"method":"attestation/warm"}`, `{"id":1,"result":{}}`, 0},
		{"hint with empty params", `{"id":2,"method":"attestation/warm","params":{}}`, `{"id":2,"result":{}}`, 0},
		{"turn started", `{"id":3,"method":"attestation/warm","params":{"turn":"started"}}`, `{"id":3,"result":{}}`, 1},
		{"another", `{"id":4,"method":"attestation/warm","params":{"turn":"started"}}`, `{"id":4,"result":{}}`, 2},
		{"turn completed", `{"id":5,"method":"attestation/warm","params":{"turn":"completed"}}`, `{"id":5,"result":{}}`, 1},
		{"wait, ready", `{"id":6,"method":"attestation/warm","params":{"wait":true,"timeoutMs":5000}}`,
			`{"id":6,"result":{"ready":true,"waitedMs":\d+}}`, 1},
		{"wait with a turn", `{"id":"w","method":"attestation/warm","params":{"turn":"started","wait":true}}`,
			`{"id":"w","result":{"ready":true,"waitedMs":\d+}}`, 2},
		{"unknown members ignored", `{"id":7,"method":"attestation/warm","params":{"turn":"completed","x":[1]}}`, `{"id":7,"result":{}}`, 1},
		{"unknown turn", `{"id":8,"method":"attestation/warm","params":{"turn":"paused"}}`, `{"id":8,"error":{"code":-32602,"message":"[^"]*turn must be \\"started\\" or \\"completed\\""}}`, 1},
		{"negative timeout", `{"id":9,"method":"attestation/warm","params":{"wait":true,"timeoutMs":-1}}`, `{"id":9,"error":{"code":-32602,"message":"[^"]*timeoutMs must be between 0 and 10000"}}`, 1},
		{"timeout too long", `{"id":10,"method":"attestation/warm","params":{"wait":true,"timeoutMs":10001}}`, `{"id":10,"error":{"code":-32602,[^\n]*}}`, 1},
		{"fractional timeout", `{"id":11,"method":"attestation/warm","params":{"wait":true,"timeoutMs":1.5}}`, `{"id":11,"error":{"code":-32602,[^\n]*}}`, 1},
		{"wait not a bool", `{"id":12,"method":"attestation/warm","params":{"wait":"yes"}}`, `{"id":12,"error":{"code":-32602,[^\n]*}}`, 1},
		{"params not an object", `{"id":13,"method":"attestation/warm","params":[true]}`, `{"id":13,"error":{"code":-32602,[^\n]*}}`, 1},
	} {
		c.send(tc.send + "\n")
		line := strings.TrimSuffix(c.recvRaw(), "\n")
		if !regexp.MustCompile(`^` + tc.want + `$`).MatchString(line) {
			t.Errorf("%s: answer %s, want %s", tc.name, line, tc.want)
		}
		if got := ts.pool.Status().Turns; got != tc.turns {
			t.Errorf("%s: %d turns running, want %d", tc.name, got, tc.turns)
		}
	}
}

// A wait that outlasts its timeout answers ready:false after it; a
// timeout of 0 asks whether a token is ready now.
func TestWarmWaitTimesOut(t *testing.T) {
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Hang: true} }}
	ts := start(t, prov, Config{})
	c := ts.dial(t)
	for _, ms := range []int{0, 30} {
		c.send(`{"id":1,"method":"attestation/warm","params":{"wait":true,"timeoutMs":` + jsonrpc.IntID(int64(ms)).String() + `}}` + "\n")
		m := c.recv()
		res, _ := m["result"].(map[string]any)
		if res["ready"] != false || res["waitedMs"].(float64) < float64(ms) {
			t.Fatalf("timeoutMs %d: answer %v, want ready false after at least the timeout", ms, m)
		}
	}
}

// A failing provider answers a wait at once with the attestation error.
func TestWarmWaitReportsProviderFailure(t *testing.T) {
	dc := &provider.Error{Reason: provider.ReasonProviderError, Msg: "DeviceCheck serverUnavailable", DCCode: 4, HasDCCode: true}
	ts := start(t, &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Err: dc} }}, Config{})
	c := ts.dial(t)
	for i := range 2 { // the failure, then the backoff
		c.send(`{"id":1,"method":"attestation/warm","params":{"wait":true,"timeoutMs":10000}}` + "\n")
		m := c.recv()
		e, _ := m["error"].(map[string]any)
		d, _ := e["data"].(map[string]any)
		if errCode(m) != jsonrpc.CodeAttestation || d["reason"] != "provider_error" || d["dcErrorCode"] != float64(4) {
			t.Fatalf("call %d: answer %v", i, m)
		}
	}
}

// Turn signals in notifications take effect without an answer; a wait in
// a notification is ignored.
func TestWarmNotifications(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{})
	c := ts.dial(t)
	c.send(`{"method":"attestation/warm","params":{"turn":"started"}}` + "\n" +
		`{"method":"attestation/warm","params":{"turn":"started","wait":true}}` + "\n" +
		`{"method":"attestation/warm","params":{"turn":"bogus"}}` + "\n" +
		`{"id":1,"method":"attestation/status"}` + "\n")
	if m := c.recv(); m["id"].(float64) != 1 {
		t.Fatalf("first answer %v, want the status call's", m)
	}
	if got := ts.pool.Status().Turns; got != 2 {
		t.Fatalf("%d turns, want 2", got)
	}
}

// A connection's turns end with it, and one connection holds at most
// MaxTurns of them.
func TestTurnsBelongToTheConnection(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{})
	c := ts.dial(t)
	for range MaxTurns + 4 {
		c.send(`{"method":"attestation/warm","params":{"turn":"started"}}` + "\n")
	}
	c.send(`{"id":1,"method":"attestation/status"}` + "\n")
	c.recv()
	if got := ts.pool.Status().Turns; got != MaxTurns {
		t.Fatalf("%d turns, want the cap %d", got, MaxTurns)
	}
	other := ts.dial(t)
	other.send(`{"method":"attestation/warm","params":{"turn":"started"}}` + "\n" + `{"id":1,"method":"attestation/status"}` + "\n")
	other.recv()
	c.nc.Close()
	poll.Until(t, "the closed connection's turns to end, leaving the other's", func() bool { return ts.pool.Status().Turns == 1 })
}

// Shutdown answers a wait in progress at once, with shutting_down.
func TestShutdownEndsWaits(t *testing.T) {
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Hang: true} },
		Started: make(chan int, 10)}
	ts := start(t, prov, Config{})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/warm","params":{"wait":true,"timeoutMs":10000}}` + "\n")
	<-prov.Started
	poll.Until(t, "the wait to reach the pool", func() bool { return ts.pool.Status().WaitingReady == 1 })
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	if m := c.recv(); errReason(m) != provider.ReasonShuttingDown {
		t.Fatalf("answer %v, want shutting_down", m)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}
