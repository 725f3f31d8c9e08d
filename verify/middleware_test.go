package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func TestMiddleware(t *testing.T) {
	h := newHarness(t, oneAttempt)
	h.apple.ValidTokens(func(tok []byte) bool { return string(tok) != "forged" })
	h.apple.Respond(func(r devicechecktest.Request) *devicechecktest.Response {
		if string(r.DeviceToken) == "outage" {
			return &devicechecktest.Response{Status: 503}
		}
		return nil
	})
	enc := func(kind, tok string) string {
		return mustEncode(t, header.Value{Kind: kind, Token: []byte(tok), GeneratedAt: h.clock.Now()})
	}

	tests := []struct {
		name    string
		headers []string
		code    int    // under Reject
		body    string // under Reject, when not 200
		reason  string // FromContext under Annotate
	}{
		{"valid envelope", []string{envelope(enc("dc", "genuine"))}, 200, "", ""},
		{"valid bare value", []string{enc("dc", "genuine")}, 200, "", ""},
		{"missing", nil, 401, `{"error":"attestation_required","reason":"missing"}`, "missing"},
		{"empty", []string{""}, 401, `{"error":"attestation_required","reason":"missing"}`, "missing"},
		{"malformed", []string{"v1.%%%"}, 401, `{"error":"attestation_required","reason":"malformed"}`, "malformed"},
		{"malformed envelope", []string{`{"v":1,"s":9}`}, 401, `{"error":"attestation_required","reason":"malformed"}`, "malformed"},
		{"two headers", []string{enc("dc", "genuine"), enc("dc", "genuine")}, 401, `{"error":"attestation_required","reason":"malformed"}`, "malformed"},
		{"s=1 timeout", []string{`{"v":1,"s":1}`}, 401, `{"error":"attestation_required","reason":"client_status","status":"timeout"}`, "client_status"},
		{"s=2 client error", []string{`{"v":1,"s":2}`}, 401, `{"error":"attestation_required","reason":"client_status","status":"client_error"}`, "client_status"},
		{"s=3 canceled", []string{`{"v":1,"s":3}`}, 401, `{"error":"attestation_required","reason":"client_status","status":"canceled"}`, "client_status"},
		{"s=4 malformed response", []string{`{"v":1,"s":4}`}, 401, `{"error":"attestation_required","reason":"client_status","status":"malformed_response"}`, "client_status"},
		{"dev token", []string{enc("dev", "random")}, 403, `{"error":"attestation_rejected","reason":"dev_token"}`, "dev_token"},
		{"forged", []string{enc("dc", "forged")}, 403, `{"error":"attestation_rejected","reason":"bad_device_token"}`, "bad_device_token"},
		{"Apple down", []string{enc("dc", "outage")}, 503, `{"error":"attestation_unavailable","reason":"apple_unavailable"}`, "apple_unavailable"},
	}
	for _, policy := range []Policy{Reject, Annotate} {
		for _, tt := range tests {
			name := map[Policy]string{Reject: "Reject/", Annotate: "Annotate/"}[policy] + tt.name
			t.Run(name, func(t *testing.T) {
				var (
					reached bool
					res     *Result
					err     error
				)
				next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					reached = true
					res, err = FromContext(r.Context())
					w.Write([]byte("ok"))
				})
				var logs bytes.Buffer
				v := &Verifier{Client: h.client, MaxAge: time.Minute, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
				mw := Middleware(next, MiddlewareOptions{Verifier: v, Policy: policy, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				req := httptest.NewRequest("POST", "/v1/responses", nil)
				for _, hv := range tt.headers {
					req.Header.Add("x-oai-attestation", hv)
				}
				rec := httptest.NewRecorder()
				mw.ServeHTTP(rec, req)

				if policy == Reject && tt.code != 200 {
					if reached || rec.Code != tt.code || strings.TrimSpace(rec.Body.String()) != tt.body {
						t.Fatalf("reached %v, answer %d %s; want %d %s", reached, rec.Code, rec.Body, tt.code, tt.body)
					}
					if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type %q", ct)
					}
					wantChallenge, wantRetry := "", ""
					switch tt.code {
					case 401:
						wantChallenge = `Attestation header="X-Oai-Attestation"`
					case 503:
						wantRetry = "1"
					}
					if got := rec.Header().Get("WWW-Authenticate"); got != wantChallenge {
						t.Errorf("WWW-Authenticate %q, want %q", got, wantChallenge)
					}
					if got := rec.Header().Get("Retry-After"); got != wantRetry {
						t.Errorf("Retry-After %q, want %q", got, wantRetry)
					}
				} else {
					if !reached || rec.Code != 200 {
						t.Fatalf("reached %v, answer %d", reached, rec.Code)
					}
					if got := Reason(err); got != tt.reason {
						t.Errorf("FromContext error %v (reason %q), want reason %q", err, got, tt.reason)
					}
					if tt.code == 200 && (res == nil || !res.Valid || res.Kind != "dc") {
						t.Errorf("FromContext result %+v", res)
					}
					if strings.HasPrefix(tt.reason, "client_status") && (res == nil || res.Status == header.StatusOK) {
						t.Errorf("FromContext result %+v lacks the envelope status", res)
					}
				}
				if tt.code == 200 && logs.Len() != 0 {
					t.Errorf("logged %q for a valid request", logs.String())
				}
				if tt.code != 200 && !strings.Contains(logs.String(), "reason="+tt.reason) {
					t.Errorf("log %q lacks reason=%s", logs.String(), tt.reason)
				}
				for _, hv := range tt.headers {
					if a, _ := Parse(hv); a != nil && len(a.Token) > 0 && strings.Contains(logs.String(), string(a.Token)) {
						t.Errorf("log %q reveals the token", logs.String())
					}
				}
			})
		}
	}
}

func TestMiddlewareCustomHeader(t *testing.T) {
	v := &Verifier{NoClient: true, AllowDev: true, MaxAge: -1, AllowReplays: true}
	value := mustEncode(t, header.Value{Kind: "dev", Token: []byte{1}})
	mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), MiddlewareOptions{Verifier: v, Header: "X-Device-Attestation"})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Device-Attestation", value)
	rec := httptest.NewRecorder()
	mw.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("answer %d %s", rec.Code, rec.Body)
	}
}

func TestFromContextWithoutMiddleware(t *testing.T) {
	res, err := FromContext(context.Background())
	if res != nil || !errors.Is(err, ErrNoResult) {
		t.Errorf("FromContext = %v, %v", res, err)
	}
	ctx := NewContext(context.Background(), &Result{Valid: true}, nil)
	if res, err := FromContext(ctx); err != nil || !res.Valid {
		t.Errorf("FromContext(NewContext) = %+v, %v", res, err)
	}
}

// Middleware refuses at construction what can only fail later: no
// Verifier, a Verifier without a Client that does not say so (every
// DeviceCheck token would be refused as not validated), one that says
// both, and a Client not made by NewClient.
func TestMiddlewareNeedsVerifier(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name  string
		v     *Verifier
		panic string
	}{
		{"no Verifier", nil, "Verifier is nil"},
		{"no Client", &Verifier{}, "no Client"},
		{"no Client, dev tokens", &Verifier{AllowDev: true}, "no Client"},
		{"zero Client", &Verifier{Client: &Client{}}, "NewClient"},
		{"Client and NoClient", &Verifier{Client: h.client, NoClient: true}, "NoClient"},
		{"NoClient", &Verifier{NoClient: true}, ""},
		{"Client", &Verifier{Client: h.client}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if (r != nil) != (tt.panic != "") || !strings.Contains(msg, tt.panic) {
					t.Errorf("Middleware panicked with %v, want a panic naming %q", r, tt.panic)
				}
			}()
			Middleware(http.NotFoundHandler(), MiddlewareOptions{Verifier: tt.v})
		})
	}
}

// A Client that did not come from NewClient is an error to use, not a
// panic.
func TestZeroClient(t *testing.T) {
	var c Client
	ctx := context.Background()
	if err := c.ValidateDeviceToken(ctx, []byte("tok")); !errors.Is(err, ErrNotValidated) {
		t.Errorf("ValidateDeviceToken on a zero Client: %v", err)
	}
	if _, err := c.QueryTwoBits(ctx, []byte("tok")); !errors.Is(err, ErrNotValidated) {
		t.Errorf("QueryTwoBits on a zero Client: %v", err)
	}
	c.CloseIdleConnections()
	v := &Verifier{Client: &c, Replays: NewMemoryReplayCache()}
	value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("tok"), GeneratedAt: time.Now()})
	res, err := v.Verify(ctx, value)
	if !errors.Is(err, ErrNotValidated) || res == nil || res.Valid || Rejected(err) {
		t.Errorf("Verify with a zero Client: %+v, %v", res, err)
	}
}

// With AllowWhenDown, only an outage of Apple lets a request through, and
// only one whose token passed every local check; what a flood or a
// hostile network can cause at will is refused as before.
func TestMiddlewareWhenAppleDown(t *testing.T) {
	closed := func() string { // a port nobody listens on: connection refused
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	tests := []struct {
		name   string
		config func(*Config)
		setup  func(*harness)
		token  func(h *harness) string
		code   int // 200: let through
		reason string
	}{
		{"Apple 503", nil, func(h *harness) { h.apple.Respond(status(503, "")) }, nil, 200, "apple_unavailable"},
		{"Apple 500", nil, func(h *harness) { h.apple.Respond(status(500, "")) }, nil, 200, "apple_server_error"},
		{"Apple unreachable", func(c *Config) { c.BaseURL = closed }, nil, nil, 200, "network"},
		// Attempts of 50 ms each, every one failing on its own timeout,
		// until the call's 300 ms run out ("timeout"), or until the time
		// left is shorter than the backoff before the next attempt, when
		// the last attempt's own timeout is reported ("network"; a loaded
		// machine gets there).
		{"Apple hangs", func(c *Config) {
			c.Timeout, c.AttemptTimeout, c.MaxAttempts, c.MinBackoff, c.MaxBackoff = 300*time.Millisecond, 50*time.Millisecond, 100, time.Millisecond, time.Millisecond
		}, func(h *harness) { h.apple.SetLatency(time.Hour) }, nil, 200, "timeout|network"},
		{"Apple 429", nil, func(h *harness) { h.apple.Respond(status(429, "")) }, nil, 503, "rate_limited"},
		{"our key refused", nil, func(h *harness) { h.apple.Respond(status(401, devicechecktest.BodyBadAuthorization)) }, nil, 503, "bad_authorization"},
		{"redirect", nil, func(h *harness) { h.apple.Redirect(302) }, nil, 503, "unexpected_response"},
		{"200 with a page", nil, func(h *harness) { h.apple.SetSuccessBody("<html>") }, nil, 503, "unexpected_response"},
		{"forged", nil, func(h *harness) { h.apple.ValidTokens(h.apple.Issued) }, nil, 403, "bad_device_token"},
		{"dev token", nil, nil, func(h *harness) string {
			return mustEncode(t, header.Value{Kind: "dev", Token: []byte("dev"), GeneratedAt: h.clock.Now()})
		}, 403, "dev_token"},
		{"too old", nil, nil, func(h *harness) string {
			return mustEncode(t, header.Value{Kind: "dc", Token: []byte("old"), GeneratedAt: h.clock.Now().Add(-time.Hour)})
		}, 403, "too_old"},
		{"malformed", nil, nil, func(*harness) string { return "v1.%%%" }, 401, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, oneAttempt, downAtOnce, tt.config)
			if tt.setup != nil {
				tt.setup(h)
			}
			value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("tok"), GeneratedAt: h.clock.Now()})
			if tt.token != nil {
				value = tt.token(h)
			}
			v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
			for _, when := range []DownPolicy{AllowWhenDown, RefuseWhenDown} {
				var got error
				reached := false
				mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					reached = true
					_, got = FromContext(r.Context())
				}), MiddlewareOptions{Verifier: v, WhenAppleDown: when})
				req := httptest.NewRequest("POST", "/", nil)
				req.Header.Set(HeaderName, value)
				rec := httptest.NewRecorder()
				v.Replays = NewMemoryReplayCache() // the same token under both policies
				mw.ServeHTTP(rec, req)
				want := tt.code
				if when == RefuseWhenDown && want == 200 {
					want = 503
				}
				if rec.Code != want || reached != (want == 200) {
					t.Errorf("policy %d: answer %d (reached %v), want %d; body %s", when, rec.Code, reached, want, rec.Body)
				}
				reasons := strings.Split(tt.reason, "|")
				if reached && !slices.Contains(reasons, Reason(got)) {
					t.Errorf("policy %d: FromContext error %v, want reason %s", when, got, tt.reason)
				}
				if !reached && !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(rec.Body.String(), `"reason":"`+r+`"`) }) {
					t.Errorf("policy %d: body %s, want reason %s", when, rec.Body, tt.reason)
				}
			}
		})
	}
}

// A token let through during an outage is spent: sent again, it is a
// replay and refused, outage or not.
func TestMiddlewareWhenAppleDownRefusesReplays(t *testing.T) {
	h := newHarness(t, oneAttempt, downAtOnce)
	h.apple.Respond(status(503, ""))
	v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
	mw := Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), MiddlewareOptions{Verifier: v, WhenAppleDown: AllowWhenDown})
	value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("captured"), GeneratedAt: h.clock.Now()})
	var codes []int
	for range 2 {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set(HeaderName, value)
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
	}
	if fmt.Sprint(codes) != "[200 403]" {
		t.Errorf("answers %v, want [200 403]", codes)
	}
}

// Apple's Retry-After reaches the client of a 503, rounded up to whole
// seconds and at most a minute.
func TestMiddlewareRetryAfter(t *testing.T) {
	for _, tt := range []struct{ apple, want string }{{"", "1"}, {"7", "7"}, {"3600", "60"}} {
		h := newHarness(t, oneAttempt)
		h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: 503, Header: http.Header{"Retry-After": {tt.apple}}}
		})
		v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
		mw := Middleware(http.NotFoundHandler(), MiddlewareOptions{Verifier: v})
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set(HeaderName, mustEncode(t, header.Value{Kind: "dc", Token: []byte("tok"), GeneratedAt: h.clock.Now()}))
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, req)
		if rec.Code != 503 || rec.Header().Get("Retry-After") != tt.want {
			t.Errorf("Apple's Retry-After %q: %d with Retry-After %q, want %q", tt.apple, rec.Code, rec.Header().Get("Retry-After"), tt.want)
		}
	}
}

// The next handler does not see the attestation header unless asked, and
// the request the middleware was given is left as it was.
func TestMiddlewareRemovesHeader(t *testing.T) {
	for _, tt := range []struct {
		keep   bool
		policy Policy
		value  string
	}{
		{false, Reject, ""}, {true, Reject, ""}, {false, Annotate, "v1.garbage"}, {true, Annotate, "v1.garbage"},
	} {
		v := &Verifier{NoClient: true, AllowDev: true, Replays: NewMemoryReplayCache()}
		value := tt.value
		if value == "" {
			value = mustEncode(t, header.Value{Kind: "dev", Token: []byte{1}, GeneratedAt: time.Now()})
		}
		var seen []string
		mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Values(HeaderName)
			if r.Header.Get("X-Other") != "kept" {
				t.Error("another header was lost")
			}
		}), MiddlewareOptions{Verifier: v, KeepHeader: tt.keep, Policy: tt.policy})
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set(HeaderName, value)
		req.Header.Set("X-Other", "kept")
		mw.ServeHTTP(httptest.NewRecorder(), req)
		if (len(seen) == 1) != tt.keep {
			t.Errorf("KeepHeader %v, policy %d: next handler saw %q", tt.keep, tt.policy, seen)
		}
		if req.Header.Get(HeaderName) != value {
			t.Errorf("KeepHeader %v: the caller's request lost its header", tt.keep)
		}
	}
}

// TestMiddlewareObservesEveryCheck: a request the middleware refuses
// before it calls Verify (no header, or more than one) is counted too, so
// a fleet whose app-server stopped sending the header shows in the
// metrics as reason "missing", not as silence.
func TestMiddlewareObservesEveryCheck(t *testing.T) {
	obs := &recordingObserver{}
	v := &Verifier{NoClient: true, AllowDev: true, Observer: obs, Replays: NewMemoryReplayCache()}
	mw := Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), MiddlewareOptions{Verifier: v})
	value := mustEncode(t, header.Value{Kind: header.KindDev, Token: []byte("tok"), GeneratedAt: time.Now()})
	for _, headers := range [][]string{nil, {value, value}, {value}} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, h := range headers {
			r.Header.Add(HeaderName, h)
		}
		mw.ServeHTTP(httptest.NewRecorder(), r)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if want := []string{"missing", "malformed", ""}; fmt.Sprint(obs.reasons) != fmt.Sprint(want) {
		t.Errorf("observed reasons %q, want %q", obs.reasons, want)
	}
}

// A check that ends without Apple's verdict on the token admits nothing,
// so the token is forgotten: the same header sent again once Apple is back
// is checked, not refused as a replay. A token Apple refused stays spent.
func TestRetryAfterNoVerdictIsCheckedAgain(t *testing.T) {
	tests := []struct {
		name   string
		config func(*Config)
		fail   func(*harness)
		reason string // of the first check
		second string // reason of the second check; "" for valid
	}{
		{"Apple 503", nil, func(h *harness) { h.apple.Respond(status(503, "")) }, "apple_unavailable", ""},
		{"Apple 500", nil, func(h *harness) { h.apple.Respond(status(500, "")) }, "apple_server_error", ""},
		{"Apple hangs", func(c *Config) { c.Timeout = 200 * time.Millisecond }, func(h *harness) { h.apple.SetLatency(time.Hour) }, "timeout", ""},
		{"Apple 429", nil, func(h *harness) { h.apple.Respond(status(429, "")) }, "rate_limited", ""},
		{"our key refused", nil, func(h *harness) { h.apple.Respond(status(401, devicechecktest.BodyBadAuthorization)) }, "bad_authorization", ""},
		{"redirect", nil, func(h *harness) { h.apple.Redirect(302) }, "unexpected_response", ""},
		{"200 with a page", nil, func(h *harness) { h.apple.SetSuccessBody("<html>") }, "unexpected_response", ""},
		{"forged", nil, func(h *harness) { h.apple.ValidTokens(func([]byte) bool { return false }) }, "bad_device_token", "replay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, oneAttempt, tt.config)
			v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
			value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("tok"), GeneratedAt: h.clock.Now()})
			tt.fail(h)
			if _, err := v.Verify(context.Background(), value); Reason(err) != tt.reason {
				t.Fatalf("first check: %v, want reason %s", err, tt.reason)
			}
			h.apple.Respond(nil)
			h.apple.Redirect(0)
			h.apple.SetSuccessBody("")
			h.apple.SetLatency(0)
			res, err := v.Verify(context.Background(), value)
			if tt.second == "" && (err != nil || !res.Valid) {
				t.Fatalf("second check, Apple back: %v, want valid", err)
			}
			if tt.second != "" && Reason(err) != tt.second {
				t.Fatalf("second check: %v, want reason %s", err, tt.second)
			}
		})
	}
}

// What a middleware may let through without Apple's yes stays spent: the
// same header afterwards is a replay, Apple back or not, and the next
// handler of an Annotate middleware sees that. What it refuses with 503
// admitted nothing and is checked again.
func TestMiddlewareSpendsWhatItMayLetThrough(t *testing.T) {
	tests := []struct {
		name    string
		opts    MiddlewareOptions
		apple   int    // Apple's answer to the first check
		codes   string // the middleware's answers to the two requests
		reasons string // what the next handler saw
	}{
		{"AllowWhenDown, Apple down", MiddlewareOptions{WhenAppleDown: AllowWhenDown}, 503, "[200 403]", "[apple_unavailable]"},
		{"AllowWhenDown, Apple 429", MiddlewareOptions{WhenAppleDown: AllowWhenDown}, 429, "[503 200]", "[]"},
		{"RefuseWhenDown, Apple down", MiddlewareOptions{}, 503, "[503 200]", "[]"},
		{"Annotate, Apple down", MiddlewareOptions{Policy: Annotate}, 503, "[200 200]", "[apple_unavailable replay]"},
		{"Annotate, Apple 429", MiddlewareOptions{Policy: Annotate}, 429, "[200 200]", "[rate_limited replay]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, oneAttempt, downAtOnce)
			h.apple.Respond(status(tt.apple, ""))
			opts := tt.opts
			opts.Verifier = &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
			reasons := []string{}
			mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := FromContext(r.Context())
				if err != nil {
					reasons = append(reasons, Reason(err))
				}
			}), opts)
			value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("passed"), GeneratedAt: h.clock.Now()})
			var codes []int
			for i := range 2 {
				if i == 1 {
					h.apple.Respond(nil) // Apple is back
				}
				req := httptest.NewRequest("POST", "/", nil)
				req.Header.Set(HeaderName, value)
				rec := httptest.NewRecorder()
				mw.ServeHTTP(rec, req)
				codes = append(codes, rec.Code)
			}
			if fmt.Sprint(codes) != tt.codes || fmt.Sprint(reasons) != tt.reasons {
				t.Errorf("answers %v, handler saw %v; want %s, %s", codes, reasons, tt.codes, tt.reasons)
			}
		})
	}
}

// A caller of Verify that lets a request through without Apple's yes
// spends the token: once, and afterwards the header is a replay.
func TestSpend(t *testing.T) {
	h := newHarness(t, oneAttempt, downAtOnce)
	h.apple.Respond(status(503, ""))
	v := &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}
	value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("spent"), GeneratedAt: h.clock.Now()})
	res, err := v.Verify(context.Background(), value)
	if !AppleDown(err) {
		t.Fatalf("Verify = %v, want Apple down", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a caller that has hung up still spends it
	if err := v.Spend(ctx, &res.Attestation); err != nil {
		t.Fatalf("Spend = %v", err)
	}
	if err := v.Spend(context.Background(), &res.Attestation); !errors.Is(err, ErrReplay) {
		t.Fatalf("second Spend = %v, want ErrReplay", err)
	}
	h.apple.Respond(nil)
	if _, err := v.Verify(context.Background(), value); !errors.Is(err, ErrReplay) {
		t.Fatalf("Verify after Spend = %v, want ErrReplay", err)
	}
	if err := (&Verifier{AllowReplays: true}).Spend(context.Background(), &res.Attestation); err != nil {
		t.Fatalf("Spend with AllowReplays = %v, want nil", err)
	}
}

// Under Annotate the next handler decides, and may admit what it sees,
// so a token whose check ended without Apple's verdict stays spent for
// the whole window, whatever the reason: also our own limit and a caller
// that hung up. (Before, those were forgotten, and a handler that let
// "limited" through admitted the same forged header again and again.) A
// token Apple refused keeps its short record.
func TestAnnotateKeepsWhatTheHandlerMayAdmit(t *testing.T) {
	h := newHarness(t, oneAttempt, func(c *Config) { c.RateLimit, c.RateBurst, c.Timeout = 1, 1, 200*time.Millisecond })
	h.apple.ValidTokens(h.apple.Issued)
	v := &Verifier{Client: h.client, Replays: memCache(h.clock), Now: h.clock.Now, MaxAge: -1}
	var reasons []string
	mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := FromContext(r.Context())
		reasons = append(reasons, Reason(err))
	}), MiddlewareOptions{Verifier: v, Policy: Annotate})
	serve := func(ctx context.Context, token string) {
		req := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
		req.Header.Set(HeaderName, mustEncode(t, header.Value{Kind: "dc", Token: []byte(token)}))
		mw.ServeHTTP(httptest.NewRecorder(), req)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	serve(ctx, "forged") // takes the one call a second the limit allows
	serve(ctx, "limited")
	serve(gone, "hung up")
	h.clock.Add(DefaultReplayWindow - time.Second)
	for _, tok := range []string{"limited", "hung up", "forged"} {
		serve(ctx, tok)
	}
	// The forged token's short record is gone: it is checked again
	// (limited, or refused by Apple if a second has passed), not a replay.
	if len(reasons) != 6 || fmt.Sprint(reasons[:5]) != "[bad_device_token limited canceled replay replay]" || reasons[5] == "replay" {
		t.Errorf("the handler saw %s, want [bad_device_token limited canceled replay replay (not replay)]", reasons)
	}
}
