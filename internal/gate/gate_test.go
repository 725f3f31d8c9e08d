package gate

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/verifyprom"
)

// verifier returns a Verifier asking a, with its own replay cache.
func (a *apple) verifier(t testing.TB) *verify.Verifier {
	return &verify.Verifier{Client: a.client(t), Replays: verify.NewMemoryReplayCache()}
}

// The forward-auth answers: 200 with every result header for a valid
// attestation, the middleware's 401, 403 and 503 (with Retry-After)
// otherwise, at /auth and below it, for any method.
func TestForwardAuth(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	gw := startGate(t, Config{Verifier: a.verifier(t)}, false)
	replayed := a.valid(t)
	if got := send(t, "GET", "http://"+gw.addr+"/auth", replayed, nil, ""); got.status != 200 {
		t.Fatalf("first use: %d %s", got.status, got.body)
	}
	for _, c := range []struct {
		name, method, path, att string
		extra                   map[string]string
		status                  int
		reason                  string
	}{
		{name: "valid", path: "/auth", att: a.valid(t), status: 200},
		{name: "valid, path below /auth", method: "POST", path: "/auth/backend-api/codex/responses?x=1", att: a.valid(t), status: 200},
		{name: "valid, client's own result headers", path: "/auth", att: a.valid(t), status: 200,
			extra: map[string]string{HeaderKind: "forged", "X-Attestd-Admin": "yes"}},
		{name: "no header", path: "/auth", status: 401, reason: "missing"},
		{name: "malformed", path: "/auth", att: "v1.!!", status: 401, reason: "malformed"},
		{name: "client status", path: "/auth", att: `{"v":1,"s":1}`, status: 401, reason: "client_status"},
		{name: "forged", path: "/auth", att: a.forged(t), status: 403, reason: "bad_device_token"},
		{name: "replayed", path: "/auth", att: replayed, status: 403, reason: "replay"},
		{name: "dev token", path: "/auth", att: envelope(t, header.KindDev, []byte("a development token")), status: 403, reason: "dev_token"},
		{name: "apple down", path: "/auth", att: a.downToken(t), status: 503, reason: "apple_unavailable"},
		{name: "not the check", path: "/other", att: a.valid(t), status: 404},
		{name: "health without admin", path: "/healthz", status: 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = "GET"
			}
			got := send(t, method, "http://"+gw.addr+c.path, c.att, c.extra, "")
			if got.status != c.status {
				t.Fatalf("status %d, want %d; body %s", got.status, c.status, got.body)
			}
			checkNoToken(t, c.att, got)
			switch c.status {
			case 200:
				if c.path == "/healthz" {
					return
				}
				checkResultHeaders(t, got.header, c.att)
				if got.body != "" {
					t.Errorf("a 200 with a body: %q", got.body)
				}
			case 401:
				if got.header.Get("WWW-Authenticate") != `Attestation header="X-Oai-Attestation"` {
					t.Errorf("WWW-Authenticate %q", got.header.Get("WWW-Authenticate"))
				}
			case 503:
				if got.header.Get("Retry-After") != downRetryAfter {
					t.Errorf("Retry-After %q, want Apple's %s", got.header.Get("Retry-After"), downRetryAfter)
				}
			}
			if c.reason != "" {
				var body struct{ Error, Reason string }
				if err := json.Unmarshal([]byte(got.body), &body); err != nil || body.Reason != c.reason || body.Error == "" {
					t.Errorf("body %q (%v), want the reason %q", got.body, err, c.reason)
				}
				for _, h := range ResultHeaders {
					if _, ok := got.header[h]; ok {
						t.Errorf("a %d answer has the result header %s", c.status, h)
					}
				}
			}
		})
	}
}

// checkResultHeaders checks every result header of an admitted request
// with the attestation att: all present, each with its value.
func checkResultHeaders(t testing.TB, h http.Header, att string) {
	t.Helper()
	a, err := verify.Parse(att)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{HeaderKind: "dc", HeaderTeam: teamID, HeaderBundle: "com.example.app", HeaderFingerprint: a.Fingerprint(), HeaderKeyID: ""}
	for _, name := range ResultHeaders {
		got, ok := h[name]
		if !ok || len(got) != 1 {
			t.Errorf("result header %s: %q, want exactly one, present even when empty", name, got)
			continue
		}
		if w, fixed := want[name]; fixed && got[0] != w {
			t.Errorf("%s: %q, want %q", name, got[0], w)
		}
	}
	var age int64
	if _, err := fmt.Sscan(h.Get(HeaderAgeMs), &age); err != nil || age < -int64(verify.MaxClockSkew/time.Millisecond) || age > 60_000 {
		t.Errorf("%s: %q", HeaderAgeMs, h.Get(HeaderAgeMs))
	}
}

// checkNoToken fails if the answer carries the token of att, in any form.
func checkNoToken(t testing.TB, att string, got answer) {
	t.Helper()
	a, _ := verify.Parse(att)
	if a == nil || len(a.Token) == 0 {
		return
	}
	value := strings.TrimSuffix(strings.TrimPrefix(att, `{"v":1,"s":0,"t":"`), `"}`)
	for _, needle := range []string{value, string(a.Token), fmt.Sprintf("%x", a.Token)} {
		if strings.Contains(got.body, needle) {
			t.Errorf("the body holds the token")
		}
		for name, vals := range got.header {
			if strings.Contains(strings.Join(vals, ","), needle) {
				t.Errorf("header %s holds the token", name)
			}
		}
	}
}

// A forward-auth request with a body is answered without reading it, and
// its connection is closed: a client sending a body slowly holds nothing.
func TestForwardAuthLeavesBodyUnread(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	gw := startGate(t, Config{Verifier: a.verifier(t)}, false)
	conn, err := net.DialTimeout("tcp", gw.addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	// The body is announced and never sent.
	fmt.Fprintf(conn, "POST /auth HTTP/1.1\r\nHost: gate\r\nContent-Length: 100000\r\n%s: %s\r\n\r\n", verify.HeaderName, a.valid(t))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("status %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("after the answer: %q, %v; want the connection closed", rest, err)
	}
}

// A client that sends its headers a byte at a time is cut off after
// ReadHeaderTimeout.
func TestSlowHeadersCutOff(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	gw := startGate(t, Config{Verifier: a.verifier(t), ReadHeaderTimeout: 300 * time.Millisecond}, false)
	conn, err := net.DialTimeout("tcp", gw.addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(conn) // returns once the gate closes the connection
		closed <- err
	}()
	slow := "GET /auth HTTP/1.1\r\nHost: gate\r\nX-Padding: " + strings.Repeat("a", 600) + "\r\n\r\n"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(slow); i++ {
		select {
		case err := <-closed:
			if i >= len(slow)-1 {
				t.Fatalf("the connection was closed only after the whole request: %v", err)
			}
			return // cut off while still sending
		case <-tick.C:
			conn.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := conn.Write([]byte{slow[i]}); err != nil {
				return // cut off: the gate closed the connection
			}
		}
	}
	t.Fatalf("sent all %d bytes at one a tick and the gate still held the connection", len(slow))
}

// The largest valid attestation passes the header limit; a request whose
// headers exceed it gets 431.
func TestHeaderLimit(t *testing.T) {
	t.Parallel()
	cfg := Config{Verifier: &verify.Verifier{NoClient: true, AllowDev: true, Replays: verify.NewMemoryReplayCache()}}
	gw := startGate(t, cfg, false)
	largest := largestEnvelope(t)
	if got := send(t, "GET", "http://"+gw.addr+"/auth", largest, nil, ""); got.status != 200 {
		t.Errorf("an attestation of %d bytes: %d %s", len(largest), got.status, got.body)
	}
	huge := map[string]string{"X-Padding": strings.Repeat("a", DefaultMaxHeaderBytes+8<<10)}
	if got := send(t, "GET", "http://"+gw.addr+"/auth", "", huge, ""); got.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over the limit: %d, want 431", got.status)
	}
}

// The client key function names each checked request's client.
func TestClientKeyReachesVerifier(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	var calls atomic.Int32
	key := func(r *http.Request) string {
		calls.Add(1)
		return "client-" + r.Header.Get("X-Client")
	}
	gw := startGate(t, Config{Verifier: a.verifier(t), ClientKey: key}, false)
	send(t, "GET", "http://"+gw.addr+"/auth", a.valid(t), map[string]string{"X-Client": "1"}, "")
	if calls.Load() != 1 {
		t.Fatalf("the client key was asked %d times for one check", calls.Load())
	}
}

// Mounted handlers are served unchecked, in both modes; in proxy mode
// their paths are not forwarded. Mounts over the gate's own paths are
// refused.
func TestMount(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "mounted %s", r.URL.Path) })
	mount := map[string]http.Handler{"/appattest/": hello, "/exact": hello}
	fwd := startGate(t, Config{Verifier: a.verifier(t), Mount: mount}, false)
	proxied := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL), Mount: mount}, false)
	for _, gw := range []*running{fwd, proxied} {
		for path, want := range map[string]string{"/appattest/challenge": "mounted /appattest/challenge", "/exact": "mounted /exact"} {
			if got := send(t, "POST", "http://"+gw.addr+path, "", nil, ""); got.status != 200 || got.body != want {
				t.Errorf("%s: %d %q, want 200 %q", path, got.status, got.body, want)
			}
		}
	}
	if got := send(t, "GET", "http://"+proxied.addr+"/exact/below", "", nil, ""); got.status != 401 {
		t.Errorf("a path below an exact mount: %d, want the check's 401", got.status)
	}
	if up.reached() != 0 {
		t.Errorf("the upstream was reached %d times", up.reached())
	}
	for _, bad := range []string{"/auth", "/auth/", "/", "/healthz", "relative/"} {
		if _, err := New(Config{Verifier: a.verifier(t), Mount: map[string]http.Handler{bad: hello}}); err == nil {
			t.Errorf("mount %q accepted", bad)
		}
	}
	if _, err := New(Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL), Mount: map[string]http.Handler{"/healthz": hello}}); err != nil {
		t.Errorf("proxy mode, mount /healthz: %v (the health paths are the admin listener's)", err)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// New refuses a Verifier the middleware would refuse, rather than panic.
func TestNewRefusesVerifier(t *testing.T) {
	t.Parallel()
	for _, v := range []*verify.Verifier{nil, {}, {Client: &verify.Client{}}} {
		if _, err := New(Config{Verifier: v}); err == nil {
			t.Errorf("New accepted %+v", v)
		}
	}
}

// /healthz, /readyz and /metrics: on the main listener in forward-auth
// mode without an admin listener; only on the admin listener otherwise.
// /readyz runs the Ready checks; /metrics has the gate's and verify's
// metrics with fixed labels.
func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	reg := prometheus.NewRegistry()
	vp := verifyprom.New()
	reg.MustRegister(vp)
	v := a.verifier(t)
	v.Observer = vp
	var storeDown atomic.Bool
	ready := []ReadyCheck{{Name: "replay_store", Check: func(context.Context) error {
		if storeDown.Load() {
			return errors.New("redis: connection refused")
		}
		return nil
	}}}
	fwd := startGate(t, Config{Verifier: v, Ready: ready, Registry: reg}, false)
	fwdAdmin := startGate(t, Config{Verifier: a.verifier(t)}, true)
	proxied := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL)}, true)

	for _, c := range []struct {
		addr, path string
		status     int
	}{
		{fwd.addr, "/healthz", 200}, {fwd.addr, "/readyz", 200}, {fwd.addr, "/metrics", 200},
		{fwdAdmin.addr, "/healthz", 404}, {fwdAdmin.admin, "/healthz", 200}, {fwdAdmin.admin, "/readyz", 200},
		{fwdAdmin.admin, "/auth", 404},
		{proxied.addr, "/healthz", 401}, // the upstream's path, checked like any other
		{proxied.admin, "/healthz", 200}, {proxied.admin, "/metrics", 200},
	} {
		if got := send(t, "GET", "http://"+c.addr+c.path, "", nil, ""); got.status != c.status {
			t.Errorf("GET %s%s: %d, want %d", c.addr, c.path, got.status, c.status)
		}
	}
	storeDown.Store(true)
	got := send(t, "GET", "http://"+fwd.addr+"/readyz", "", nil, "")
	if got.status != 503 || !strings.Contains(got.body, `"reason":"replay_store"`) || !strings.Contains(got.body, "connection refused") {
		t.Errorf("/readyz with the store down: %d %s", got.status, got.body)
	}
	send(t, "GET", "http://"+fwd.addr+"/auth", a.valid(t), nil, "")
	send(t, "GET", "http://"+fwd.addr+"/auth", a.forged(t), nil, "")
	metrics := send(t, "GET", "http://"+fwd.addr+"/metrics", "", nil, "").body
	for _, want := range []string{
		`attestd_gate_requests_total{code="200",handler="auth"} 1`,
		`attestd_gate_requests_total{code="403",handler="auth"} 1`,
		`attestd_gate_requests_total{code="503",handler="readyz"} 1`,
		`attestd_gate_request_duration_seconds_count{handler="auth"} 2`,
		`attestd_gate_open_streams 0`,
		`attestd_verify_checks_total{kind="dc",outcome="valid",reason="none"} 1`,
		`attestd_verify_checks_total{kind="dc",outcome="rejected",reason="bad_device_token"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestCodeLabel(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{0: "none", 101: "101", 200: "200", 201: "2xx", 302: "3xx", 401: "401", 418: "4xx", 503: "503", 599: "5xx", 600: "other", -1: "other"} {
		if got := codeLabel(status); got != want {
			t.Errorf("codeLabel(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                "",
		"com.example.app": "com.example.app",
		"a b":             "a%20b",
		"100%":            "100%25",
		"x\r\nSet-Cookie": "x%0D%0ASet-Cookie",
		"é":               "%C3%A9",
		"\x00\x7f":        "%00%7F",
	} {
		if got := headerSafe(in); got != want {
			t.Errorf("headerSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// largestEnvelope returns the longest valid envelope: a "v1." value of
// header.MaxValueLen bytes, less what base64 cannot fill.
func largestEnvelope(t testing.TB) string {
	t.Helper()
	for n := header.MaxValueLen * 3 / 4; n > 0; n-- {
		tok := make([]byte, n)
		rand.Read(tok)
		v, err := header.Encode(header.Value{Kind: header.KindDev, Token: tok, GeneratedAt: time.Now(), BundleID: "com.example.app", TeamID: teamID})
		if err == nil {
			if len(v) < header.MaxValueLen-3 {
				t.Fatalf("the largest value found is %d bytes, want about %d", len(v), header.MaxValueLen)
			}
			return `{"v":1,"s":0,"t":"` + v + `"}`
		}
	}
	t.Fatal("no token fits a header value")
	return ""
}
