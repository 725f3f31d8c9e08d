package proxytest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestNginxProxiesToUpstream(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	nginx := StartNginx(t, func(env Env) string {
		return fmt.Sprintf("server {\n    listen %s;\n    location / { proxy_pass http://%s; }\n}", env.Addr, up.host())
	})
	resp, err := http.Get(nginx.URL() + "/hello?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if want := `upstream: GET /hello?x=1 kind="" body=""`; resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

// What nginx's auth_request does with each answer, alone: 2xx admits,
// 401 (with WWW-Authenticate) and 403 reach the client, and anything
// else, 503 and its Retry-After included, becomes a bare 500.
func TestNginxAuthRequestAlone(t *testing.T) {
	t.Parallel()
	auth, up := startAuthServer(t), startUpstream(t)
	nginx := StartNginx(t, func(env Env) string {
		return fmt.Sprintf(`server {
    listen %s;
    location / {
        auth_request /_auth;
        proxy_pass http://%s;
    }
    location = /_auth {
        internal;
        proxy_pass http://%s/auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
}`, env.Addr, up.host(), auth.host())
	})
	for _, c := range []authCase{
		{name: "admitted", auth: admit, wantStatus: 200, wantBody: `upstream: GET /app/admitted?q=1 kind="" body=""`, wantUpstream: true},
		{name: "unauthorized", auth: unauthorized, wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": `Attestation header="X-Oai-Attestation"`}},
		{name: "forbidden", auth: forbidden, wantStatus: 403},
		{name: "unavailable", auth: unavailable, wantStatus: 500, wantHeader: map[string]string{"Retry-After": ""}},
		{name: "broken", auth: broken, wantStatus: 500},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, nginx, auth, up) })
	}
}

// testdata/nginx-auth-request.conf passes the auth server's 503 and
// Retry-After through, answers 503 when the auth server is down, and
// hands the upstream the auth server's result header, never the client's.
func TestNginxAuthRequestExample(t *testing.T) {
	t.Parallel()
	auth, up := startAuthServer(t), startUpstream(t)
	nginx := StartNginx(t, fromTemplate(t, "nginx-auth-request.conf", auth.host(), up.host()))
	forged := map[string]string{"X-Attestd-Kind": "forged"}
	for _, c := range []authCase{
		{name: "admitted", auth: admit, header: forged, wantStatus: 200,
			wantBody: `upstream: GET /app/admitted?q=1 kind="devicecheck" body=""`, wantUpstream: true},
		{name: "admitted without result", auth: admitBare, header: forged, wantStatus: 200,
			wantBody: `upstream: GET /app/admitted-without-result?q=1 kind="" body=""`, wantUpstream: true},
		{name: "post", auth: admit, method: http.MethodPost, body: "the body", wantStatus: 200,
			wantBody: `upstream: POST /app/post?q=1 kind="devicecheck" body="the body"`, wantUpstream: true},
		{name: "upstream error", auth: admit, header: map[string]string{"X-Test-Upstream-Status": "500"}, wantStatus: 500,
			wantBody: `upstream: GET /app/upstream-error?q=1 kind="devicecheck" body=""`, wantUpstream: true},
		{name: "unauthorized", auth: unauthorized, wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": `Attestation header="X-Oai-Attestation"`}},
		{name: "forbidden", auth: forbidden, wantStatus: 403},
		{name: "unavailable", auth: unavailable, wantStatus: 503, wantHeader: map[string]string{"Retry-After": "7"}},
		{name: "unavailable without retry-after", auth: unavailBare, wantStatus: 503, wantHeader: map[string]string{"Retry-After": ""}},
		{name: "broken", auth: broken, wantStatus: 503, wantHeader: map[string]string{"Retry-After": ""}},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, nginx, auth, up) })
	}

	t.Run("auth server down", func(t *testing.T) {
		t.Parallel()
		nginx := StartNginx(t, fromTemplate(t, "nginx-auth-request.conf", deadAddr(t), up.host()))
		c := authCase{name: "down", auth: admit, wantStatus: 503, wantHeader: map[string]string{"Retry-After": ""}}
		c.run(t, nginx, auth, up)
	})
}

// The example's websocket handshake is checked, then upgraded: bytes flow
// both ways between the client and the upstream.
func TestNginxWebsocket(t *testing.T) {
	t.Parallel()
	auth, up := startAuthServer(t), startUpstream(t)
	nginx := StartNginx(t, fromTemplate(t, "nginx-auth-request.conf", auth.host(), up.host()))
	for _, tc := range []struct {
		auth       string
		wantStatus int
	}{
		{admit, http.StatusSwitchingProtocols},
		{unauthorized, http.StatusUnauthorized},
		{unavailable, http.StatusServiceUnavailable},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", nginx.Addr, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(time.Minute))
			const key = "dGhlIHNhbXBsZSBub25jZQ=="
			fmt.Fprintf(conn, "GET /backend-api/codex/responses HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nX-Test-Auth: %s\r\n\r\n", nginx.Addr, key, tc.auth)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusSwitchingProtocols {
				return
			}
			if got := resp.Header.Get("Sec-WebSocket-Accept"); got != websocketAccept(key) {
				t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, websocketAccept(key))
			}
			if hello, err := br.ReadString('\n'); err != nil || hello != "hello kind=devicecheck\n" {
				t.Fatalf("from the upstream: %q, %v", hello, err)
			}
			fmt.Fprintf(conn, "ping\n")
			if echo, err := br.ReadString('\n'); err != nil || echo != "echo ping\n" {
				t.Fatalf("echo from the upstream: %q, %v", echo, err)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
				t.Fatalf("after the upstream closed: %q, %v", rest, err)
			}
		})
	}
}
