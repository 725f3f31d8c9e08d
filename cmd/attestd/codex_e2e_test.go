package main

// The end-to-end test of "attestd bridge" against the real codex
// app-server (@openai/codex, pinned in the Makefile), with a fake ChatGPT
// backend on 127.0.0.1. See ../../../shared/notes/codex-app-server.md.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/stdio"
)

// e2ePatience bounds every wait on codex.
const e2ePatience = 60 * time.Second

// codexBinary returns the codex executable: $CODEX_BIN, or the one "make
// codex" installs. Without one the test is skipped, loudly; with CODEX_BIN
// set to a missing file it fails, since CI asked for it.
func codexBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CODEX_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CODEX_BIN=%s: %v", p, err)
		}
		return p
	}
	var pkg, triple string
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64":
		pkg, triple = "codex-linux-x64", "x86_64-unknown-linux-musl"
	case "linux/arm64":
		pkg, triple = "codex-linux-arm64", "aarch64-unknown-linux-musl"
	case "darwin/arm64":
		pkg, triple = "codex-darwin-arm64", "aarch64-apple-darwin"
	case "darwin/amd64":
		pkg, triple = "codex-darwin-x64", "x86_64-apple-darwin"
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", ".codex", "node_modules", "@openai", pkg, "vendor", triple, "bin", "codex"))
	if _, err := os.Stat(p); pkg == "" || err != nil {
		msg := "\n" + strings.Repeat("*", 72) + "\n" +
			"SKIPPING the end-to-end test against the real codex app-server:\n" +
			"no codex binary (looked at $CODEX_BIN and " + p + ").\n" +
			"Run \"make codex\" (npm install of the pinned @openai/codex) or set CODEX_BIN.\n" +
			strings.Repeat("*", 72)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	return p
}

// backend is a fake ChatGPT backend. It records the x-oai-attestation
// header of every model request.
type backend struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []seenRequest
}

type seenRequest struct {
	method, path string
	websocket    bool
	attestation  string // the header; empty when absent
	hasHeader    bool
	// kind and keyID are X-Attestd-Kind and X-Attestd-Key-Id, what a gate
	// in front of the backend says of a request it let through.
	kind, keyID string
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	ws := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	vals, has := r.Header[http.CanonicalHeaderKey("x-oai-attestation")]
	att := ""
	if has && len(vals) > 0 {
		att = vals[0]
	}
	b.mu.Lock()
	b.reqs = append(b.reqs, seenRequest{method: r.Method, path: r.URL.Path, websocket: ws, attestation: att, hasHeader: has,
		kind: r.Header.Get("X-Attestd-Kind"), keyID: r.Header.Get("X-Attestd-Key-Id")})
	b.mu.Unlock()
	io.Copy(io.Discard, r.Body)

	switch {
	case ws:
		// Refuse the upgrade: codex falls back to HTTP.
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/codex/models"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"models":[]}`)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/codex/responses"):
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{
			`{"type":"response.created","response":{"id":"resp-1"}}`,
			`{"type":"response.output_item.done","item":{"type":"message","role":"assistant","id":"msg-1","content":[{"type":"output_text","text":"hello from the fake backend"}]}}`,
			`{"type":"response.completed","response":{"id":"resp-1","usage":{"input_tokens":10,"input_tokens_details":null,"output_tokens":5,"output_tokens_details":null,"total_tokens":15}}}`,
		} {
			var typ struct {
				Type string `json:"type"`
			}
			json.Unmarshal([]byte(ev), &typ)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ.Type, ev)
		}
	default:
		http.NotFound(w, r)
	}
}

// modelRequests returns the recorded requests that reach the model: the
// websocket handshakes and the POSTs to .../responses (compaction too).
func (b *backend) modelRequests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []seenRequest
	for _, r := range b.reqs {
		if r.websocket || (r.method == http.MethodPost && strings.Contains(r.path, "/codex/responses")) {
			out = append(out, r)
		}
	}
	return out
}

func (b *backend) all() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seenRequest(nil), b.reqs...)
}

// codexHome writes a CODEX_HOME for ChatGPT auth against the backend.
func codexHome(t *testing.T, b *backend, websockets bool) string {
	t.Helper()
	return codexHomeAt(t, b.srv.URL, websockets)
}

// codexHomeAt is codexHome for a backend at base (a gate in front of it).
func codexHomeAt(t *testing.T, base string, websockets bool) string {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`approval_policy = "never"
sandbox_mode = "read-only"
chatgpt_base_url = "%[1]s/backend-api/"
check_for_update_on_startup = false
cli_auth_credentials_store = "file"
model_provider = "fake"

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.fake]
name = "fake"
base_url = "%[1]s/backend-api/codex"
wire_api = "responses"
requires_openai_auth = true
supports_websockets = %[2]v
request_max_retries = 0
stream_max_retries = 0
`, base, websockets)
	seg := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	idToken := seg(map[string]string{"alg": "none", "typ": "JWT"}) + "." + seg(map[string]any{
		"email": "t@example.invalid",
		"https://api.openai.com/auth": map[string]string{
			"chatgpt_plan_type":  "pro",
			"chatgpt_user_id":    "user-test",
			"chatgpt_account_id": "acct-test",
		},
	}) + ".c2ln" // codex 0.171.0 rejects a JWT whose signature part is empty
	auth, _ := json.Marshal(map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]string{
			"id_token":      idToken,
			"access_token":  "fake-access-token",
			"refresh_token": "fake-refresh-token",
			"account_id":    "acct-test",
		},
		"last_refresh": time.Now().UTC().Format(time.RFC3339),
	})
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), auth, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// appClient drives "attestd bridge ... -- codex app-server" in-process, as
// a client that does not declare requestAttestation and never answers
// attestation requests.
type appClient struct {
	t      *testing.T
	in     *io.PipeWriter
	nextID int

	mu      sync.Mutex
	waiters map[string]chan json.RawMessage // by id: the whole response line
	notes   chan note
	stray   []string // server requests the client got (there should be none)
	exited  chan int
	stderr  *lockedBuffer
}

type note struct {
	method string
	params json.RawMessage
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startBridgeClient(t *testing.T, home string, bridgeArgs ...string) *appClient {
	t.Helper()
	return startBridgeClientOf(t, commands["bridge"], home, bridgeArgs...)
}

// startBridgeClientOf is startBridgeClient with the bridge command given,
// one made with test seams.
func startBridgeClientOf(t *testing.T, bridge *command, home string, bridgeArgs ...string) *appClient {
	t.Helper()
	codex := codexBinary(t)
	t.Setenv("CODEX_HOME", home)
	for _, k := range []string{"OPENAI_API_KEY", "CODEX_API_KEY"} {
		t.Setenv(k, "") // restored at cleanup
		os.Unsetenv(k)
	}
	t.Setenv("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://127.0.0.1:9/refresh")
	t.Setenv("CODEX_REVOKE_TOKEN_URL_OVERRIDE", "http://127.0.0.1:9/revoke")
	t.Setenv("RUST_LOG", "warn")
	// Anything that tries to leave the machine (codex syncs plugins from
	// GitHub at startup) fails at once instead of reaching the network.
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		t.Setenv(k, "http://127.0.0.1:9")
	}
	t.Setenv("NO_PROXY", "127.0.0.1,localhost")
	t.Setenv("no_proxy", "127.0.0.1,localhost")

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &appClient{
		t:       t,
		in:      inW,
		nextID:  1,
		waiters: map[string]chan json.RawMessage{},
		notes:   make(chan note, 1024),
		exited:  make(chan int, 1),
		stderr:  &lockedBuffer{},
	}
	s := &streams{in: inR, out: outW, err: c.stderr, getenv: os.Getenv}
	args := append([]string{"--log-level", "debug"}, bridgeArgs...)
	args = append(args, "--", codex, "app-server")
	go func() {
		code := runCommand(context.Background(), s, bridge, args)
		outW.Close()
		c.exited <- code
	}()
	go c.read(outR)
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-c.exited:
		case <-time.After(e2ePatience):
			t.Errorf("bridge did not exit after its client closed stdin; stderr:\n%s", c.stderr)
		}
		inR.Close()
		outR.Close()
		if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
			t.Logf("bridge and codex stderr:\n%s", c.stderr)
		}
	})
	return c
}

func (c *appClient) read(r io.Reader) {
	dec := json.NewDecoder(r)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			close(c.notes)
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		json.Unmarshal(raw, &msg)
		switch {
		case msg.Method != "" && msg.ID != nil:
			c.mu.Lock()
			c.stray = append(c.stray, string(raw))
			c.mu.Unlock()
		case msg.Method != "":
			c.notes <- note{msg.Method, msg.Params}
		default:
			c.mu.Lock()
			ch := c.waiters[string(msg.ID)]
			delete(c.waiters, string(msg.ID))
			c.mu.Unlock()
			if ch != nil {
				ch <- raw
			}
		}
	}
}

// call sends a request and returns its result, failing on an error.
func (c *appClient) call(method string, params any) json.RawMessage {
	c.t.Helper()
	id := c.nextID
	c.nextID++
	ch := make(chan json.RawMessage, 1)
	c.mu.Lock()
	c.waiters[fmt.Sprint(id)] = ch
	c.mu.Unlock()
	line, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	c.send(string(line))
	select {
	case raw := <-ch:
		var resp struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		json.Unmarshal(raw, &resp)
		if resp.Error != nil {
			c.t.Fatalf("%s failed: %s", method, resp.Error)
		}
		return resp.Result
	case <-time.After(e2ePatience):
		c.t.Fatalf("no answer to %s within %v; stderr:\n%s", method, e2ePatience, c.stderr)
	}
	return nil
}

func (c *appClient) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("write to bridge: %v", err)
	}
}

// waitNote waits for a notification with method and returns its params.
func (c *appClient) waitNote(method string) json.RawMessage {
	c.t.Helper()
	timeout := time.After(e2ePatience)
	for {
		select {
		case n, ok := <-c.notes:
			if !ok {
				c.t.Fatalf("bridge output ended while waiting for %s; stderr:\n%s", method, c.stderr)
			}
			if n.method == method {
				return n.params
			}
		case <-timeout:
			c.t.Fatalf("no %s notification within %v", method, e2ePatience)
		}
	}
}

// session runs initialize and thread/start and returns the thread id.
func (c *appClient) session(cwd string) string {
	c.t.Helper()
	c.call("initialize", map[string]any{"clientInfo": map[string]string{"name": "attestd-e2e", "version": "1"}})
	c.send(`{"method":"initialized"}`)
	var res struct {
		Thread struct {
			ID string `json:"id"`
		} `json:"thread"`
	}
	if err := json.Unmarshal(c.call("thread/start", map[string]any{"cwd": cwd}), &res); err != nil || res.Thread.ID == "" {
		c.t.Fatalf("thread/start: no thread id (%v)", err)
	}
	return res.Thread.ID
}

// turn runs one turn to completion.
func (c *appClient) turn(thread, text string) {
	c.t.Helper()
	c.call("turn/start", map[string]any{
		"threadId": thread,
		"input":    []any{map[string]any{"type": "text", "text": text, "text_elements": []any{}}},
	})
	c.waitNote("turn/completed")
}

// close ends the client's input and returns the bridge's exit status.
func (c *appClient) close() int {
	c.t.Helper()
	c.in.Close()
	select {
	case code := <-c.exited:
		c.exited <- code
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.stray) > 0 {
			c.t.Errorf("the client got server requests it never asked for:\n%s", strings.Join(c.stray, "\n"))
		}
		return code
	case <-time.After(e2ePatience):
		c.t.Fatalf("bridge did not exit within %v after stdin closed", e2ePatience)
	}
	return 0
}

// checkAttested checks that every model request carried an envelope with
// status want and, for s=0, a distinct dev header value.
func checkAttested(t *testing.T, b *backend, want header.Status, minRequests int) {
	t.Helper()
	reqs := b.modelRequests()
	if len(reqs) < minRequests {
		t.Errorf("backend saw %d model requests, want at least %d; all requests:\n%v", len(reqs), minRequests, b.all())
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		what := r.method + " " + r.path
		if r.websocket {
			what = "websocket handshake " + r.path
		}
		if !r.hasHeader {
			t.Errorf("%s: no x-oai-attestation header", what)
			continue
		}
		env, err := header.ParseEnvelope(r.attestation)
		if err != nil {
			t.Errorf("%s: x-oai-attestation %q: %v", what, r.attestation, err)
			continue
		}
		if env.Status != want {
			t.Errorf("%s: s=%d (%s), want s=%d (%s)", what, env.Status, env.Status, want, want)
			continue
		}
		if want != header.StatusOK {
			continue
		}
		v, err := header.Decode(env.Token)
		if err != nil {
			t.Errorf("%s: t: %v", what, err)
			continue
		}
		if v.Kind != header.KindDev {
			t.Errorf("%s: token kind %q, want %q", what, v.Kind, header.KindDev)
		}
		if seen[env.Token] {
			t.Errorf("%s: token %s sent twice", what, header.Fingerprint(env.Token))
		}
		seen[env.Token] = true
	}
	t.Logf("backend saw %d model requests, all with s=%d", len(reqs), want)
	if os.Getenv("E2E_VERBOSE") != "" {
		for _, r := range b.all() {
			t.Logf("  %s %s websocket=%v x-oai-attestation=%q", r.method, r.path, r.websocket, r.attestation)
		}
	}
}

func TestCodexE2EThreeTurnsAndCompaction(t *testing.T) {
	b := newBackend(t)
	c := startBridgeClient(t, codexHome(t, b, false), "--provider", "dev")
	thread := c.session(t.TempDir())
	for i := range 3 {
		c.turn(thread, fmt.Sprintf("turn %d", i+1))
	}
	if n := len(b.modelRequests()); n != 3 {
		t.Errorf("%d model requests after three turns, want 3", n)
	}
	c.call("thread/compact/start", map[string]any{"threadId": thread})
	c.waitNote("turn/completed")
	reqs := b.modelRequests()
	if len(reqs) < 4 {
		t.Fatalf("compaction made no model request; all requests:\n%v", b.all())
	}
	t.Logf("compaction request: %s %s", reqs[3].method, reqs[3].path)
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	checkAttested(t, b, header.StatusOK, 4)
}

func TestCodexE2EWebsocketHandshake(t *testing.T) {
	b := newBackend(t)
	c := startBridgeClient(t, codexHome(t, b, true), "--provider", "dev")
	thread := c.session(t.TempDir())
	c.turn(thread, "hi")
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	var ws, posts int
	for _, r := range b.modelRequests() {
		if r.websocket {
			ws++
		} else {
			posts++
		}
	}
	if ws == 0 || posts == 0 {
		t.Errorf("want a refused websocket handshake and an HTTP fallback, got %d and %d: %v", ws, posts, b.all())
	}
	checkAttested(t, b, header.StatusOK, 2)
}

// slowProvider makes each token take d, as DeviceCheck may, and reports
// each token it has made on made.
type slowProvider struct {
	provider.Provider
	d    time.Duration
	made chan struct{}
}

func (p slowProvider) Generate(ctx context.Context) (provider.Answer, error) {
	select {
	case <-time.After(p.d):
	case <-ctx.Done():
		return provider.Answer{}, ctx.Err()
	}
	tok, err := p.Provider.Generate(ctx)
	select {
	case p.made <- struct{}{}:
	default:
	}
	return tok, err
}

func TestCodexE2ESlowProviderIsWarmedUp(t *testing.T) {
	made := make(chan struct{}, 16)
	slow := newBridgeCommand(bridgeSeams{wrapProvider: func(p provider.Provider) provider.Provider {
		return slowProvider{Provider: p, d: 300 * time.Millisecond, made: made}
	}})

	b := newBackend(t)
	c := startBridgeClientOf(t, slow, codexHome(t, b, false), "--provider", "dev")
	thread := c.session(t.TempDir())
	// Nothing has asked for a token yet: only the warm-up hints from
	// initialize and thread/start can have started one. (A person typing
	// the first prompt gives the pool this time as well.)
	select {
	case <-made:
	case <-time.After(e2ePatience):
		t.Fatal("no token was made ahead of the first request: warm-up did not reach the pool")
	}
	if n := len(b.modelRequests()); n != 0 {
		t.Fatalf("%d model requests before the first turn", n)
	}
	c.turn(thread, "hi")
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	checkAttested(t, b, header.StatusOK, 1)
}

func TestCodexE2EDaemonUnreachable(t *testing.T) {
	b := newBackend(t)
	missing := filepath.Join(t.TempDir(), "no-daemon.sock")
	c := startBridgeClient(t, codexHome(t, b, false), "--socket", missing)
	thread := c.session(t.TempDir())
	c.turn(thread, "hi")
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	checkAttested(t, b, header.StatusClientError, 1)
	if s := c.stderr.String(); strings.Count(s, "no attestd daemon answers on "+missing) != 1 {
		t.Errorf("stderr does not say once that the daemon is missing:\n%s", s)
	}
}

func TestCodexE2EThroughTheDaemon(t *testing.T) {
	codexBinary(t) // skip before starting a daemon
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	startDaemon(t, sock)
	b := newBackend(t)
	c := startBridgeClient(t, codexHome(t, b, false), "--socket", sock)
	thread := c.session(t.TempDir())
	c.turn(thread, "hi")
	c.turn(thread, "again")
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	checkAttested(t, b, header.StatusOK, 2)
}

// holdRE matches the bridge's debug line for a call held until a token was
// ready (see bridge/stdio/hold.go), in its text log format.
var holdRE = regexp.MustCompile(`msg="held until a token was ready" (?:\S+ )*?method=(\S+) held=(\S+)`)

// heldCalls returns, in order, the calls the bridge held and how long.
func heldCalls(log string) (methods []string, held []time.Duration) {
	for _, m := range holdRE.FindAllStringSubmatch(log, -1) {
		d, err := time.ParseDuration(m[2])
		if err != nil {
			continue
		}
		methods = append(methods, m[1])
		held = append(held, d)
	}
	return methods, held
}

// The bridge holds a cold turn only with a Source that can wait for a
// ready token: with --provider, that is the pool.
var _ stdio.ReadyWaiter = (*pool.Pool)(nil)

// A cold bridge in front of the real codex, whose tokens take 300 ms to
// make, gets every model request attested: the first turn of a session,
// and the turns and the compaction after gaps long enough for the pool to
// go cold again (with a 2 s maximum age and a 300 ms warm window: tokens
// are made for 300 ms after the last demand and are all gone 2 s later),
// because the bridge holds each call that makes a model request until a
// token is ready. The bound is 2 s, not the default, so that a loaded CI
// machine cannot turn a slow generation into a missed token: this test is
// about the hold, not its bound.
func TestCodexE2EColdTurnsAreHeld(t *testing.T) {
	const gap = 3 * time.Second // > warm window + max age + a generation
	b := newBackend(t)
	c := startBridgeClient(t, codexHome(t, b, false), "--provider", "dev", "--dev-latency", "300ms",
		"--max-age", "2s", "--warm-window", "300ms", "--hold", "2s")
	thread := c.session(t.TempDir())
	c.turn(thread, "first, cold")
	for i := range 2 {
		// Sleeping here is the scenario, not synchronization: a user
		// thinking between turns while the pool goes cold.
		time.Sleep(gap)
		c.turn(thread, fmt.Sprintf("after gap %d", i+1))
	}
	time.Sleep(gap)
	c.call("thread/compact/start", map[string]any{"threadId": thread})
	c.waitNote("turn/completed")
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	checkAttested(t, b, header.StatusOK, 4)

	// The calls after each gap found the pool cold and were held until a
	// token was made: that is what the hold adds to a cold turn.
	methods, held := heldCalls(c.stderr.String())
	t.Logf("held calls: %v %v", methods, held)
	var cold []time.Duration
	for i, m := range methods {
		if (m == "turn/start" || m == "thread/compact/start") && held[i] >= 50*time.Millisecond {
			cold = append(cold, held[i])
		}
	}
	if len(cold) < 3 {
		t.Errorf("%d calls after a gap were held for a token (%v), want 3: the pool did not go cold, so the test did not test the hold", len(cold), cold)
	}
}
