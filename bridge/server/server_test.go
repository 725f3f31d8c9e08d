package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"github.com/attestd/attestd/bridge/socket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testServer struct {
	srv  *Server
	pool *pool.Pool
	path string
	done chan error
}

// start runs a server with prov behind a pool on a socket in a temp dir;
// cleanup shuts it down and checks Serve returned.
func start(t *testing.T, prov provider.Provider, cfg Config) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attestd.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(pool.Config{Provider: prov})
	cfg.Tokens = p
	ts := &testServer{srv: New(cfg), pool: p, path: path, done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		p.Close()
	})
	return ts
}

type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, 1<<16)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one answer line, failing the test after 5 s.
func (c *rawConn) recv() map[string]any {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("read answer: %v (got %q)", err, line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		c.t.Fatalf("answer is not JSON: %q", line)
	}
	return m
}

// recvRaw reads one answer line as text.
func (c *rawConn) recvRaw() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read answer: %v", err)
	}
	return line
}

// expectClosed asserts the server closes the connection (after any
// answers already on the way, which are discarded).
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.br.ReadBytes('\n'); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("connection was not closed")
			}
			return
		}
	}
}

func errCode(m map[string]any) int {
	e, ok := m["error"].(map[string]any)
	if !ok {
		return 0
	}
	return int(e["code"].(float64))
}

func errReason(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	d, _ := e["data"].(map[string]any)
	r, _ := d["reason"].(string)
	return r
}

// waitAnswered returns once no connection has a request in flight: a
// client can read its answer before the handler that wrote it has
// counted it done, and eviction spares connections with requests in
// flight.
func (ts *testServer) waitAnswered(t *testing.T) {
	t.Helper()
	poll.Until(t, "no request in flight", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		for c := range ts.srv.conns {
			if c.inFlight.Load() > 0 {
				return false
			}
		}
		return true
	})
}

// healthy asserts a fresh connection still gets a token.
func (ts *testServer) healthy(t *testing.T) {
	t.Helper()
	c := ts.dial(t)
	c.send(`{"id":"health","method":"attestation/generate"}` + "\n")
	m := c.recv()
	res, _ := m["result"].(map[string]any)
	tok, _ := res["token"].(string)
	if _, err := header.Decode(tok); err != nil {
		t.Fatalf("server unhealthy: %v (answer %v)", err, m)
	}
}

func TestGenerateAnswersWithHeaderValue(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{})
	c := ts.dial(t)
	c.send(`{"jsonrpc":"2.0","id":7,"method":"attestation/generate","params":{"unknown":1}}` + "\n")
	m := c.recv()
	if m["id"].(float64) != 7 {
		t.Fatalf("id = %v", m["id"])
	}
	tok := m["result"].(map[string]any)["token"].(string)
	v, err := header.Decode(tok)
	if err != nil || v.Kind != header.KindDev || len(v.Token) != provider.DevTokenLen {
		t.Fatalf("token %q: %+v, %v", tok, v, err)
	}
	if _, has := m["jsonrpc"]; has {
		t.Error("answer carries jsonrpc; the app-server's dialect omits it")
	}
}

func TestIDsEchoedExactly(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{})
	c := ts.dial(t)
	for _, id := range []string{`0`, `-1`, `123456789012345678901234567890`, `"abc"`, `"ü\u00e9"`, `""`} {
		c.send(`{"id":` + id + `,"method":"attestation/status"}` + "\n")
		line := c.recvRaw()
		if !strings.HasPrefix(line, `{"id":`+id+`,`) {
			t.Errorf("id %s answered as %s", id, line)
		}
	}
}

// firstCallWaits returns a provider whose first call waits for release and
// whose later calls answer at once; Started announces each call.
func firstCallWaits(release <-chan struct{}) *providertest.Scripted {
	return &providertest.Scripted{Script: func(n int) providertest.Step {
		if n == 0 {
			return providertest.Step{Release: release}
		}
		return providertest.Step{}
	}, Started: make(chan int, 10)}
}

func TestPipelinedRequestsAnsweredOutOfOrder(t *testing.T) {
	release := make(chan struct{})
	prov := firstCallWaits(release)
	ts := start(t, prov, Config{Deadline: time.Minute})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/generate"}` + "\n" + `{"id":2,"method":"attestation/status"}` + "\n")
	<-prov.Started
	if m := c.recv(); m["id"].(float64) != 2 {
		t.Fatalf("status was not answered while generate waited: %v", m)
	}
	close(release)
	if m := c.recv(); m["id"].(float64) != 1 || m["result"] == nil {
		t.Fatalf("generate answer = %v", m)
	}
}

func TestNotificationsGetNoAnswer(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{})
	c := ts.dial(t)
	c.send(`{"method":"attestation/warm"}` + "\n" + `{"method":"initialized"}` + "\n" +
		`{"method":"no/such"}` + "\n" + `{"id":1,"method":"attestation/status"}` + "\n")
	if m := c.recv(); m["id"].(float64) != 1 {
		t.Fatalf("first answer = %v, want the status call's", m)
	}
}

func TestInitializeAndStatus(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{Version: "1.2.3"})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}` + "\n")
	res := c.recv()["result"].(map[string]any)
	if res["provider"] != "dev" || res["protocolVersion"].(float64) != 1 ||
		res["serverInfo"].(map[string]any)["name"] != "attestd" || res["serverInfo"].(map[string]any)["version"] != "1.2.3" {
		t.Fatalf("initialize = %v", res)
	}
	c.send(`{"id":2,"method":"attestation/status","params":{}}` + "\n")
	st := c.recv()["result"].(map[string]any)
	if st["provider"] != "dev" || st["pool"] == nil || st["server"] == nil {
		t.Fatalf("status = %v", st)
	}
}

func TestGenerateFailureCarriesReasonAndAppleCode(t *testing.T) {
	dc := &provider.Error{Reason: provider.ReasonProviderError, Msg: "DeviceCheck serverUnavailable", DCCode: 4, HasDCCode: true}
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Err: dc} }}
	ts := start(t, prov, Config{})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/generate"}` + "\n")
	m := c.recv()
	e := m["error"].(map[string]any)
	d := e["data"].(map[string]any)
	if int(e["code"].(float64)) != jsonrpc.CodeAttestation || d["reason"] != "provider_error" || d["dcErrorCode"].(float64) != 4 {
		t.Fatalf("error = %v", m)
	}
}

func TestDeadlineGivesPromptError(t *testing.T) {
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Hang: true} }}
	ts := start(t, prov, Config{Deadline: 20 * time.Millisecond})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/generate"}` + "\n")
	if m := c.recv(); errReason(m) != provider.ReasonTimeout {
		t.Fatalf("answer = %v, want a timeout error", m)
	}
}

// TestBadInput sends each bad line on its own connection and checks the
// answer, whether the connection stays open, and that the server still
// serves others.
func TestBadInput(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{MaxLine: 4096})
	for _, tc := range []struct {
		name   string
		line   string
		code   int  // expected error code; 0 means no answer expected
		closes bool // the connection is closed after the answer
	}{
		{"invalid JSON", `{"id":1,"method":`, jsonrpc.CodeParse, false},
		{"binary garbage", "\x00\xff\xfe garbage \x01", jsonrpc.CodeParse, false},
		{"batch array", `[{"id":1,"method":"attestation/generate"}]`, jsonrpc.CodeInvalidRequest, false},
		{"empty batch", `[]`, jsonrpc.CodeInvalidRequest, false},
		{"JSON string", `"hello"`, jsonrpc.CodeInvalidRequest, false},
		{"JSON null", `null`, jsonrpc.CodeInvalidRequest, false},
		{"method number", `{"id":1,"method":42}`, jsonrpc.CodeInvalidRequest, false},
		{"method empty", `{"id":1,"method":""}`, jsonrpc.CodeInvalidRequest, false},
		{"id float", `{"id":1.5,"method":"attestation/generate"}`, jsonrpc.CodeInvalidRequest, false},
		{"id object", `{"id":{},"method":"attestation/generate"}`, jsonrpc.CodeInvalidRequest, false},
		{"id null", `{"id":null,"method":"attestation/generate"}`, jsonrpc.CodeInvalidRequest, false},
		{"id bool", `{"id":true,"method":"attestation/generate"}`, jsonrpc.CodeInvalidRequest, false},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"attestation/generate"}`, jsonrpc.CodeInvalidRequest, false},
		{"params array", `{"id":1,"method":"attestation/generate","params":[1]}`, jsonrpc.CodeInvalidParams, false},
		{"params string", `{"id":1,"method":"attestation/generate","params":"x"}`, jsonrpc.CodeInvalidParams, false},
		{"unknown method", `{"id":1,"method":"attestation/steal"}`, jsonrpc.CodeMethodNotFound, false},
		{"neither request nor response", `{"id":1}`, jsonrpc.CodeInvalidRequest, false},
		{"response from client", `{"id":1,"result":{}}`, 0, false},
		{"line too long", `{"id":1,"method":"attestation/generate","params":{"pad":"` + strings.Repeat("x", 5000) + `"}}`, jsonrpc.CodeRequestTooLarge, true},
		{"deep nesting", `{"id":1,"method":"attestation/generate","params":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + `}`, jsonrpc.CodeInvalidParams, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tc.line + "\n")
			if tc.code != 0 {
				m := c.recv()
				if got := errCode(m); got != tc.code {
					t.Fatalf("answer %v: code %d, want %d", m, got, tc.code)
				}
			}
			if tc.closes {
				c.expectClosed()
			} else {
				// The same connection keeps working.
				c.send(`{"id":"after","method":"attestation/status"}` + "\n")
				if m := c.recv(); m["id"] != "after" {
					t.Fatalf("after bad input, answer = %v", m)
				}
			}
			ts.healthy(t)
		})
	}
}

func TestClientDisconnectsMidRequest(t *testing.T) {
	release := make(chan struct{})
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Release: release} },
		Started: make(chan int, 10)}
	ts := start(t, prov, Config{Deadline: time.Minute})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/generate"}` + "\n")
	<-prov.Started
	c.nc.Close()
	close(release)
	ts.healthy(t)
}

func TestPeerWithOtherUIDIsRefused(t *testing.T) {
	orig := socketCheckPeerUID
	t.Cleanup(func() { socketCheckPeerUID = orig })
	socketCheckPeerUID = func(conn *net.UnixConn, uid int) error {
		return socket.ErrPeerUID // as if every peer ran as someone else
	}
	ts := start(t, provider.Dev{}, Config{})
	c := ts.dial(t)
	m := c.recv() // refused before it can ask for anything
	if errReason(m) != "peer_refused" || m["result"] != nil {
		t.Fatalf("answer = %v, want a refusal and no token", m)
	}
	c.expectClosed()
}

func TestCheckPeerRefuses(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{CheckPeer: func(*net.UnixConn) error { return errors.New("requirement not met") }})
	c := ts.dial(t)
	if m := c.recv(); errReason(m) != "peer_refused" {
		t.Fatalf("answer = %v", m)
	}
	c.expectClosed()
}

func TestIdleConnectionIsClosed(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{IdleTimeout: 50 * time.Millisecond})
	c := ts.dial(t)
	c.expectClosed()
	ts.healthy(t)
}

func TestConnectionCapEvictsLongestIdle(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{MaxConns: 2})
	first := ts.dial(t)
	first.send(`{"id":1,"method":"attestation/status"}` + "\n")
	first.recv()
	second := ts.dial(t)
	second.send(`{"id":1,"method":"attestation/status"}` + "\n")
	second.recv()
	ts.waitAnswered(t)
	ts.healthy(t) // a third connection: the first (longest idle) makes room
	first.expectClosed()
	second.send(`{"id":2,"method":"attestation/status"}` + "\n")
	if m := second.recv(); m["id"].(float64) != 2 {
		t.Fatalf("second connection lost: %v", m)
	}
}

func TestShutdownAnswersRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	prov := firstCallWaits(release)
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(pool.Config{Provider: prov})
	defer p.Close()
	srv := New(Config{Tokens: p, Deadline: time.Minute})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	ts := &testServer{path: path}
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/generate"}` + "\n")
	<-prov.Started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	close(release)
	if m := c.recv(); m["result"] == nil {
		t.Fatalf("in-flight request not answered: %v", m)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
}

func TestConcurrentClientsGetDistinctTokens(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{Deadline: 5 * time.Second})
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.dial(t)
			for i := range 25 {
				c.send(`{"id":` + jsonrpc.IntID(int64(g*100+i)).String() + `,"method":"attestation/generate"}` + "\n")
			}
			for range 25 {
				m := c.recv()
				tok, _ := m["result"].(map[string]any)["token"].(string)
				mu.Lock()
				if tok == "" || seen[tok] {
					t.Errorf("bad or repeated token in %v", m)
				}
				seen[tok] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// A request in flight keeps a connection open past the idle timeout, and
// a line written slowly across that timeout arrives whole.
func TestSlowLineAcrossIdleTimeoutWhileBusy(t *testing.T) {
	release := make(chan struct{})
	prov := firstCallWaits(release)
	ts := start(t, prov, Config{IdleTimeout: 30 * time.Millisecond, Deadline: time.Minute})
	c := ts.dial(t)
	c.send(`{"id":1,"method":"attestation/generate"}` + "\n")
	<-prov.Started
	c.send(`{"id":2,"meth`)
	// Wait out several idle timeouts with the line half written. The timer
	// is the input here, not synchronisation.
	time.Sleep(100 * time.Millisecond)
	c.send(`od":"attestation/status"}` + "\n")
	if m := c.recv(); m["id"].(float64) != 2 || m["result"] == nil {
		t.Fatalf("answer = %v", m)
	}
	close(release)
	if m := c.recv(); m["id"].(float64) != 1 {
		t.Fatalf("answer = %v", m)
	}
}

func TestTokenAnswerMatchesEncoder(t *testing.T) {
	for _, tc := range []struct {
		id  jsonrpc.ID
		tok string
	}{
		{jsonrpc.IntID(7), "v1.haFro2RldqF0xCA-_"},
		{jsonrpc.StringID("a<b>"), "v1.abc"},
		{jsonrpc.IntID(-3), `odd"token\` + "\n"}, // never made by the pool; falls back to the encoder
	} {
		want, err := jsonrpc.EncodeResult(tc.id, protocol.GenerateResult{Token: tc.tok})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTokenAnswer(nil, []byte(tc.id.String()), tc.tok); string(got) != string(want) {
			t.Errorf("appendTokenAnswer = %s, want %s", got, want)
		}
	}
}

// A crowd of connections that never say anything must not push out a
// client that is using its connection.
func TestConnectionCapEvictsSilentConnectionsFirst(t *testing.T) {
	ts := start(t, provider.Dev{}, Config{MaxConns: 2})
	active := ts.dial(t)
	active.send(`{"id":1,"method":"attestation/status"}` + "\n")
	active.recv()
	silent := ts.dial(t)
	// The silent connection is newer, so "longest since the last line"
	// alone would pick the active one.
	ts.waitAnswered(t)
	ts.healthy(t)
	silent.expectClosed()
	active.send(`{"id":2,"method":"attestation/status"}` + "\n")
	if m := active.recv(); m["id"].(float64) != 2 {
		t.Fatalf("active connection lost: %v", m)
	}
}
