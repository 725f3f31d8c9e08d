package appattest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClientAgainstTheProtocol(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	c := &Client{BaseURL: srv.base()} // a trailing slash is fine
	ctx := context.Background()
	svc := &fakeService{}
	key, _ := svc.GenerateKey(ctx)

	if st, err := c.KeyStatus(ctx, key); err != nil || st.Status != KeyUnknown {
		t.Fatalf("KeyStatus of a new key = %+v, %v; want unknown", st, err)
	}
	ch, err := c.Challenge(ctx)
	if err != nil || len(ch.Bytes) != 32 || ch.ExpiresIn != 5*time.Minute {
		t.Fatalf("Challenge = %+v, %v", ch, err)
	}
	att, _ := svc.AttestKey(ctx, key, sha(ch.Bytes))
	r, err := c.Register(ctx, key, att, ch.Text)
	if err != nil || r.KeyID != key || r.Environment != "development" || r.Again {
		t.Fatalf("Register = %+v, %v", r, err)
	}
	ch2, _ := c.Challenge(ctx)
	att2, _ := svc.AttestKey(ctx, key, sha(ch2.Bytes))
	if r, err := c.Register(ctx, key, att2, ch2.Text); err != nil || !r.Again {
		t.Fatalf("Register again = %+v, %v; want a 200", r, err)
	}
	if st, err := c.KeyStatus(ctx, key); err != nil || st.Status != KeyActive || st.Environment != "development" {
		t.Fatalf("KeyStatus = %+v, %v", st, err)
	}
	// The challenge was used: the same attestation again is refused.
	_, err = c.Register(ctx, key, att2, ch2.Text)
	var se *ServerError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &se) || se.Reason != "bad_attestation" {
		t.Fatalf("Register with a used challenge = %v", err)
	}
}

// answering serves every request with status, header Retry-After ra and
// body.
func answering(t *testing.T, status int, ra, body string) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("A", 43) + "="
	for _, tc := range []struct {
		name       string
		status     int
		ra, body   string
		call       string
		want       error
		retryAfter time.Duration
		reason     string
	}{
		{"refused", 403, "", `{"error":"no","reason":"bad_app_id"}`, "register", ErrRefused, 0, "bad_app_id"},
		{"rate limited", 429, "7", `{"error":"slow down","reason":"rate_limited"}`, "challenge", ErrRetryLater, 7 * time.Second, "rate_limited"},
		{"store down", 503, "", `not json`, "status", ErrRetryLater, 0, ""},
		{"malformed", 400, "", `{"error":"bad","reason":"malformed"}`, "register", nil, 0, "malformed"},
		{"another status", 500, "", ``, "challenge", ErrBadAnswer, 0, ""},
		{"redirect", 302, "", ``, "status", ErrBadAnswer, 0, ""},
		{"challenge not base64url", 200, "", `{"challenge":"a+b/","expiresInMs":1000}`, "challenge", ErrBadAnswer, 0, ""},
		{"challenge without expiry", 200, "", `{"challenge":"abcd"}`, "challenge", ErrBadAnswer, 0, ""},
		{"registered another key", 201, "", `{"keyId":"x","status":"active"}`, "register", ErrBadAnswer, 0, ""},
		{"registered, not active", 201, "", `{"keyId":"` + key + `","status":"revoked"}`, "register", ErrBadAnswer, 0, ""},
		{"status of another key", 200, "", `{"keyId":"x","status":"active"}`, "status", ErrBadAnswer, 0, ""},
		{"status unknown word", 200, "", `{"status":"maybe"}`, "status", ErrBadAnswer, 0, ""},
		{"too long", 200, "", strings.Repeat(" ", MaxResponseSize+1), "challenge", ErrBadAnswer, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := answering(t, tc.status, tc.ra, tc.body)
			c.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			var err error
			switch tc.call {
			case "challenge":
				_, err = c.Challenge(context.Background())
			case "register":
				_, err = c.Register(context.Background(), key, []byte("att"), "abcd")
			case "status":
				_, err = c.KeyStatus(context.Background(), key)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var se *ServerError
			if errors.As(err, &se) && (se.RetryAfter != tc.retryAfter || se.Reason != tc.reason) {
				t.Fatalf("ServerError %+v", se)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 9, 14, 9, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		" 30 ":                          30 * time.Second,
		"-5":                            0,
		"soon":                          0,
		"99999999":                      time.Hour,
		"Mon, 14 Sep 2026 09:01:00 GMT": time.Minute,
		"Mon, 14 Sep 2026 08:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestKeyStatusRefusesABadKeyID(t *testing.T) {
	t.Parallel()
	c := &Client{BaseURL: "http://127.0.0.1:1"}
	if _, err := c.KeyStatus(context.Background(), "not base64"); err == nil {
		t.Fatal("no error")
	}
}
