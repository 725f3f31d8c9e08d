package verify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func TestMiddleware(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxAttempts = 1 })
	h.apple.ValidTokens(func(tok []byte) bool { return string(tok) != "forged" })
	h.apple.Respond(func(r devicechecktest.Request) *devicechecktest.Response {
		if string(r.DeviceToken) == "outage" {
			return &devicechecktest.Response{Status: 503}
		}
		return nil
	})
	v := &Verifier{Client: h.client, MaxAge: time.Minute, Now: h.clock.Now}
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
	v := &Verifier{AllowDev: true}
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

func TestMiddlewareNeedsVerifier(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic without a Verifier")
		}
	}()
	Middleware(http.NotFoundHandler(), MiddlewareOptions{})
}
