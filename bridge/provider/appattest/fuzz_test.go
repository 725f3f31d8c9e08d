package appattest

import (
	"testing"
	"time"
)

// FuzzParseAnswers feeds every parser of a registration server's answer
// the same bytes: none may panic, and what they accept keeps the
// protocol's bounds.
func FuzzParseAnswers(f *testing.F) {
	for _, s := range []string{
		`{"challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","expiresInMs":300000}`,
		`{"keyId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","environment":"development","status":"active"}`,
		`{"keyId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","status":"revoked","environment":"production"}`,
		`{"error":"refused","reason":"bad_app_id"}`,
		`{"challenge":"","expiresInMs":-1}`, `null`, `[]`, `{"challenge":1}`, "",
	} {
		f.Add([]byte(s), "120")
	}
	f.Add([]byte(`{}`), "Mon, 14 Sep 2026 09:01:00 GMT")
	key := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	now := time.Date(2026, 9, 14, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, retryAfter string) {
		if c, err := parseChallenge(body); err == nil {
			if len(c.Bytes) == 0 || len(c.Bytes) > maxChallengeSize || c.ExpiresIn <= 0 || c.ExpiresIn > 24*time.Hour || c.Text == "" {
				t.Fatalf("accepted %+v", c)
			}
		}
		if r, err := parseRegistration(body, key); err == nil && (r.KeyID != key || r.Status != KeyActive) {
			t.Fatalf("accepted %+v", r)
		}
		if s, err := parseKeyState(body, key); err == nil && s.Status != KeyActive && s.Status != KeyRevoked {
			t.Fatalf("accepted %+v", s)
		}
		reason, msg := parseRefusal(body)
		if len(reason) > 203 || len(msg) > 203 {
			t.Fatalf("refusal not clipped: %d, %d bytes", len(reason), len(msg))
		}
		if d := parseRetryAfter(retryAfter, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("Retry-After %q = %v", retryAfter, d)
		}
	})
}
