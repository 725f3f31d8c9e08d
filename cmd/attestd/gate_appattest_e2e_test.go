package main

// The whole App Attest path on Linux, with the simulator: the helper
// ("attestd serve --provider appattest-sim" on a socket) registers its key
// with "attestd gate" and sends assertions that the gate checks locally,
// with a fake Apple that must never be asked about them.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/pool"
	aaprovider "github.com/attestd/attestd/bridge/provider/appattest"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/internal/appattestsim"
	"github.com/attestd/attestd/internal/appattestsim/regtest"
	"github.com/attestd/attestd/internal/daemon"
	"github.com/attestd/attestd/internal/gate/gatetest"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/devicechecktest"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// aaPatience bounds every wait of these tests: a registration after the
// helper's backoff, a gate starting.
const aaPatience = time.Minute

// aaAppID is the App ID of the simulator's keys.
const aaAppID = verifyTeamID + ".dev.attestd.e2e"

// aaGateArgs are the flags of a gate for the simulator's keys and for
// development tokens, on redisURL (from the environment, as a deployment
// passes secrets), with the key of a fake Apple so that any call to Apple
// is seen; the fake accepts every well-formed token.
func aaGateArgs(t *testing.T, redisURL string) (apple *devicechecktest.Server, env, args []string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "development-root.pem")
	if err := os.WriteFile(root, devattest.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	apple, appleFlags := fakeApple(t)
	env = []string{"ATTESTD_REPLAY_REDIS=" + redisURL}
	args = append([]string{"--kinds", "aa,dev", "--allow-dev", "--app-id", aaAppID, "--appattest-environment", "development",
		"--appattest-root", root}, appleFlags...)
	return apple, env, args
}

// startGateProc runs the built attestd's gate with args and env
// (gatetest.Start).
func startGateProc(t *testing.T, env []string, args ...string) *gatetest.Process {
	t.Helper()
	return gatetest.Start(t, attestdBinary(t), aaPatience, env, args...)
}

// relay is the way from the helper to a gate that is down until up is
// called: until then each connection is closed at once, as a stopped
// gate's port refuses; then it is carried to the gate.
type relay struct {
	ln     net.Listener
	target atomic.Pointer[string]

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go r.carry(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) url() string { return "http://" + r.ln.Addr().String() }

// up sends every later connection to addr.
func (r *relay) up(addr string) { r.target.Store(&addr) }

// carry copies between c and the gate, or closes c while it is down.
func (r *relay) carry(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	target := r.target.Load()
	if target == nil {
		return
	}
	g, err := net.Dial("tcp", *target)
	if err != nil {
		return
	}
	defer g.Close()
	r.mu.Lock()
	r.conns[c], r.conns[g] = true, true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		delete(r.conns, g)
		r.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		io.Copy(g, c)
		g.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, g)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

// startSimHelper runs "attestd serve --provider appattest-sim" on a fresh
// socket, registering with register.
func startSimHelper(t *testing.T, register string) *daemonProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "aae2e") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "attestd.sock")
	cmd := exec.Command(attestdBinary(t), "serve", "--socket", sock, "--log-level", "debug", "--deadline", "10s",
		"--provider", "appattest-sim", "--app-id", aaAppID, "--appattest-register", register)
	return runDaemon(t, cmd, sock)
}

// helperToken asks the helper on sock for a value, as the app-server
// would, and returns it in the app-server's envelope with its decoded
// header.
func helperToken(t *testing.T, sock string) (string, header.Value) {
	t.Helper()
	cl := client.New(sock)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), aaPatience)
	defer cancel()
	tok, err := cl.Token(ctx)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	v, err := header.Decode(tok)
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	return `{"v":1,"s":0,"t":"` + tok + `"}`, v
}

// appAttestToken asks the helper for values until one is of kind aa: a
// few development tokens made before the key was registered may still
// be ready, and come first.
func appAttestToken(t *testing.T, sock string) (string, header.Value) {
	t.Helper()
	for range 16 {
		att, v := helperToken(t, sock)
		if v.Kind == header.KindAppAttest {
			return att, v
		}
	}
	t.Fatal("16 values after the registration, none of kind aa")
	return "", header.Value{}
}

// gateAnswer is a gate's answer to one request.
type gateAnswer struct {
	status int
	header http.Header
	body   string
}

// sendTo sends GET url with the attestation att and returns the answer.
func sendTo(t *testing.T, url, att string) gateAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(verify.HeaderName, att)
	c := &http.Client{Timeout: aaPatience}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return gateAnswer{resp.StatusCode, resp.Header, string(b)}
}

// upstreamApp is the app behind a gate in proxy mode: it answers with the
// result headers it was sent.
func upstreamApp(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kind=%q key=%q attestation=%q", r.Header.Get("X-Attestd-Kind"), r.Header.Get("X-Attestd-Key-Id"),
			r.Header.Get(verify.HeaderName))
	}))
	t.Cleanup(up.Close)
	return up
}

// keyIDHeader is the key id as X-Attestd-Key-Id carries it.
func keyIDHeader(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// TestGateAppAttestE2E: the helper starts while the gate is down and
// serves development tokens, which the gate admits only under
// --allow-dev; once the gate is up the helper registers its key through
// gate A and serves App Attest values. Gate A (forward-auth) and gate B
// (proxy mode), two processes on one redis-server, check them with no
// call to Apple: each once across both, in any order; a key revoked with
// "attestd appattest keys revoke" is refused.
func TestGateAppAttestE2E(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	rel := startRelay(t)
	helper := startSimHelper(t, rel.url())
	helper.waitLog(t, "App Attest: background work failed")
	devAtt, dev := helperToken(t, helper.socket)
	if dev.Kind != header.KindDev {
		t.Fatalf("while the gate is down: a value of kind %q, want dev", dev.Kind)
	}

	apple, env, args := aaGateArgs(t, redis.URL())
	a := startGateProc(t, env, args...)
	rel.up(a.Addr)
	b := startGateProc(t, env, append(args, "--upstream", upstreamApp(t).URL)...)
	got := sendTo(t, a.URL()+"/auth", devAtt)
	if got.status != 200 || got.header.Get("X-Attestd-Kind") != "dev" || len(got.header.Values("X-Attestd-Key-Id")) != 1 || got.header.Get("X-Attestd-Key-Id") != "" {
		t.Fatalf("a development token: %d %v %s", got.status, got.header, got.body)
	}
	asked := len(apple.Requests()) // the fake is not Apple: development tokens go to it

	helper.waitLog(t, "App Attest: key registered")
	v0, k0 := appAttestToken(t, helper.socket)
	keyID := keyIDHeader(k0.KeyID)
	got = sendTo(t, a.URL()+"/auth", v0)
	if got.status != 200 || got.header.Get("X-Attestd-Kind") != "aa" || got.header.Get("X-Attestd-Key-Id") != keyID {
		t.Fatalf("an App Attest value: %d %v %s", got.status, got.header, got.body)
	}
	for _, g := range []*gatetest.Process{a, b} {
		if got := sendTo(t, g.URL()+"/auth", v0); got.status != 403 || !strings.Contains(got.body, `"reason":"replay"`) {
			t.Errorf("the same value again at %s: %d %s, want 403 replay", g.Addr, got.status, got.body)
		}
	}

	// Two values made in order, sent in reverse order, through gate B's
	// proxy and then gate A: both pass, once.
	v1, _ := appAttestToken(t, helper.socket)
	v2, _ := appAttestToken(t, helper.socket)
	got = sendTo(t, b.URL()+"/app", v2)
	if want := fmt.Sprintf("kind=%q key=%q attestation=%q", "aa", keyID, ""); got.status != 200 || got.body != want {
		t.Fatalf("the later value through the proxy: %d %q, want %q", got.status, got.body, want)
	}
	if got := sendTo(t, a.URL()+"/auth", v1); got.status != 200 {
		t.Fatalf("the earlier value after it: %d %s", got.status, got.body)
	}
	if got := sendTo(t, a.URL()+"/auth", v2); got.status != 403 {
		t.Errorf("the later value again, at the other gate: %d %s", got.status, got.body)
	}
	if n := len(apple.Requests()); n != asked {
		t.Errorf("Apple was asked %d times about App Attest values, want 0", n-asked)
	}

	// Revoked from the command line, as the header names it.
	code, out := runBinary(t, "appattest", "keys", "revoke", keyID, "--replay-redis", redis.URL())
	if code != 0 || !strings.Contains(out, `"revoked"`) {
		t.Fatalf("attestd appattest keys revoke: exit %d\n%s", code, out)
	}
	v3, k3 := appAttestToken(t, helper.socket)
	if got := sendTo(t, b.URL()+"/app", v3); keyIDHeader(k3.KeyID) != keyID || got.status != 403 || !strings.Contains(got.body, "revoked_key") {
		t.Errorf("a value of the revoked key: %d %s", got.status, got.body)
	}
}

// runBinary runs the attestd binary with args and returns its exit
// status and what it printed.
func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), aaPatience)
	defer cancel()
	out, err := exec.CommandContext(ctx, attestdBinary(t), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("attestd %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// startTunedHelper runs the daemon "attestd serve --provider
// appattest-sim" runs, in-process, with the key checked every second
// (the default is six hours), on a fresh socket.
func startTunedHelper(t *testing.T, register string) (sock string, events regtest.Events) {
	t.Helper()
	events = regtest.NewEvents()
	sim, err := appattestsim.New(appattestsim.Config{AppID: aaAppID, Server: register, Logger: slog.New(events),
		Provider: func(c *aaprovider.Config) {
			c.CheckEvery, c.BackoffMin, c.BackoffMax = time.Second, 100*time.Millisecond, time.Second
		}})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "aae2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "attestd.sock")
	l, err := socket.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{Pool: pool.Config{Provider: sim}, Server: server.Config{Version: "test", Deadline: 10 * time.Second}},
			[]net.Listener{l})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(aaPatience):
			t.Error("the daemon did not stop")
		}
	})
	return sock, events
}

// TestGateAppAttestE2ERevokedKeyRegistersAgain: a key revoked with
// "attestd appattest keys revoke" on the gate's Redis is refused until
// the helper's next check of its key, which makes a new key and
// registers it; its values pass again.
func TestGateAppAttestE2ERevokedKeyRegistersAgain(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	apple, env, args := aaGateArgs(t, redis.URL())
	g := startGateProc(t, env, args...)
	sock, events := startTunedHelper(t, g.URL())
	events.Wait(t, "App Attest: key registered", aaPatience)
	v, k := appAttestToken(t, sock)
	old := keyIDHeader(k.KeyID)
	if got := sendTo(t, g.URL()+"/auth", v); got.status != 200 || got.header.Get("X-Attestd-Key-Id") != old {
		t.Fatalf("before the revocation: %d %v %s", got.status, got.header, got.body)
	}
	if code, out := runBinary(t, "appattest", "keys", "revoke", old, "--replay-redis", redis.URL()); code != 0 {
		t.Fatalf("attestd appattest keys revoke: exit %d\n%s", code, out)
	}
	events.Wait(t, "App Attest: the server revoked the key", aaPatience)
	events.Wait(t, "App Attest: key registered", aaPatience)
	for range 16 {
		v, k := appAttestToken(t, sock)
		got := sendTo(t, g.URL()+"/auth", v)
		if keyIDHeader(k.KeyID) == old {
			if got.status != 403 || !strings.Contains(got.body, "revoked_key") {
				t.Fatalf("a value of the revoked key: %d %s", got.status, got.body)
			}
			continue // made before the new key was in use
		}
		if got.status != 200 || got.header.Get("X-Attestd-Kind") != "aa" || got.header.Get("X-Attestd-Key-Id") != keyIDHeader(k.KeyID) {
			t.Fatalf("a value of the new key: %d %v %s", got.status, got.header, got.body)
		}
		if n := len(apple.Requests()); n != 0 {
			t.Errorf("Apple was asked %d times", n)
		}
		return
	}
	t.Fatal("16 values after the new registration, all of the revoked key")
}
