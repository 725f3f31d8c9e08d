package proxytest

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The answers of the auth server the tests run, chosen by the client's
// X-Test-Auth header (the proxies pass the original request's headers to
// the auth server): what "attestd gate" answers for valid, missing,
// rejected and uncheckable attestations.
const (
	admit        = "200"      // 200 with X-Attestd-Kind: devicecheck
	admitBare    = "200-bare" // 200 without result headers
	unauthorized = "401"      // 401 with WWW-Authenticate
	forbidden    = "403"
	unavailable  = "503"      // 503 with Retry-After: 7
	unavailBare  = "503-bare" // 503 without Retry-After
	broken       = "500"
)

// authServer is a Go auth server for the proxies to ask.
type authServer struct {
	*httptest.Server
	calls atomic.Int32

	mu      sync.Mutex
	lastURI string // the original request's URI, as the proxy said it
}

// startAuthServer starts the auth server, which fails t if a proxy sends
// it a request body.
func startAuthServer(t *testing.T) *authServer {
	a := &authServer{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		if body, _ := io.ReadAll(r.Body); len(body) > 0 {
			t.Errorf("the auth server got the request body %q", body)
		}
		a.mu.Lock()
		a.lastURI = r.Header.Get("X-Original-URI") + r.Header.Get("X-Forwarded-Uri")
		a.mu.Unlock()
		h := w.Header()
		switch r.Header.Get("X-Test-Auth") {
		case admit:
			// As "attestd gate" does: every result header, even empty.
			for _, name := range []string{"X-Attestd-Team", "X-Attestd-Bundle", "X-Attestd-Fingerprint", "X-Attestd-Age-Ms", "X-Attestd-Key-Id"} {
				h.Set(name, "")
			}
			h.Set("X-Attestd-Kind", "devicecheck")
			w.WriteHeader(http.StatusOK)
			return
		case admitBare:
			w.WriteHeader(http.StatusOK)
			return
		case unauthorized:
			h.Set("WWW-Authenticate", `Attestation header="X-Oai-Attestation"`)
			writeJSON(w, http.StatusUnauthorized, "missing")
		case forbidden:
			writeJSON(w, http.StatusForbidden, "rejected")
		case unavailable:
			h.Set("Retry-After", "7")
			writeJSON(w, http.StatusServiceUnavailable, "unavailable")
		case unavailBare:
			writeJSON(w, http.StatusServiceUnavailable, "unavailable")
		default:
			writeJSON(w, http.StatusInternalServerError, "broken")
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func writeJSON(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}

// host returns the auth server's 127.0.0.1:port.
func (a *authServer) host() string { return a.Listener.Addr().String() }

func (a *authServer) uri() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastURI
}

// upstream is the app behind a proxy: it answers with what it was sent,
// with the status the client's X-Test-Upstream-Status asks for, and
// accepts websocket handshakes.
type upstream struct {
	*httptest.Server
	calls atomic.Int32
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			echoWebsocket(t, w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if code := r.Header.Get("X-Test-Upstream-Status"); code == "500" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprintf(w, "upstream: %s %s kind=%q body=%q", r.Method, r.URL.RequestURI(), r.Header.Get("X-Attestd-Kind"), body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) host() string { return u.Listener.Addr().String() }

// websocketAccept is the Sec-WebSocket-Accept answering key (RFC 6455).
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// echoWebsocket accepts the handshake, says hello, and echoes one line.
// Past the 101 a proxy only carries bytes, so they need not be frames.
func echoWebsocket(t *testing.T, w http.ResponseWriter, r *http.Request) {
	conn, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n\r\nhello kind=%s\n", websocketAccept(r.Header.Get("Sec-WebSocket-Key")), r.Header.Get("X-Attestd-Kind"))
	if err := rw.Flush(); err != nil {
		t.Errorf("upstream: write the handshake: %v", err)
		return
	}
	line, err := rw.ReadString('\n')
	if err != nil {
		t.Errorf("upstream: read from the client: %v", err)
		return
	}
	rw.WriteString("echo " + line)
	rw.Flush()
}

// fromTemplate fills in a configuration in testdata for proxies in front
// of upstream that ask gate ("host:port").
func fromTemplate(t *testing.T, name, gate, upstream string) func(Env) string {
	t.Helper()
	return example(name, gate, upstream)
}

// deadAddr returns a loopback address nothing listens on a moment later.
func deadAddr(t *testing.T) string {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// authCase is one request through a proxy that asks the auth server.
type authCase struct {
	name   string
	auth   string // the auth server's answer: admit, forbidden, …
	method string // GET unless set
	body   string
	header map[string]string // more request headers

	wantStatus   int
	wantBody     string            // the exact body, unless ""
	bodyLacks    string            // what the body must not hold, unless ""
	wantHeader   map[string]string // "" means absent
	wantUpstream bool              // whether the request reaches the upstream
}

// run sends the case's request to proxy and checks the answer.
func (c authCase) run(t *testing.T, proxy *Proxy, auth *authServer, up *upstream) {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	path := "/app/" + strings.ReplaceAll(c.name, " ", "-") + "?q=1"
	req, err := http.NewRequest(method, proxy.URL()+path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Auth", c.auth)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	authCalls, upCalls := auth.calls.Load(), up.calls.Load()
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.wantStatus {
		t.Errorf("status %d, want %d; body %q", resp.StatusCode, c.wantStatus, body)
	}
	if c.wantBody != "" && string(body) != c.wantBody {
		t.Errorf("body %q, want %q", body, c.wantBody)
	}
	if c.bodyLacks != "" && strings.Contains(string(body), c.bodyLacks) {
		t.Errorf("body %q holds %q", body, c.bodyLacks)
	}
	for k, want := range c.wantHeader {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
	if reached := up.calls.Load() > upCalls; reached != c.wantUpstream {
		t.Errorf("request reached the upstream: %v, want %v", reached, c.wantUpstream)
	}
	if auth.calls.Load() > authCalls && auth.uri() != "" && auth.uri() != path {
		t.Errorf("the auth server was told the request was for %q, want %q", auth.uri(), path)
	}
}

func TestBinaryMissing(t *testing.T) {
	t.Parallel()
	_, err := binary("proxytest-no-such-binary", "PROXYTEST_NO_SUCH_VARIABLE", t.TempDir())
	if err == nil {
		t.Fatal("found a binary that does not exist")
	}
	for _, want := range []string{"proxytest-no-such-binary not found on PATH or in ", "make test", "PROXYTEST_NO_SUCH_VARIABLE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// kinds are the proxies, each with a configuration answering 204 and
// files it writes in its directory.
var kinds = []struct {
	name      string
	start     func(TB, func(Env) string) *Proxy
	launch    func(TB, func(Env) string) launch
	noContent func(Env) string
	files     []string
}{
	{"nginx", StartNginx, nginxLaunch, func(env Env) string {
		return "server { listen " + env.Addr + "; return 204; }"
	}, []string{"nginx.conf", "nginx.pid", "access.log", "proxy_temp", "client_body_temp"}},
	{"caddy", StartCaddy, caddyLaunch, func(env Env) string {
		return fmt.Sprintf("http://:%d {\n\trespond 204\n}", env.Port)
	}, []string{"Caddyfile", "caddy.pid", "config/caddy/autosave.json"}},
}

// getStatus returns the status of a GET of url.
func getStatus(t *testing.T, url string) int {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A proxy whose port another process took before it could bind it is
// started again on another port.
func TestPortTaken(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			l := k.launch(t, k.noContent)
			var calls atomic.Int32
			l.port = func() (int, error) {
				if calls.Add(1) == 1 {
					return taken.Addr().(*net.TCPAddr).Port, nil
				}
				return freePort()
			}
			p := start(t, l)
			if p.Addr == taken.Addr().String() || calls.Load() != 2 {
				t.Fatalf("%s started on %s after %d ports; the taken one was %s", p.Name, p.Addr, calls.Load(), taken.Addr())
			}
			if code := getStatus(t, p.URL()); code != http.StatusNoContent {
				t.Fatalf("status %d, want 204", code)
			}
		})
	}
}

// A proxy answers, writes its files in its directory,
// and is gone after Stop.
func TestStartStop(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			p := k.start(t, k.noContent)
			if code := getStatus(t, p.URL()); code != http.StatusNoContent {
				t.Fatalf("status %d, want 204", code)
			}
			for _, f := range k.files {
				if _, err := os.Stat(filepath.Join(p.Dir, f)); err != nil {
					t.Errorf("%s wrote no %s in its directory: %v", p, f, err)
				}
			}
			p.Stop()
			p.Stop() // twice is fine
			select {
			case <-p.done:
			default:
				t.Errorf("%s still running after Stop", p)
			}
		})
	}
}
