package verify

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func TestVerify(t *testing.T) {
	h := newHarness(t, oneAttempt)
	h.apple.ValidTokens(func(tok []byte) bool { return string(tok) != "forged" })
	now := h.clock.Now()
	enc := func(kind, tok string, gen time.Time) string {
		return mustEncode(t, header.Value{Kind: kind, Token: []byte(tok), GeneratedAt: gen})
	}
	noApple := &Client{base: Production} // never called: its dev tokens stay local

	tests := []struct {
		name       string
		v          Verifier
		in         string
		want       error // nil: valid
		apple      bool  // Apple was asked
		nilResult  bool
		appleCalls int
	}{
		{"dc valid", Verifier{Client: h.client}, enc("dc", "genuine", now), nil, true, false, 1},
		{"dc valid in envelope", Verifier{Client: h.client}, envelope(enc("dc", "genuine", now)), nil, true, false, 1},
		{"dc forged", Verifier{Client: h.client}, enc("dc", "forged", now), ErrBadDeviceToken, true, false, 1},
		{"dc without client", Verifier{}, enc("dc", "genuine", now), ErrNotValidated, false, false, 0},
		{"dev refused", Verifier{Client: h.client}, enc("dev", "random", now), ErrDevToken, false, false, 0},
		{"dev allowed, fake Apple asked", Verifier{Client: h.client, AllowDev: true}, enc("dev", "random", now), nil, true, false, 1},
		{"dev allowed, Apple's own host not asked", Verifier{Client: noApple, AllowDev: true}, enc("dev", "random", now), nil, false, false, 0},
		{"dev allowed, no client", Verifier{AllowDev: true}, enc("dev", "random", now), nil, false, false, 0},
		{"fresh enough", Verifier{Client: h.client, MaxAge: time.Minute}, enc("dc", "genuine", now.Add(-time.Minute)), nil, true, false, 1},
		{"too old", Verifier{Client: h.client, MaxAge: time.Minute}, enc("dc", "genuine", now.Add(-time.Minute-time.Millisecond)), ErrTooOld, false, false, 0},
		{"no generation time", Verifier{Client: h.client, MaxAge: time.Minute}, enc("dc", "genuine", time.Time{}), ErrTooOld, false, false, 0},
		{"no generation time, no limit", Verifier{Client: h.client, MaxAge: -1}, enc("dc", "genuine", time.Time{}), nil, true, false, 1},
		{"no generation time, default limit", Verifier{Client: h.client}, enc("dc", "genuine", time.Time{}), ErrTooOld, false, false, 0},
		{"older than the default limit", Verifier{Client: h.client}, enc("dc", "genuine", now.Add(-DefaultMaxAge-time.Millisecond)), ErrTooOld, false, false, 0},
		{"slightly in the future", Verifier{Client: h.client, MaxAge: time.Minute}, enc("dc", "genuine", now.Add(MaxClockSkew)), nil, true, false, 1},
		{"in the future", Verifier{Client: h.client, MaxAge: time.Minute}, enc("dc", "genuine", now.Add(MaxClockSkew+time.Second)), ErrFuture, false, false, 0},
		{"client timeout", Verifier{Client: h.client}, `{"v":1,"s":1}`, ErrClientStatus, false, false, 0},
		{"missing", Verifier{Client: h.client}, "", ErrMissing, false, true, 0},
		{"malformed", Verifier{Client: h.client}, "v1.x", ErrMalformed, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.apple.Requests())
			tt.v.Now = h.clock.Now
			tt.v.Replays = NewMemoryReplayCache() // the cases reuse tokens
			res, err := tt.v.Verify(context.Background(), tt.in)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error %v, want %v", err, tt.want)
			}
			if calls := len(h.apple.Requests()) - before; calls != tt.appleCalls {
				t.Errorf("Apple got %d requests, want %d", calls, tt.appleCalls)
			}
			if tt.nilResult {
				if res != nil {
					t.Errorf("Result %+v, want nil", res)
				}
				return
			}
			if res == nil {
				t.Fatal("nil Result")
			}
			if res.Valid != (err == nil) || res.AppleChecked != tt.apple {
				t.Errorf("Valid %v AppleChecked %v; want %v %v", res.Valid, res.AppleChecked, err == nil, tt.apple)
			}
		})
	}
}

func TestVerifyAge(t *testing.T) {
	clock := newFakeClock()
	v := &Verifier{AllowDev: true, AllowReplays: true, Now: clock.Now}
	res, err := v.Verify(context.Background(), mustEncode(t, header.Value{Kind: "dev", Token: []byte{1}, GeneratedAt: clock.Now().Add(-90 * time.Second)}))
	if err != nil || res.Age != 90*time.Second {
		t.Errorf("Age %v, err %v; want 1m30s", res.Age, err)
	}
}

func TestReason(t *testing.T) {
	h := newHarness(t, oneAttempt, downAtOnce)
	h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response {
		return &devicechecktest.Response{Status: 503}
	})
	appleErr := h.client.ValidateDeviceToken(context.Background(), []byte("x"))
	downErr := fmt.Errorf("%w (1 of 1 attempts failed): %w", ErrAppleDown, context.DeadlineExceeded)
	_, statusErr := Parse(`{"v":1,"s":2}`)
	tests := []struct {
		err      error
		reason   string
		rejected bool
		down     bool
	}{
		{nil, "", false, false},
		{ErrMissing, "missing", true, false},
		{statusErr, "client_status", true, false},
		{errors.Join(ErrMalformed, header.ErrBase64), "malformed", true, false},
		{ErrDevToken, "dev_token", true, false},
		{ErrTooOld, "too_old", true, false},
		{ErrFuture, "future", true, false},
		{ErrReplay, "replay", true, false},
		{fmt.Errorf("%w: %w", ErrReplayStore, context.DeadlineExceeded), "replay_store", false, false},
		{ErrNotValidated, "not_validated", false, false},
		{&AppleError{Status: 400, Err: ErrBadDeviceToken}, "bad_device_token", true, false},
		{&AppleError{Status: 401, Err: ErrBadAuthorization}, "bad_authorization", false, false},
		{&AppleError{Status: 302, Err: ErrUnexpectedResponse}, "unexpected_response", false, false},
		{&AppleError{Status: 429, Err: ErrRateLimited}, "rate_limited", false, false},
		// An outage is "down" only while the breaker says so.
		{&AppleError{Status: 500, Err: ErrServerError}, "apple_server_error", false, false},
		{appleErr, "apple_unavailable", false, true},
		{fmt.Errorf("x: %w: %w", ErrNetwork, errors.New("connection refused")), "network", false, false},
		{ErrLimited, "limited", false, false},
		{context.DeadlineExceeded, "timeout", false, false},
		{downErr, "timeout", false, true},
		{context.Canceled, "canceled", false, false},
		{errors.New("other"), "error", false, false},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.reason {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.reason)
		}
		if got := Rejected(tt.err); got != tt.rejected {
			t.Errorf("Rejected(%v) = %v, want %v", tt.err, got, tt.rejected)
		}
		if got := AppleDown(tt.err); got != tt.down {
			t.Errorf("AppleDown(%v) = %v, want %v", tt.err, got, tt.down)
		}
	}
}

// FuzzVerify runs the whole local path (parse, kind and age policy) on
// arbitrary input: it must not panic, and Valid must agree with the error.
func FuzzVerify(f *testing.F) {
	now := time.UnixMilli(1764000000000)
	for _, v := range []header.Value{
		{Kind: "dev", Token: make([]byte, 32), GeneratedAt: now},
		{Kind: "dev", Token: []byte{1}, GeneratedAt: now.Add(-time.Hour)},
		{Kind: "dev", Token: []byte{1}, GeneratedAt: now.Add(time.Hour)},
		{Kind: "dc", Token: []byte{1, 2, 3}, GeneratedAt: now},
	} {
		s, _ := header.Encode(v)
		f.Add(s)
		f.Add(envelope(s))
	}
	f.Add(`{"v":1,"s":3}`)
	f.Add("")
	v := &Verifier{AllowDev: true, MaxAge: time.Minute, AllowReplays: true, Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, s string) {
		res, err := v.Verify(context.Background(), s)
		if res != nil && res.Valid != (err == nil) {
			t.Fatalf("Valid %v with error %v", res.Valid, err)
		}
		if err == nil && (res == nil || res.Kind != header.KindDev) {
			t.Fatalf("valid without a Client: %+v", res)
		}
		if err != nil && Reason(err) == "error" {
			t.Fatalf("error %v has no reason", err)
		}
	})
}
