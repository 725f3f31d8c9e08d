package gate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/verify"
)

// Proxy mode: a valid request reaches the upstream without the
// attestation header, with the gate's result headers and none of the
// client's own X-Attestd-*; the others are answered by the gate and never
// reach it.
func TestProxy(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	gw := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL+"/base")}, true)
	for _, c := range []struct {
		name, method, att, body string
		extra                   map[string]string
		status                  int
		wantBody                string // the start of the upstream's answer
	}{
		{name: "valid", method: "GET", att: a.valid(t), status: 200, wantBody: `upstream: GET /base/app?q=1 attestation="" [x-attestd-age-ms=`},
		{name: "client's own result headers", method: "GET", att: a.valid(t), status: 200,
			extra:    map[string]string{HeaderKind: "forged", "X-Attestd-Admin": "yes", "x-attestd-team": "forged"},
			wantBody: `upstream: GET /base/app?q=1 attestation="" [x-attestd-age-ms=`},
		{name: "post", method: "POST", att: a.valid(t), body: "the body", status: 200, wantBody: `upstream: POST /base/app?q=1`},
		{name: "no header", method: "GET", status: 401},
		{name: "forged", method: "POST", att: a.forged(t), body: "never sent", status: 403},
		{name: "apple down", method: "GET", att: a.downToken(t), status: 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := up.reached()
			got := send(t, c.method, "http://"+gw.addr+"/app?q=1", c.att, c.extra, c.body)
			if got.status != c.status {
				t.Fatalf("status %d, want %d; body %s", got.status, c.status, got.body)
			}
			if reached := up.reached() > before; reached != (c.status == 200) {
				t.Fatalf("the upstream was reached: %v", reached)
			}
			if c.status != 200 {
				if c.status == 503 && got.header.Get("Retry-After") != downRetryAfter {
					t.Errorf("Retry-After %q, want %s", got.header.Get("Retry-After"), downRetryAfter)
				}
				return
			}
			if !strings.HasPrefix(got.body, c.wantBody) {
				t.Errorf("upstream saw %s\nwant it to start with %s", got.body, c.wantBody)
			}
			if strings.Contains(got.body, "forged") || strings.Contains(got.body, "admin") {
				t.Errorf("a client's own X-Attestd-* header reached the upstream: %s", got.body)
			}
			for _, want := range []string{`x-attestd-kind="dc"`, `x-attestd-team="` + teamID + `"`, `x-attestd-bundle="com.example.app"`, `x-attestd-key-id=""`, `x-attestd-fingerprint="`} {
				if !strings.Contains(got.body, want) {
					t.Errorf("the upstream saw no %s: %s", want, got.body)
				}
			}
			if c.body != "" && !strings.HasSuffix(got.body, fmt.Sprintf("body=%q", c.body)) {
				t.Errorf("the upstream did not get the body: %s", got.body)
			}
		})
	}
}

// X-Forwarded-For: the gate's own view of the peer, extending the
// client's header only when the peer is a trusted proxy.
func TestProxyForwardedFor(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := httpEchoHeader(t, "X-Forwarded-For")
	untrusted := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up)}, false)
	trusted := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up), TrustedProxies: mustPrefixes(t, "127.0.0.0/8")}, false)
	spoof := map[string]string{"X-Forwarded-For": "203.0.113.9"}
	if got := send(t, "GET", "http://"+untrusted.addr+"/", a.valid(t), spoof, ""); got.body != "127.0.0.1" {
		t.Errorf("untrusted peer: the upstream saw X-Forwarded-For %q, want 127.0.0.1 alone", got.body)
	}
	if got := send(t, "GET", "http://"+trusted.addr+"/", a.valid(t), spoof, ""); got.body != "203.0.113.9, 127.0.0.1" {
		t.Errorf("trusted peer: the upstream saw X-Forwarded-For %q, want the client's extended", got.body)
	}
}

// httpEchoHeader starts an upstream answering with the request's header
// name.
func httpEchoHeader(t testing.TB, name string) string {
	up := startUpstream(t)
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Header.Get(name)) })
	return up.URL
}

// An upstream that does not answer is a 502 from the gate.
func TestProxyUpstreamDown(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	ln := listen(t)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	gw := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, dead)}, false)
	if got := send(t, "GET", "http://"+gw.addr+"/", a.valid(t), nil, ""); got.status != 502 || !strings.Contains(got.body, "upstream_unavailable") {
		t.Errorf("upstream down: %d %s", got.status, got.body)
	}
}

// Websocket handshakes are checked, and a valid one is upgraded with
// frames flowing both ways; a streamed answer reaches the client before
// the upstream ends it.
func TestProxyWebsocketAndStream(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	gw := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL)}, false)

	resp, conn, br := dialWebsocket(t, gw.addr, a.valid(t))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake with a valid header: %d", resp.StatusCode)
	}
	exchange(t, conn, br, "dc")
	for _, att := range []string{"", a.forged(t)} {
		before := up.reached()
		if resp, _, _ := dialWebsocket(t, gw.addr, att); resp.StatusCode == http.StatusSwitchingProtocols || up.reached() != before {
			t.Errorf("handshake with %.20q: %d, upstream reached %v", att, resp.StatusCode, up.reached() != before)
		}
	}

	stream, body := openStream(t, gw.addr, a.valid(t))
	defer stream.Close()
	if line, err := body.ReadString('\n'); err != nil || line != "data: first dc\n" {
		t.Fatalf("the stream's first line: %q, %v", line, err)
	}
}

// openStream starts a GET of the upstream's /stream through the gate and
// returns the connection and the answer's body, once the headers came.
func openStream(t testing.TB, addr, att string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: gate\r\n%s: %s\r\n\r\n", verify.HeaderName, att)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v, %v", resp, err)
	}
	return conn, bufio.NewReader(resp.Body)
}

// A slow request body in proxy mode: each read waits at most
// BodyReadTimeout, then the client is cut off.
func TestProxySlowBodyCutOff(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	gw := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL), BodyReadTimeout: 300 * time.Millisecond}, false)
	connDeadline := 30 * time.Second // a bound far beyond the 300 ms, not a timing
	conn, err := net.DialTimeout("tcp", gw.addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(connDeadline))
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: gate\r\nContent-Length: 1000\r\n%s: %s\r\n\r\nfirst bytes", verify.HeaderName, a.valid(t))
	// Nothing more is sent: the gate gives up on the body and closes the
	// connection, long before the bound this test allows.
	if _, err := io.Copy(io.Discard, conn); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the gate held the connection of a stalled body for %v", connDeadline)
		}
	}
}

// SIGTERM's drain: /readyz turns 503 at once; a websocket and a stream
// keep flowing during the grace, and are closed when it ends; Serve
// returns nil.
func TestDrainGivesStreamsTheirGrace(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	grace := 2 * time.Second
	gw := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL), ShutdownGrace: grace}, true)
	resp, ws, wsr := dialWebsocket(t, gw.addr, a.valid(t))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d", resp.StatusCode)
	}
	exchange(t, ws, wsr, "dc")
	stream, body := openStream(t, gw.addr, a.valid(t))
	defer stream.Close()
	body.ReadString('\n')

	gw.stop()
	waitFor(t, "/readyz to say 503", func() bool {
		return send(t, "GET", "http://"+gw.admin+"/readyz", "", nil, "").status == 503
	})
	// Within the grace the websocket still carries frames both ways.
	if err := writeFrame(ws, true, []byte("during the drain")); err != nil {
		t.Fatal(err)
	}
	if echo, err := readFrame(wsr); err != nil || string(echo) != "echo during the drain" {
		t.Fatalf("websocket during the drain: %q, %v", echo, err)
	}
	// Then both are closed, and Serve returns.
	if _, err := readFrame(wsr); err == nil {
		t.Errorf("the websocket is still open after the grace")
	}
	if rest, err := io.ReadAll(body); err == nil && strings.Contains(string(rest), "data:") {
		t.Errorf("the stream went on after the grace: %q", rest)
	}
	if err := gw.wait(t); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// A drain with nothing open ends at once, not after the grace.
func TestDrainWithoutStreamsIsQuick(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	up := startUpstream(t)
	gw := startGate(t, Config{Verifier: a.verifier(t), Upstream: mustURL(t, up.URL), ShutdownGrace: time.Hour}, false)
	resp, ws, wsr := dialWebsocket(t, gw.addr, a.valid(t))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d", resp.StatusCode)
	}
	exchange(t, ws, wsr, "dc")
	ws.Close() // the only stream ends before the drain
	waitFor(t, "the websocket to be let go", func() bool { return gw.g.streams.open() == 0 })
	gw.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case err := <-gw.done:
		gw.done <- err
	case <-ctx.Done():
		t.Fatal("Serve still draining a minute later, with nothing open and an hour's grace")
	}
}

// waitFor polls cond (every 10 ms, for at most a minute) until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
