package gate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	teamID = "TEAMID1234"
	keyID  = "ABC123DEFG"
	// downRetryAfter is the Retry-After the fake Apple sends with the
	// 503 of an outage, which must reach the client.
	downRetryAfter = "7"
)

// apple is the fake Apple the gates ask: it accepts the tokens it issued
// and refuses every other, and answers 503 for tokens made with down.
type apple struct {
	*devicechecktest.Server
	key *ecdsa.PrivateKey

	mu   sync.Mutex
	down map[string]bool // tokens for which Apple is "down"
}

func newApple(t testing.TB) *apple {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &apple{Server: devicechecktest.NewServer(&key.PublicKey, teamID, keyID), key: key, down: map[string]bool{}}
	a.ValidTokens(a.Issued)
	a.Respond(func(r devicechecktest.Request) *devicechecktest.Response {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.down[string(r.DeviceToken)] {
			return &devicechecktest.Response{Status: http.StatusServiceUnavailable, Body: "Service Unavailable",
				Header: http.Header{"Retry-After": {downRetryAfter}}}
		}
		return nil
	})
	t.Cleanup(a.Close)
	return a
}

// client returns a Client of the fake, trying each call once (an outage
// answers at once), without limits on calls unless limited.
func (a *apple) client(t testing.TB) *verify.Client {
	t.Helper()
	c, err := verify.NewClient(verify.Config{TeamID: teamID, KeyID: keyID, Key: a.key, BaseURL: a.URL, MaxAttempts: 1, RateLimit: -1, MaxConcurrent: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// keyFile writes the fake's key as a .p8 file only its owner can read.
func (a *apple) keyFile(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "AuthKey_"+keyID+".p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// valid returns the envelope of a fresh token the fake issued.
func (a *apple) valid(t testing.TB) string {
	return envelope(t, header.KindDeviceCheck, a.IssueToken())
}

// forged returns the envelope of a token the fake never issued.
func (a *apple) forged(t testing.TB) string {
	tok := make([]byte, 64)
	rand.Read(tok)
	return envelope(t, header.KindDeviceCheck, tok)
}

// downToken returns the envelope of an issued token for which Apple
// answers 503.
func (a *apple) downToken(t testing.TB) string {
	tok := a.IssueToken()
	a.mu.Lock()
	a.down[string(tok)] = true
	a.mu.Unlock()
	return envelope(t, header.KindDeviceCheck, tok)
}

// envelope wraps a token as the app-server sends it.
func envelope(t testing.TB, kind string, tok []byte) string {
	t.Helper()
	v, err := header.Encode(header.Value{Kind: kind, Token: tok, GeneratedAt: time.Now(), BundleID: "com.example.app", TeamID: teamID})
	if err != nil {
		t.Fatal(err)
	}
	return `{"v":1,"s":0,"t":"` + v + `"}`
}

// running is a gate serving on loopback listeners.
type running struct {
	g           *Gate
	addr, admin string
	stop        context.CancelFunc
	done        chan error
}

// startGate serves cfg's gate on a loopback port (and an admin port when
// admin is set) until the test ends or stop is called.
func startGate(t testing.TB, cfg Config, admin bool) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	r := &running{g: g, addr: ln.Addr().String(), done: make(chan error, 1)}
	var adminLn net.Listener
	if admin {
		adminLn = listen(t)
		r.admin = adminLn.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.done <- g.Serve(ctx, ln, adminLn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("the gate did not stop within a minute")
		}
	})
	return r
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// wait returns what Serve returned, failing the test after a minute.
func (r *running) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(time.Minute):
		t.Fatal("the gate did not stop within a minute")
		return nil
	}
}

// answer is a response, read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

// send sends a request with the attestation header att (none when "")
// and extra headers, and returns the answer.
func send(t testing.TB, method, url, att string, extra map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if att != "" {
		req.Header.Set(verify.HeaderName, att)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// upstream is the app behind a gate in proxy mode, or behind a proxy: it
// answers with what reached it, and echoes websocket frames.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
}

func startUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.calls++
		u.mu.Unlock()
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			serveEcho(t, w, r)
		case r.URL.Path == "/stream":
			serveStream(w, r)
		default:
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "upstream: %s %s attestation=%q %s body=%q", r.Method, r.URL.RequestURI(),
				r.Header.Get(verify.HeaderName), describeResults(r.Header), body)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) host() string { return u.Listener.Addr().String() }

func (u *upstream) reached() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

// describeResults lists every X-Attestd-* header h holds, sorted.
func describeResults(h http.Header) string {
	var out []string
	for name, values := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-attestd-") {
			out = append(out, fmt.Sprintf("%s=%q", strings.ToLower(name), strings.Join(values, ",")))
		}
	}
	slices.Sort(out)
	return "[" + strings.Join(out, " ") + "]"
}

// serveStream writes one line, then another once the client's request
// context ends or a minute passes: a stream that stays open.
func serveStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "data: first %s\n\n", r.Header.Get(HeaderKind))
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}

// serveEcho accepts a websocket handshake, sends a text frame saying the
// kind it was admitted with, and echoes every frame until the client
// closes.
func serveEcho(t testing.TB, w http.ResponseWriter, r *http.Request) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		websocketAccept(r.Header.Get("Sec-WebSocket-Key")))
	writeFrame(rw, false, []byte("hello kind="+r.Header.Get(HeaderKind)))
	if rw.Flush() != nil {
		return
	}
	for {
		p, err := readFrame(rw.Reader)
		if err != nil {
			return
		}
		writeFrame(rw, false, append([]byte("echo "), p...))
		if rw.Flush() != nil {
			return
		}
	}
}

// websocketAccept is the Sec-WebSocket-Accept answering key (RFC 6455).
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// writeFrame writes one final text frame (RFC 6455 5.2), masked as a
// client must.
func writeFrame(w io.Writer, masked bool, payload []byte) error {
	var hdr bytes.Buffer
	hdr.WriteByte(0x81)
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr.WriteByte(maskBit | byte(n))
	default:
		hdr.WriteByte(maskBit | 126)
		binary.Write(&hdr, binary.BigEndian, uint16(n))
	}
	data := payload
	if masked {
		var mask [4]byte
		rand.Read(mask[:])
		hdr.Write(mask[:])
		data = make([]byte, len(payload))
		for i, b := range payload {
			data[i] = b ^ mask[i%4]
		}
	}
	_, err := w.Write(append(hdr.Bytes(), data...))
	return err
}

// readFrame reads one unfragmented frame of up to 64 KiB and returns its
// payload, unmasked.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 127 {
		return nil, errors.New("frame too long for this test")
	}
	if n == 126 {
		var l uint16
		if err := binary.Read(r, binary.BigEndian, &l); err != nil {
			return nil, err
		}
		n = int(l)
	}
	var mask [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return p, nil
}

// dialWebsocket sends a websocket handshake with the attestation att to
// addr and returns the answer and, when upgraded, the connection.
func dialWebsocket(t testing.TB, addr, att string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(time.Minute))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	req := "GET /backend-api/codex/responses HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if att != "" {
		req += verify.HeaderName + ": " + att + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && resp.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), websocketAccept(key))
	}
	return resp, conn, br
}

// exchange checks that frames flow both ways on an upgraded connection:
// the upstream's hello (naming kind), then an echo of what the client
// sends.
func exchange(t testing.TB, conn net.Conn, br *bufio.Reader, kind string) {
	t.Helper()
	hello, err := readFrame(br)
	if err != nil || string(hello) != "hello kind="+kind {
		t.Fatalf("first frame from the upstream: %q, %v; want hello kind=%s", hello, err, kind)
	}
	if err := writeFrame(conn, true, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if echo, err := readFrame(br); err != nil || string(echo) != "echo ping" {
		t.Fatalf("echo from the upstream: %q, %v", echo, err)
	}
}

// testLogger logs to the test's output (shown when it fails, or with -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
