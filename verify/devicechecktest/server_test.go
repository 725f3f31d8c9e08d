package devicechecktest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The fake is only as good as its checks: each request below is wrong in
// one way Apple would refuse, and must be refused the same way.
func TestServerChecksRequests(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := NewServer(&key.PublicKey, "TEAM", "KID")
	defer s.Close()
	defer s.Client().CloseIdleConnections()

	now := time.Now()
	sign := func(k *ecdsa.PrivateKey, kid, iss string, iat time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "iat": iat.Unix()})
		tok.Header["kid"] = kid
		str, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return str
	}
	good := sign(key, "KID", "TEAM", now)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "TEAM", "iat": now.Unix()})
	hs.Header["kid"] = "KID"
	hsToken, _ := hs.SignedString([]byte("secret"))
	body := func(tok, txid string, ts int64) string {
		return fmt.Sprintf(`{"device_token":%q,"transaction_id":%q,"timestamp":%d}`, tok, txid, ts)
	}
	ms := now.UnixMilli()

	tests := []struct {
		name, method, path, jwt, body string
		status                        int
		answer                        string
	}{
		{"valid", "POST", "/v1/validate_device_token", good, body("AQID", "tx-1", ms), 200, ""},
		{"query, nothing stored", "POST", "/v1/query_two_bits", good, body("AQID", "tx-2", ms), 200, BodyBitStateNotFound},
		{"no authorization", "POST", "/v1/validate_device_token", "", body("AQID", "tx-3", ms), 400, BodyBadAuthorizationFormat},
		{"bearer not a JWT", "POST", "/v1/validate_device_token", "opaque-api-key", body("AQID", "tx-16", ms), 400, BodyBadAuthorizationFormat},
		{"bearer with a JWT's dots only", "POST", "/v1/validate_device_token", "a.b.c", body("AQID", "tx-17", ms), 400, BodyBadAuthorizationFormat},
		{"signed by another key", "POST", "/v1/validate_device_token", sign(other, "KID", "TEAM", now), body("AQID", "tx-4", ms), 401, BodyBadAuthorization},
		{"wrong kid", "POST", "/v1/validate_device_token", sign(key, "OTHER", "TEAM", now), body("AQID", "tx-5", ms), 401, BodyBadAuthorization},
		{"wrong iss", "POST", "/v1/validate_device_token", sign(key, "KID", "OTHER", now), body("AQID", "tx-6", ms), 401, BodyBadAuthorization},
		{"HS256", "POST", "/v1/validate_device_token", hsToken, body("AQID", "tx-7", ms), 401, BodyBadAuthorization},
		{"JWT over an hour old", "POST", "/v1/validate_device_token", sign(key, "KID", "TEAM", now.Add(-61*time.Minute)), body("AQID", "tx-8", ms), 401, BodyExpired},
		{"URL-safe base64", "POST", "/v1/validate_device_token", good, body("-_-_", "tx-9", ms), 400, BodyBadDeviceToken},
		{"wrapped base64", "POST", "/v1/validate_device_token", good, body("AQID\nAQID", "tx-10", ms), 400, BodyBadDeviceToken},
		{"empty token", "POST", "/v1/validate_device_token", good, body("", "tx-11", ms), 400, BodyBadDeviceToken},
		{"no transaction id", "POST", "/v1/validate_device_token", good, body("AQID", "", ms), 400, BodyBadTransaction},
		{"reused transaction id", "POST", "/v1/validate_device_token", good, body("AQID", "tx-1", ms), 400, BodyBadTransaction},
		{"timestamp in seconds", "POST", "/v1/validate_device_token", good, body("AQID", "tx-12", now.Unix()), 400, BodyBadTimestamp},
		{"timestamp a string", "POST", "/v1/validate_device_token", good, `{"device_token":"AQID","transaction_id":"tx-13","timestamp":"1"}`, 400, BodyBadTimestamp},
		{"update without bits", "POST", "/v1/update_two_bits", good, body("AQID", "tx-14", ms), 400, BodyBadBits},
		{"GET", "GET", "/v1/validate_device_token", good, "", 405, "Method Not Allowed"},
		{"unknown endpoint", "POST", "/v1/other", good, body("AQID", "tx-15", ms), 404, "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader(tt.body))
			if tt.jwt != "" {
				req.Header.Set("Authorization", "Bearer "+tt.jwt)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || strings.TrimSpace(string(b)) != tt.answer {
				t.Errorf("answer %d %q, want %d %q", resp.StatusCode, b, tt.status, tt.answer)
			}
		})
	}
	if n := s.JWTs(); n < 5 {
		t.Errorf("JWTs() = %d, counted too few distinct tokens", n)
	}
}

// The lifetime and one-use models refuse exactly what they say they do.
func TestServerTokenLifetimeAndReuse(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := NewServer(&key.PublicKey, "TEAM", "KID")
	defer s.Close()
	defer s.Client().CloseIdleConnections()
	var mu sync.Mutex
	now := time.Now()
	s.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	tx := 0
	validate := func(tok []byte) int {
		tx++
		jt := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "TEAM", "iat": s.Now().Unix()})
		jt.Header["kid"] = "KID"
		bearer, err := jt.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"device_token":%q,"transaction_id":"tx-%d","timestamp":%d}`,
			base64.StdEncoding.EncodeToString(tok), tx, s.Now().UnixMilli())
		req, _ := http.NewRequest("POST", s.URL+"/v1/validate_device_token", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	s.SetTokenLifetime(30 * time.Second)
	young, old := s.IssueToken(), s.IssueToken()
	advance(20 * time.Second)
	if got := validate(young); got != 200 {
		t.Errorf("a token 20 s old, lifetime 30 s: %d, want 200", got)
	}
	advance(11 * time.Second)
	if got := validate(old); got != 400 {
		t.Errorf("a token 31 s old, lifetime 30 s: %d, want 400", got)
	}
	if got := validate([]byte("not issued by the fake")); got != 200 {
		t.Errorf("a token the fake did not issue: %d, want 200 (the lifetime covers only issued ones)", got)
	}

	s.SetTokenLifetime(0)
	tok := s.IssueToken()
	if a, b := validate(tok), validate(tok); a != 200 || b != 200 {
		t.Errorf("reuse allowed: %d then %d, want 200 twice", a, b)
	}
	s.RejectReuse(true)
	tok = s.IssueToken()
	if a, b := validate(tok), validate(tok); a != 200 || b != 400 {
		t.Errorf("reuse refused: %d then %d, want 200 then 400", a, b)
	}
}

// post sends one validate_device_token request for tok with a fresh JWT
// and returns the answer's status, body and Location.
func post(t *testing.T, s *Server, key *ecdsa.PrivateKey, tok []byte, tx string) (int, string, string) {
	t.Helper()
	jt := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "TEAM", "iat": s.Now().Unix()})
	jt.Header["kid"] = "KID"
	bearer, err := jt.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"device_token":%q,"transaction_id":%q,"timestamp":%d}`,
		base64.StdEncoding.EncodeToString(tok), tx, s.Now().UnixMilli())
	req, _ := http.NewRequest("POST", s.URL+"/v1/validate_device_token", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	// Redirects are the fake's answer under test: never follow them here.
	hc := &http.Client{Transport: s.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// Each model of a hostile network answers as documented, and stops when
// switched off.
func TestServerHostileNetworkModels(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := NewServer(&key.PublicKey, "TEAM", "KID")
	defer s.Close()
	defer s.Client().CloseIdleConnections()
	tx := 0
	validate := func(tok []byte) (int, string, string) {
		tx++
		return post(t, s, key, tok, fmt.Sprintf("tx-%d", tx))
	}

	s.SetSuccessBody("<html>Welcome to the hotel network</html>")
	if code, body, _ := validate(s.IssueToken()); code != 200 || body != "<html>Welcome to the hotel network</html>" {
		t.Errorf("success body: %d %q", code, body)
	}
	s.SetSuccessBody("")
	if code, body, _ := validate(s.IssueToken()); code != 200 || body != "" {
		t.Errorf("success body off: %d %q", code, body)
	}

	for _, code := range []int{301, 302, 303, 307, 308} {
		s.Redirect(code)
		got, _, loc := validate(s.IssueToken())
		if got != code || loc != PortalPath {
			t.Errorf("Redirect(%d): %d to %q", code, got, loc)
		}
	}
	s.Redirect(0)
	resp, err := s.Client().Get(s.URL + PortalPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; resp.StatusCode != 200 || len(b) != 0 || last.Op != PortalPath || last.Method != "GET" {
		t.Errorf("portal: %d %q, recorded %+v", resp.StatusCode, b, last)
	}

	devTok, prodTok := s.IssueTokenFor(Development), s.IssueTokenFor(Production)
	if code, body, _ := validate(devTok); code != 400 || body != BodyBadDeviceToken {
		t.Errorf("development token at production: %d %q", code, body)
	}
	s.SetEnvironment(Development)
	if code, _, _ := validate(devTok); code != 200 {
		t.Errorf("development token at development: %d", code)
	}
	if code, _, _ := validate(prodTok); code != 400 {
		t.Errorf("production token at development: %d", code)
	}
	if tok := s.IssueToken(); !s.Issued(tok) {
		t.Error("IssueToken's token not Issued")
	} else if code, _, _ := validate(tok); code != 200 {
		t.Errorf("IssueToken at development: %d, want the fake's own environment", code)
	}
	if s.Issued([]byte("forged")) {
		t.Error("a forged token counts as issued")
	}
	s.SetEnvironment(Production)

	var mu sync.Mutex
	now := time.Now()
	s.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.SetRateLimit(2)
	var codes []int
	for range 3 {
		code, _, _ := validate(s.IssueToken())
		codes = append(codes, code)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	code, _, _ := validate(s.IssueToken())
	if fmt.Sprint(codes, code) != "[200 200 429] 200" {
		t.Errorf("rate limit 2/s: %v then %d, want [200 200 429] 200", codes, code)
	}
	s.SetRateLimit(0)
}

// A slow fake holds its answer, and lets go as soon as the client hangs
// up rather than when its latency ends.
func TestServerLatencyEndsWithClient(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := NewServer(&key.PublicKey, "TEAM", "KID")
	defer s.Close()
	defer s.Client().CloseIdleConnections()
	s.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	wrote := make(chan struct{})
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/validate_device_token", strings.NewReader("{}"))
	done := make(chan error, 1)
	go func() {
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-wrote // the fake has the request, or will read it from the socket
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("request to a slow fake: %v, want canceled", err)
	}
	// Close waits for the handler: it returns only if the hang-up ended
	// the wait. The timer only turns a hang into a failure.
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the fake still waits after the client hung up")
	}
}
