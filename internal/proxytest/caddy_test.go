package proxytest

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

func TestCaddyProxiesToUpstream(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	caddy := StartCaddy(t, func(env Env) string {
		return fmt.Sprintf("http://:%d {\n\treverse_proxy %s\n}", env.Port, up.host())
	})
	resp, err := http.Get(caddy.URL() + "/hello?x=1")
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

// testdata/caddy-forward-auth.Caddyfile: 2xx admits with the auth
// server's result header (never the client's), every other answer reaches
// the client as the auth server gave it, body and headers, and a down auth
// server is a 502.
func TestCaddyForwardAuthExample(t *testing.T) {
	t.Parallel()
	auth, up := startAuthServer(t), startUpstream(t)
	caddy := StartCaddy(t, fromTemplate(t, "caddy-forward-auth.Caddyfile", auth.host(), up.host()))
	forged := map[string]string{"X-Attestd-Kind": "forged"}
	for _, c := range []authCase{
		{name: "admitted", auth: admit, header: forged, wantStatus: 200,
			wantBody: `upstream: GET /app/admitted?q=1 kind="devicecheck" body=""`, wantUpstream: true},
		// Caddy 2.6 sets a copied header the answer lacks to the text
		// "{http.reverse_proxy.header.X-Attestd-Kind}", later versions
		// leave it unset; either way the client's own is gone.
		{name: "admitted without result", auth: admitBare, header: forged, wantStatus: 200,
			bodyLacks: "forged", wantUpstream: true},
		{name: "post", auth: admit, method: http.MethodPost, body: "the body", wantStatus: 200,
			wantBody: `upstream: POST /app/post?q=1 kind="devicecheck" body="the body"`, wantUpstream: true},
		{name: "unauthorized", auth: unauthorized, wantStatus: 401, wantBody: `{"error":"missing"}` + "\n",
			wantHeader: map[string]string{"WWW-Authenticate": `Attestation header="X-Oai-Attestation"`}},
		{name: "forbidden", auth: forbidden, wantStatus: 403, wantBody: `{"error":"rejected"}` + "\n"},
		{name: "unavailable", auth: unavailable, wantStatus: 503, wantBody: `{"error":"unavailable"}` + "\n",
			wantHeader: map[string]string{"Retry-After": "7", "Content-Type": "application/json"}},
		{name: "unavailable without retry-after", auth: unavailBare, wantStatus: 503, wantHeader: map[string]string{"Retry-After": ""}},
		{name: "broken", auth: broken, wantStatus: 500},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, caddy, auth, up) })
	}

	t.Run("auth server down", func(t *testing.T) {
		t.Parallel()
		caddy := StartCaddy(t, fromTemplate(t, "caddy-forward-auth.Caddyfile", deadAddr(t), up.host()))
		c := authCase{name: "down", auth: admit, wantStatus: 502}
		c.run(t, caddy, auth, up)
	})
}
