package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/attestd/attestd/verify/devicechecktest"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestValidateDeviceTokenRequest(t *testing.T) {
	h := newHarness(t)
	token := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 700) // long enough that a line-wrapping encoder would wrap
	if err := h.client.ValidateDeviceToken(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	reqs := h.apple.Requests()
	if len(reqs) != 1 {
		t.Fatalf("Apple got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Problem != "" {
		t.Fatalf("Apple found a problem: %s", r.Problem)
	}
	if r.Op != "validate_device_token" || !bytes.Equal(r.DeviceToken, token) {
		t.Errorf("request %s with token %x…", r.Op, r.DeviceToken[:8])
	}
	if !uuidV4.MatchString(r.TransactionID) {
		t.Errorf("transaction_id %q is not a v4 UUID", r.TransactionID)
	}
	if r.Timestamp != h.clock.Now().UnixMilli() {
		t.Errorf("timestamp %d, want %d (ms)", r.Timestamp, h.clock.Now().UnixMilli())
	}
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(r.JWT, claims)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "ES256" || tok.Header["kid"] != testKeyID {
		t.Errorf("JWT header %v", tok.Header)
	}
	if claims["iss"] != testTeamID || claims["iat"] != float64(h.clock.Now().Add(-jwtBackdate).Unix()) {
		t.Errorf("JWT claims %v", claims)
	}
}

// The body is exactly Apple's three fields (five for an update), with
// the token in standard base64 on one line and the timestamp a number.
func TestRequestBodyExact(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []map[string]json.RawMessage
		paths  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m := map[string]json.RawMessage{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		mu.Lock()
		bodies, paths = append(bodies, m), append(paths, r.URL.Path)
		mu.Unlock()
	}))
	defer srv.Close()
	c, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: newKey(t), BaseURL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	token := []byte{0xfb, 0xef, 0xff} // "++//" in standard base64, "--__" in URL encoding
	ctx := context.Background()
	if err := c.ValidateDeviceToken(ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateTwoBits(ctx, token, true, false); err != nil {
		t.Fatal(err)
	}
	wantPaths := []string{"/v1/validate_device_token", "/v1/update_two_bits"}
	wantKeys := []string{"device_token,timestamp,transaction_id", "bit0,bit1,device_token,timestamp,transaction_id"}
	for i, m := range bodies {
		if paths[i] != wantPaths[i] {
			t.Errorf("path %q, want %q", paths[i], wantPaths[i])
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if got := strings.Join(keys, ","); got != wantKeys[i] {
			t.Errorf("body keys %s, want %s", got, wantKeys[i])
		}
		if got := string(m["device_token"]); got != `"`+base64.StdEncoding.EncodeToString(token)+`"` || got != `"++//"` {
			t.Errorf("device_token %s", got)
		}
		if ts := string(m["timestamp"]); !regexp.MustCompile(`^1[0-9]{12}$`).MatchString(ts) {
			t.Errorf("timestamp %s is not Unix milliseconds", ts)
		}
	}
	if string(bodies[1]["bit0"]) != "true" || string(bodies[1]["bit1"]) != "false" {
		t.Errorf("bits %s %s", bodies[1]["bit0"], bodies[1]["bit1"])
	}
	if bodies[0]["transaction_id"] == nil || string(bodies[0]["transaction_id"]) == string(bodies[1]["transaction_id"]) {
		t.Error("transaction ids not unique")
	}
}

func TestAppleAnswers(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		want     error
		attempts int
	}{
		{400, devicechecktest.BodyBadDeviceToken, ErrBadDeviceToken, 1},
		{400, devicechecktest.BodyBadTimestamp, ErrBadRequest, 1},
		{400, devicechecktest.BodyBadBits, ErrBadRequest, 1},
		{400, "Missing or badly formatted authorization token", ErrBadAuthorization, 1},
		{401, devicechecktest.BodyBadAuthorization, ErrBadAuthorization, 1},
		{401, devicechecktest.BodyExpired, ErrExpiredAuthorization, 1},
		{403, "", ErrForbidden, 1},
		{404, "Not Found", ErrUnexpectedResponse, 1},
		{405, "Method Not Allowed", ErrBadRequest, 1},
		{429, "Too Many Requests", ErrRateLimited, 1}, // not retried by default
		{500, "Internal Server Error", ErrServerError, 3},
		{502, "Bad Gateway", ErrServerError, 3},
		{503, "Service Unavailable", ErrUnavailable, 3},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status)+"/"+tt.body, func(t *testing.T) {
			h := newHarness(t)
			h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
				return &devicechecktest.Response{Status: tt.status, Body: tt.body}
			})
			err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var ae *AppleError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *AppleError", err)
			}
			if ae.Status != tt.status || ae.Body != tt.body || ae.Attempts != tt.attempts || ae.Op != "validate_device_token" {
				t.Errorf("AppleError %+v", ae)
			}
			if n := len(h.apple.Requests()); n != tt.attempts {
				t.Errorf("Apple got %d requests, want %d", n, tt.attempts)
			}
			if n := len(h.waits()); n != tt.attempts-1 {
				t.Errorf("waited %d times, want %d", n, tt.attempts-1)
			}
			if ae.Temporary() != (tt.status == 429 || tt.status >= 500) {
				t.Errorf("Temporary() = %v", ae.Temporary())
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxAttempts = 4
		c.MinBackoff = 100 * time.Millisecond
		c.MaxBackoff = time.Second
		c.RetryRateLimited = true
	})
	var n atomic.Int32
	h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
		switch n.Add(1) {
		case 1:
			return &devicechecktest.Response{Status: 503}
		case 2:
			return &devicechecktest.Response{Status: 429}
		case 3:
			return &devicechecktest.Response{Status: 500}
		}
		return nil
	})
	if err := h.client.ValidateDeviceToken(context.Background(), []byte("tok")); err != nil {
		t.Fatal(err)
	}
	reqs := h.apple.Requests()
	if len(reqs) != 4 {
		t.Fatalf("Apple got %d requests, want 4", len(reqs))
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if seen[r.TransactionID] {
			t.Errorf("transaction_id %s reused on retry", r.TransactionID)
		}
		seen[r.TransactionID] = true
	}
	waits := h.waits()
	if len(waits) != 3 {
		t.Fatalf("waits %v, want 3", waits)
	}
	for _, d := range waits {
		if d < 50*time.Millisecond || d > time.Second {
			t.Errorf("wait %v outside [MinBackoff/2, MaxBackoff]", d)
		}
	}
	if h.signs.Load() != 1 || h.apple.JWTs() != 1 {
		t.Errorf("%d signatures (%d seen by Apple), want 1: retries reuse the JWT", h.signs.Load(), h.apple.JWTs())
	}
}

func TestBackoff(t *testing.T) {
	c, err := NewClient(Config{TeamID: "t", KeyID: "k", Key: newKey(t), MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 70; attempt++ {
		window := min(100*time.Millisecond<<min(attempt-1, 20), 2*time.Second)
		for range 50 {
			if d := c.backoff(attempt, 0); d < 50*time.Millisecond || d > window {
				t.Fatalf("attempt %d: backoff %v outside [50ms, %v]", attempt, d, window)
			}
		}
	}
	if d := c.backoff(1, 1500*time.Millisecond); d < 1500*time.Millisecond || d > 2*time.Second {
		t.Errorf("Retry-After 1.5s: backoff %v", d)
	}
	// Retry-After is honoured whole; whether it fits is the caller's call.
	if d := c.backoff(1, time.Hour); d != time.Hour {
		t.Errorf("Retry-After 1h: backoff %v, want 1h", d)
	}
}

// Retry-After is honoured when it fits in the call's budget; when it does
// not, the call stops at once and reports what Apple said. 429 is not
// retried at all unless asked for.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		retry429   bool
		want       error // nil: the retry succeeds
		waits      []time.Duration
		reported   time.Duration // AppleError.RetryAfter
	}{
		{"503, 2 s fits in 5 s", 503, func(time.Time) string { return "2" }, false, nil, []time.Duration{2 * time.Second}, 0},
		{"503, HTTP-date 3 s ahead", 503, func(now time.Time) string { return now.Add(3 * time.Second).UTC().Format(http.TimeFormat) }, false, nil, []time.Duration{3 * time.Second}, 0},
		{"503, 10 s does not fit", 503, func(time.Time) string { return "10" }, false, ErrUnavailable, nil, 10 * time.Second},
		{"503, HTTP-date an hour ahead", 503, func(now time.Time) string { return now.Add(time.Hour).UTC().Format(http.TimeFormat) }, false, ErrUnavailable, nil, time.Hour},
		{"429 not retried by default", 429, func(time.Time) string { return "1" }, false, ErrRateLimited, nil, time.Second},
		{"429 retried when asked, 1 s fits", 429, func(time.Time) string { return "1" }, true, nil, []time.Duration{time.Second}, 0},
		{"429 retried when asked, 30 s does not fit", 429, func(time.Time) string { return "30" }, true, ErrRateLimited, nil, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.RetryRateLimited = tt.retry429
				c.MinBackoff = time.Millisecond
				c.MaxBackoff = time.Millisecond
			})
			var n atomic.Int32
			h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
				if n.Add(1) > 1 {
					return nil
				}
				return &devicechecktest.Response{Status: tt.status, Header: http.Header{"Retry-After": {tt.retryAfter(h.clock.Now())}}}
			})
			err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if w := h.waits(); !slices.Equal(w, tt.waits) {
				t.Errorf("waits %v, want %v", w, tt.waits)
			}
			var ae *AppleError
			if tt.want != nil && (!errors.As(err, &ae) || ae.RetryAfter != tt.reported || ae.Attempts != 1) {
				t.Errorf("AppleError %+v, want RetryAfter %v after 1 attempt", ae, tt.reported)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"99999999999999", 24 * time.Hour},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second},
		{"Sun Mar  1 12:00:30 2026", 30 * time.Second},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"soon", 0},
		{"1.5", 0},
	} {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	h := newHarness(t, func(c *Config) { c.BaseURL = "http://" + addr })
	err = h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
	if !errors.Is(err, ErrNetwork) {
		t.Fatalf("error %v, want ErrNetwork", err)
	}
	var ae *AppleError
	if errors.As(err, &ae) {
		t.Errorf("a network error is an AppleError: %v", ae)
	}
	if n := len(h.waits()); n != 2 {
		t.Errorf("waited %d times, want 2 (3 attempts)", n)
	}
	if Reason(err) != "network" {
		t.Errorf("Reason = %q", Reason(err))
	}
}

func TestPerRequestTimeout(t *testing.T) {
	var n atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body) // so the server notices the client hanging up
		select {                    // never answer; the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	h := newHarness(t, func(c *Config) { c.BaseURL = srv.URL; c.AttemptTimeout = 100 * time.Millisecond; c.MaxAttempts = 2 })
	err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
	if !errors.Is(err, ErrNetwork) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrNetwork and DeadlineExceeded", err)
	}
	if w := h.waits(); len(w) != 1 {
		t.Errorf("waited %v, want once: two attempts", w)
	}
	if n.Load() == 0 {
		t.Error("server got no request")
	}
}

func TestContextStopsRetries(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MinBackoff = time.Hour })
	h.client.sleep = sleepCtx // the real wait: it must end with the context
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
		cancel()
		return &devicechecktest.Response{Status: 503}
	})
	err := h.client.ValidateDeviceToken(ctx, []byte("tok"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if n := len(h.apple.Requests()); n != 1 {
		t.Errorf("Apple got %d requests after cancel, want 1", n)
	}

	// Already canceled: nothing is retried.
	h.apple.Respond(nil)
	if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestJWTReusedAndRefreshed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	check := func(step string, want int32) {
		t.Helper()
		if got := h.signs.Load(); got != want {
			t.Errorf("%s: %d signatures, want %d", step, got, want)
		}
		if got := h.apple.JWTs(); got != int(want) {
			t.Errorf("%s: Apple saw %d distinct JWTs, want %d", step, got, want)
		}
	}
	check("64 concurrent calls", 1)

	h.clock.Add(DefaultJWTRefresh - time.Second)
	h.client.ValidateDeviceToken(ctx, []byte("tok"))
	check("just before refresh", 1)

	h.clock.Add(time.Second)
	h.client.ValidateDeviceToken(ctx, []byte("tok"))
	check("at refresh", 2)

	h.clock.Add(-time.Minute) // the clock stepped back: the cached iat is in the future
	h.client.ValidateDeviceToken(ctx, []byte("tok"))
	check("clock stepped back", 3)

	// A 401 for a JWT reused from an earlier call drops it, and the call
	// tries once more with a fresh one.
	reqs := h.apple.Requests()
	stale := reqs[len(reqs)-1].JWT
	h.apple.Respond(func(r devicechecktest.Request) *devicechecktest.Response {
		if r.JWT == stale {
			return &devicechecktest.Response{Status: 401, Body: devicechecktest.BodyBadAuthorization}
		}
		return nil
	})
	before := len(h.apple.Requests())
	if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); err != nil {
		t.Fatalf("401 for a reused JWT: %v, want success with a fresh one", err)
	}
	check("401 for a reused JWT", 4)
	if n := len(h.apple.Requests()) - before; n != 2 {
		t.Errorf("Apple got %d requests, want 2", n)
	}
	// A 401 for a JWT signed for this very call is not retried: a new
	// one would be refused too (wrong key, team or key id).
	h.clock.Add(DefaultJWTRefresh)
	h.apple.Respond(func(r devicechecktest.Request) *devicechecktest.Response {
		return &devicechecktest.Response{Status: 401, Body: devicechecktest.BodyBadAuthorization}
	})
	before = len(h.apple.Requests())
	if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); !errors.Is(err, ErrBadAuthorization) {
		t.Fatalf("401 for a fresh JWT: %v", err)
	}
	check("401 for a fresh JWT", 5)
	if n := len(h.apple.Requests()) - before; n != 1 {
		t.Errorf("Apple got %d requests, want 1", n)
	}
	h.apple.Respond(nil)
	h.client.ValidateDeviceToken(ctx, []byte("tok"))
	check("after 401", 6)
}

// The refresh interval stays within Apple's 20–60 minute guidance.
func TestJWTRefreshClamped(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{0, DefaultJWTRefresh},
		{time.Minute, 20 * time.Minute},
		{30 * time.Minute, 30 * time.Minute},
		{2 * time.Hour, 55 * time.Minute},
	} {
		c, err := NewClient(Config{TeamID: "t", KeyID: "k", Key: newKey(t), JWTRefresh: tt.in})
		if err != nil {
			t.Fatal(err)
		}
		if c.jwt.refresh != tt.want {
			t.Errorf("JWTRefresh %v: refresh %v, want %v", tt.in, c.jwt.refresh, tt.want)
		}
	}
}

// A server clock somewhat ahead of Apple's must not make every JWT look
// issued in the future.
func TestJWTToleratesClockAhead(t *testing.T) {
	h := newHarness(t)
	h.appleSkew.Store(int64(-90 * time.Second)) // Apple's clock 90 s behind ours
	if err := h.client.ValidateDeviceToken(context.Background(), []byte("tok")); err != nil {
		t.Fatalf("with our clock 90 s ahead of Apple's: %v", err)
	}
}

func TestExpiredAuthorization(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); err != nil {
		t.Fatal(err)
	}
	// Apple's clock runs two hours ahead of ours, so our fresh JWT looks
	// old (and so would the timestamp, but Apple checks the JWT first).
	h.appleSkew.Store(int64(2 * time.Hour))
	err := h.client.ValidateDeviceToken(ctx, []byte("tok"))
	if !errors.Is(err, ErrExpiredAuthorization) || Reason(err) != "expired_authorization" {
		t.Fatalf("error %v", err)
	}
}

func TestTwoBits(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tok := []byte("device-1")
	bits, err := h.client.QueryTwoBits(ctx, tok)
	if err != nil || bits.Found {
		t.Fatalf("query before any update = %+v, %v; want not found, no error", bits, err)
	}
	if err := h.client.UpdateTwoBits(ctx, tok, true, false); err != nil {
		t.Fatal(err)
	}
	reqs := h.apple.Requests()
	if u := reqs[len(reqs)-1]; u.Op != "update_two_bits" || u.Bit0 == nil || !*u.Bit0 || u.Bit1 == nil || *u.Bit1 {
		t.Errorf("update request %+v", u)
	}
	bits, err = h.client.QueryTwoBits(ctx, tok)
	want := Bits{Found: true, Bit0: true, LastUpdated: h.clock.Now().UTC().Format("2006-01")}
	if err != nil || bits != want {
		t.Fatalf("query = %+v, %v; want %+v", bits, err, want)
	}

	for _, body := range []string{"Bit State Not Found", "Failed to find bit state", "  bit state not found\n"} {
		h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: 200, Body: body}
		})
		if bits, err := h.client.QueryTwoBits(ctx, tok); err != nil || bits.Found {
			t.Errorf("%q: %+v, %v", body, bits, err)
		}
	}
	for _, body := range []string{`{"bit0":true}`, "<html>", ""} {
		h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: 200, Body: body}
		})
		if _, err := h.client.QueryTwoBits(ctx, tok); !errors.Is(err, ErrUnexpectedResponse) {
			t.Errorf("%q: error %v, want ErrUnexpectedResponse", body, err)
		}
	}
}

func TestAppleErrorsHideToken(t *testing.T) {
	h := newHarness(t, oneAttempt)
	secret := []byte("SECRET-DEVICE-TOKEN")
	for _, status := range []int{400, 401, 403, 429, 500} {
		h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: status, Body: "nope"}
		})
		err := h.client.ValidateDeviceToken(context.Background(), secret)
		if err == nil {
			t.Fatal("no error")
		}
		if msg := err.Error(); strings.Contains(msg, string(secret)) || strings.Contains(msg, base64.StdEncoding.EncodeToString(secret)) {
			t.Errorf("error %q reveals the token", msg)
		}
	}
}

func TestEmptyTokenNotSent(t *testing.T) {
	h := newHarness(t)
	if err := h.client.ValidateDeviceToken(context.Background(), nil); !errors.Is(err, ErrBadDeviceToken) {
		t.Errorf("error %v", err)
	}
	if n := len(h.apple.Requests()); n != 0 {
		t.Errorf("Apple got %d requests", n)
	}
}

func TestEnvironmentURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", Production},
		{"production", Production},
		{"Production", Production},
		{"development", Development},
		{"dev", Development},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"https://proxy.example/devicecheck", "https://proxy.example/devicecheck"},
		{"staging", ""},
		{"ftp://x", ""},
		{"http://", ""},
	}
	for _, tt := range tests {
		got, err := EnvironmentURL(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("EnvironmentURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// NewClient refuses a configuration it cannot sign Apple's tokens with,
// among them a key that is not P-256 (ES256 needs one).
func TestNewClientNeedsCredentials(t *testing.T) {
	key := newKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{KeyID: "k", Key: key},
		{TeamID: "t", Key: key},
		{TeamID: "t", KeyID: "k"},
		{TeamID: "t", KeyID: "k", Key: key, BaseURL: "staging"},
		{TeamID: "t", KeyID: "k", Key: p384},
	} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) succeeded", cfg)
		}
	}
}
