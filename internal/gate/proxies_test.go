package gate

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/proxytest"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// front is a way in to the upstream through two gates sharing one Redis:
// a and b are base URLs, each checked by its own gate.
type front struct {
	name string
	a, b string
	// strict: every X-Attestd-* a client sends is removed before the
	// upstream (nginx overwrites only the result headers' names).
	strict bool
	// websocket: the front's handshakes are tested here.
	websocket bool
}

// The table, with the real nginx (auth_request) and Caddy
// (forward_auth) in front of two gates, and two gates in proxy mode, the
// gates of each pair sharing a real Redis: one redis-server, then a
// three-node Redis Cluster.
func TestRealProxies(t *testing.T) {
	t.Parallel()
	for _, topo := range []struct {
		name  string
		start func(t *testing.T) (string, redisreplay.Mode)
	}{
		{"redis single", func(t *testing.T) (string, redisreplay.Mode) {
			return redistest.StartWith(t, redistest.Options{TCP: true}).URL(), redisreplay.Single
		}},
		{"redis cluster", func(t *testing.T) (string, redisreplay.Mode) {
			return redistest.StartCluster(t).URL(), redisreplay.Cluster
		}},
	} {
		t.Run(topo.name, func(t *testing.T) {
			t.Parallel()
			a, up := newApple(t), startUpstream(t)
			redisURL, mode := topo.start(t)
			gate := func(upstream string) *running {
				store, err := redisreplay.OpenMode(redisURL, mode, redisreplay.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { store.Close() })
				cfg := Config{Verifier: &verify.Verifier{Client: a.client(t), Replays: store}}
				if upstream != "" {
					cfg.Upstream = mustURL(t, upstream)
				}
				return startGate(t, cfg, false)
			}
			authA, authB := gate(""), gate("")
			proxyA, proxyB := gate(up.URL), gate(up.URL)
			for _, f := range []front{
				{name: "nginx", a: proxytest.StartNginx(t, proxytest.NginxAuthRequest(authA.addr, up.host())).URL(),
					b: proxytest.StartNginx(t, proxytest.NginxAuthRequest(authB.addr, up.host())).URL()},
				{name: "caddy", a: proxytest.StartCaddy(t, proxytest.CaddyForwardAuth(authA.addr, up.host())).URL(),
					b: proxytest.StartCaddy(t, proxytest.CaddyForwardAuth(authB.addr, up.host())).URL(), strict: true},
				{name: "proxy mode", a: "http://" + proxyA.addr, b: "http://" + proxyB.addr, strict: true, websocket: true},
			} {
				t.Run(f.name, func(t *testing.T) { f.run(t, a, up) })
			}
		})
	}
}

// run goes through the table for one front.
func (f front) run(t *testing.T, a *apple, up *upstream) {
	valid := a.valid(t)
	clientOwn := map[string]string{HeaderKind: "forged", "X-Attestd-Admin": "forged", HeaderTeam: "forged"}
	for _, c := range []struct {
		name, base, att string
		extra           map[string]string
		status          int
	}{
		{"valid header", f.a, valid, clientOwn, 200},
		{"no header", f.a, "", nil, 401},
		{"forged token", f.a, a.forged(t), nil, 403},
		{"same header again", f.a, valid, nil, 403},
		{"same header again, to the second gate", f.b, valid, nil, 403},
		{"apple down", f.a, a.downToken(t), nil, 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := up.reached()
			got := send(t, "GET", c.base+"/app?q=1", c.att, c.extra, "")
			if got.status != c.status {
				t.Fatalf("status %d, want %d; body %q", got.status, c.status, got.body)
			}
			if reached := up.reached() > before; reached != (c.status == 200) {
				t.Errorf("the request reached the upstream: %v", reached)
			}
			checkNoToken(t, c.att, got)
			switch c.status {
			case 200:
				f.checkUpstreamSaw(t, got.body, c.att)
			case 401:
				if got.header.Get("WWW-Authenticate") != `Attestation header="X-Oai-Attestation"` {
					t.Errorf("WWW-Authenticate %q", got.header.Get("WWW-Authenticate"))
				}
			case 503:
				if got.header.Get("Retry-After") != downRetryAfter {
					t.Errorf("Retry-After %q, want Apple's %s to reach the client", got.header.Get("Retry-After"), downRetryAfter)
				}
			}
		})
	}
	if f.websocket {
		t.Run("websocket", func(t *testing.T) {
			addr := strings.TrimPrefix(f.a, "http://")
			resp, conn, br := dialWebsocket(t, addr, a.valid(t))
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake with a valid header: %d", resp.StatusCode)
			}
			exchange(t, conn, br, "dc")
			if resp, _, _ := dialWebsocket(t, addr, a.forged(t)); resp.StatusCode != http.StatusForbidden {
				t.Errorf("handshake with a forged token: %d, want 403", resp.StatusCode)
			}
		})
	}
}

// checkUpstreamSaw checks what the upstream says reached it for a valid
// request with att: the gate's results, neither the attestation nor the
// client's own result headers.
func (f front) checkUpstreamSaw(t *testing.T, body, att string) {
	t.Helper()
	parsed, err := verify.Parse(att)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body, `upstream: GET /app?q=1 attestation="" [`) {
		t.Errorf("the upstream saw %s", body)
	}
	for _, want := range []string{`x-attestd-kind="dc"`, `x-attestd-team="` + teamID + `"`, `x-attestd-bundle="com.example.app"`,
		`x-attestd-fingerprint="` + parsed.Fingerprint() + `"`, `x-attestd-age-ms="`} {
		if !strings.Contains(body, want) {
			t.Errorf("the upstream did not see %s: %s", want, body)
		}
	}
	if strings.Contains(body, `x-attestd-key-id=`) && !strings.Contains(body, `x-attestd-key-id=""`) {
		t.Errorf("a key id for a DeviceCheck token: %s", body)
	}
	if strings.Contains(body, "{http.") {
		t.Errorf("a placeholder reached the upstream: %s", body)
	}
	switch {
	case f.strict && strings.Contains(body, "forged"):
		t.Errorf("a client's own X-Attestd-* reached the upstream: %s", body)
	case !f.strict && strings.Count(body, "forged") != 1:
		// nginx replaces the six result headers; another name passes.
		t.Errorf("want only the client's X-Attestd-Admin through nginx: %s", body)
	}
}

// The README's nginx and Caddy configurations in front of a gate that
// accepts App Attest: an app registers its key through the proxy (the
// registration paths reach the gate whole, without the check, and never
// the app), then its assertions pass the check once each and the app
// sees the key id.
func TestRealProxiesAppAttest(t *testing.T) {
	t.Parallel()
	a, up := newApple(t), startUpstream(t)
	s := aaSettings(t, a)
	s.ClientKey, s.TrustedProxies = "header:X-Forwarded-For", []string{"127.0.0.1"}
	cfg, closeAll, err := s.Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	gw := startGate(t, cfg, false)
	for _, f := range []struct{ name, base string }{
		{"nginx", proxytest.StartNginx(t, proxytest.NginxAuthRequest(gw.addr, up.host())).URL()},
		{"caddy", proxytest.StartCaddy(t, proxytest.CaddyForwardAuth(gw.addr, up.host())).URL()},
	} {
		t.Run(f.name, func(t *testing.T) {
			d := register(t, f.base)
			if n := up.reached(); n != 0 {
				t.Fatalf("the registration reached the app %d times", n)
			}
			v := d.value(t)
			got := send(t, "GET", f.base+"/app?q=1", v, nil, "")
			keyID := base64.RawURLEncoding.EncodeToString(d.key.ID())
			if got.status != 200 || !strings.Contains(got.body, `x-attestd-kind="aa"`) || !strings.Contains(got.body, `x-attestd-key-id="`+keyID+`"`) {
				t.Errorf("an App Attest request: %d %s", got.status, got.body)
			}
			if got := send(t, "GET", f.base+"/app?q=1", v, nil, ""); got.status != 403 {
				t.Errorf("the same header again: %d %s", got.status, got.body)
			}
			if got := send(t, "GET", f.base+"/appattest/keys/"+keyID, "", nil, ""); got.status != 200 || !strings.Contains(got.body, `"status":"active"`) {
				t.Errorf("the key's status through the proxy: %d %s", got.status, got.body)
			}
			if n := up.reached(); n != 1 {
				t.Errorf("the app was reached %d times, want once", n)
			}
			up.mu.Lock()
			up.calls = 0
			up.mu.Unlock()
		})
	}
	if n := len(a.Requests()); n != 0 {
		t.Errorf("Apple was asked %d times", n)
	}
}
