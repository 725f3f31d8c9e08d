package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// serveAllowWhenDown sends n requests, each with a fresh token, through a
// middleware that lets requests through while Apple is down, each with
// its own context from ctx (nil: none), and returns the answers' codes
// and the reasons the handler or the refusal gave.
func serveAllowWhenDown(t *testing.T, h *harness, v *Verifier, n int, ctx func() (context.Context, context.CancelFunc)) (codes []int, reasons []string) {
	t.Helper()
	mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := FromContext(r.Context())
		reasons = append(reasons, Reason(err))
	}), MiddlewareOptions{Verifier: v, WhenAppleDown: AllowWhenDown})
	for i := range n {
		req := httptest.NewRequest("POST", "/", nil)
		if ctx != nil {
			c, cancel := ctx()
			defer cancel()
			req = req.WithContext(c)
		}
		req.Header.Set(HeaderName, mustEncode(t, header.Value{Kind: "dc", Token: fmt.Appendf(nil, "forged %d", i), GeneratedAt: h.clock.Now()}))
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
		if rec.Code != 200 {
			var body struct{ Reason string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			reasons = append(reasons, body.Reason)
		}
	}
	return codes, reasons
}

// An answer from something that is not Apple (a certificate that does not
// verify, plain HTTP where TLS was spoken, garbage instead of a TLS
// record) is an unexpected answer, never an outage: under AllowWhenDown a
// forged token sent through an intercepting proxy or spoofed DNS is
// refused, however often, even by a breaker that would open at the first
// real failure. (It used to be counted as "no answer", and let through.)
func TestImpostorIsNotAnOutage(t *testing.T) {
	selfSigned := httptest.NewTLSServer(http.NotFoundHandler())
	defer selfSigned.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n not TLS at all, and long enough to be read as a record\r\n"))
			c.Close()
		}
	}()
	for _, tt := range []struct{ name, url string }{
		{"certificate signed by an unknown authority", selfSigned.URL},
		{"HTTP response to HTTPS client", "https://" + plain.Listener.Addr().String()},
		{"not a TLS record", "https://" + garbage.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, oneAttempt, downAtOnce, func(c *Config) { c.BaseURL = tt.url })
			v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
			codes, reasons := serveAllowWhenDown(t, h, v, 8, nil)
			if fmt.Sprint(codes) != "[503 503 503 503 503 503 503 503]" || reasons[0] != "unexpected_response" {
				t.Errorf("answers %v, reasons %v; want 503 unexpected_response every time", codes, reasons)
			}
			if h.client.Down() {
				t.Error("the breaker counts Apple as down")
			}
		})
	}
}

// A deadline the caller sets (a framework that turns a client's header,
// such as grpc-timeout, into the context deadline) makes a check time
// out, but says nothing of Apple: a 5 ms deadline is refused, not let
// through as an outage, and the breaker stays closed.
func TestCallerDeadlineIsNotAnOutage(t *testing.T) {
	h := newHarness(t, oneAttempt, downAtOnce)
	h.apple.SetLatency(time.Hour)
	v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
	codes, reasons := serveAllowWhenDown(t, h, v, 6, func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 5*time.Millisecond)
	})
	if fmt.Sprint(codes) != "[503 503 503 503 503 503]" || reasons[0] != "timeout" {
		t.Errorf("answers %v, reasons %v; want 503 timeout every time", codes, reasons)
	}
	if h.client.Down() {
		t.Error("the breaker counts Apple as down")
	}
}

// slowStore is a replay store that answers when the check's time is
// nearly gone, leaving Apple a few milliseconds.
type slowStore struct{ *MemoryReplayCache }

func (s slowStore) Add(ctx context.Context, key, id string, ttl time.Duration) (bool, error) {
	if deadline, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(deadline) - 10*time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return s.MemoryReplayCache.Add(ctx, key, id, ttl)
}

// A replay store that stalls eats the check's budget, and the few
// milliseconds left for Apple run out: that is not Apple being down, so
// the forged token that landed then is refused and the breaker stays
// closed. (A Redis stall of about the check's Timeout used to admit the
// forged requests in its last round trip.)
func TestSlowStoreIsNotAnOutage(t *testing.T) {
	h := newHarness(t, oneAttempt, downAtOnce)
	h.apple.SetLatency(time.Hour)
	v := &Verifier{Client: h.client, Replays: slowStore{NewMemoryReplayCache()}, Now: h.clock.Now, Timeout: 200 * time.Millisecond}
	codes, reasons := serveAllowWhenDown(t, h, v, 3, nil)
	if fmt.Sprint(codes) != "[503 503 503]" || reasons[0] != "timeout" {
		t.Errorf("answers %v, reasons %v; want 503 timeout every time", codes, reasons)
	}
	if h.client.Down() {
		t.Error("the breaker counts Apple as down")
	}
}

// Apple counts as down only from its answers to many attempts: the
// breaker opens at the fifth failure in 10 s (when they are at least half
// of the attempts), closes at the first success, and forgets failures
// older than its window. Only while it is open does AllowWhenDown let a
// request through.
func TestBreaker(t *testing.T) {
	t.Run("opens at five, closes at a success", func(t *testing.T) {
		h := newHarness(t, oneAttempt)
		h.apple.ValidTokens(h.apple.Issued)
		h.apple.Respond(status(503, ""))
		v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
		codes, _ := serveAllowWhenDown(t, h, v, 6, nil)
		if fmt.Sprint(codes) != "[503 503 503 503 200 200]" || !h.client.Down() {
			t.Fatalf("answers %v, down %v; want the fifth failure to open the breaker", codes, h.client.Down())
		}
		h.apple.Respond(nil)
		genuine := mustEncode(t, header.Value{Kind: "dc", Token: h.apple.IssueToken(), GeneratedAt: h.clock.Now()})
		if _, err := v.Verify(context.Background(), genuine); err != nil || h.client.Down() {
			t.Fatalf("Apple back: %v, down %v", err, h.client.Down())
		}
		h.apple.Respond(status(503, ""))
		if codes, _ := serveAllowWhenDown(t, h, v, 1, nil); codes[0] != 503 {
			t.Errorf("a failure after the success: %d, want 503", codes[0])
		}
	})
	t.Run("failures must be half the attempts", func(t *testing.T) {
		h := newHarness(t, oneAttempt)
		ctx := context.Background()
		for range 6 {
			h.client.ValidateDeviceToken(ctx, []byte("tok"))
		}
		h.apple.Respond(status(500, ""))
		for i := range 6 {
			err := h.client.ValidateDeviceToken(ctx, []byte("tok"))
			if want := i == 5; AppleDown(err) != want || h.client.Down() != want {
				t.Errorf("failure %d after 6 successes: AppleDown %v, Down %v; want %v", i+1, AppleDown(err), h.client.Down(), want)
			}
		}
	})
	t.Run("old failures age out", func(t *testing.T) {
		h := newHarness(t, oneAttempt)
		h.apple.Respond(status(503, ""))
		for range 5 {
			h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
		}
		if !h.client.Down() {
			t.Fatal("not down after 5 failures")
		}
		h.clock.Add(DefaultBreakerWindow + time.Second)
		if h.client.Down() {
			t.Error("still down with no failure in the last window")
		}
	})
	t.Run("only attempts with their whole time count", func(t *testing.T) {
		// A server that drops every connection: no answer, at once.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		h := newHarness(t, oneAttempt, downAtOnce, func(c *Config) { c.BaseURL = "http://" + ln.Addr().String() })
		short := func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second) // less than AttemptTimeout
		}
		for range 5 {
			ctx, cancel := short()
			err := h.client.ValidateDeviceToken(ctx, []byte("tok"))
			cancel()
			if Reason(err) != "network" || AppleDown(err) {
				t.Fatalf("attempt cut short by the caller: %v, want network, not down", err)
			}
		}
		if err := h.client.ValidateDeviceToken(context.Background(), []byte("tok")); !AppleDown(err) {
			t.Errorf("an attempt with its whole time: %v, want Apple down", err)
		}
	})
	t.Run("settable", func(t *testing.T) {
		h := newHarness(t, oneAttempt, func(c *Config) {
			c.Breaker = BreakerConfig{Window: time.Minute, MinFailures: 2, FailureRatio: 1}
		})
		h.apple.Respond(status(503, ""))
		ctx := context.Background()
		h.client.ValidateDeviceToken(ctx, []byte("tok"))
		h.clock.Add(30 * time.Second)
		if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); !AppleDown(err) {
			t.Errorf("second failure within the minute: %v, want Apple down", err)
		}
	})
}
