package appattest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxResponseSize bounds what the client reads of a registration
// server's answer; the protocol's answers are a few hundred bytes.
const MaxResponseSize = 64 << 10

// maxChallengeSize bounds a challenge's decoded bytes (the protocol's are
// 32).
const maxChallengeSize = 1 << 10

// The key states the key-status endpoint reports, and KeyUnknown for its
// 404.
const (
	KeyActive  = "active"
	KeyRevoked = "revoked"
	KeyUnknown = "unknown"
)

// Sentinels a *ServerError matches with errors.Is.
var (
	// ErrRefused is a 403: the server refused the attestation (its
	// reason says why); another try with the same settings is refused
	// again.
	ErrRefused = errors.New("the registration server refused the key")
	// ErrRetryLater is a 429 or 503: the server asks to come back later
	// (ServerError.RetryAfter says when, if it did).
	ErrRetryLater = errors.New("the registration server asks to try again later")
	// ErrBadAnswer is an answer the protocol does not allow: another
	// status, a body that is not the JSON expected, a key id that is not
	// the one asked about.
	ErrBadAnswer = errors.New("the registration server's answer is not the protocol's")
)

// ServerError is a registration server's answer other than success.
type ServerError struct {
	// Op is the call: "challenge", "register" or "key status".
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Reason and Message are the body's "reason" and "error", when it is
	// the protocol's JSON error.
	Reason, Message string
	// RetryAfter is the Retry-After header's wait, or zero.
	RetryAfter time.Duration
	// Err, when set, says what was wrong with a successful status's body.
	Err error
}

func (e *ServerError) Error() string {
	s := fmt.Sprintf("appattest %s: HTTP %d", e.Op, e.StatusCode)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %v", e.RetryAfter)
	}
	return s
}

// Unwrap returns Err.
func (e *ServerError) Unwrap() error { return e.Err }

// Is reports whether target is ErrRefused (403), ErrRetryLater (429,
// 503) or ErrBadAnswer (any other status, or a body that is not the
// protocol's).
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrRefused:
		return e.StatusCode == http.StatusForbidden
	case ErrRetryLater:
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
	case ErrBadAnswer:
		return e.Err != nil || !knownStatus(e.StatusCode)
	}
	return false
}

func knownStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	}
	return false
}

// Client speaks the registration protocol with the server under BaseURL
// (an attestd gate, or any server that mounts the registration handlers at
// {BaseURL}/appattest/).
type Client struct {
	// BaseURL is the server's base URL, as --appattest-register gives it.
	BaseURL string
	// HTTP carries the requests; nil is http.DefaultClient. Bound each
	// call with its ctx.
	HTTP *http.Client
}

// Challenge is a registration challenge.
type Challenge struct {
	// Text is the challenge as the server gave it, which Register sends
	// back.
	Text string
	// Bytes is Text decoded: the key is attested with clientDataHash =
	// SHA-256(Bytes).
	Bytes []byte
	// ExpiresIn is how long the server keeps it.
	ExpiresIn time.Duration
}

// Registration is the server's answer to a registration.
type Registration struct {
	KeyID       string // standard base64, as sent
	Environment string // "development" or "production"
	Status      string // KeyActive
	// Again reports a 200: the key was registered before.
	Again bool
}

// KeyState is the key-status endpoint's answer.
type KeyState struct {
	// Status is KeyActive, KeyRevoked or, for a 404, KeyUnknown.
	Status      string
	Environment string
}

// Challenge asks for a registration challenge.
func (c *Client) Challenge(ctx context.Context) (Challenge, error) {
	resp, body, err := c.do(ctx, http.MethodPost, "/appattest/challenge", []byte("{}"))
	if err != nil {
		return Challenge{}, fmt.Errorf("appattest challenge: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Challenge{}, serverError("challenge", resp, body)
	}
	ch, err := parseChallenge(body)
	if err != nil {
		return Challenge{}, &ServerError{Op: "challenge", StatusCode: resp.StatusCode, Err: err}
	}
	return ch, nil
}

// Register sends the key's attestation, made for challenge.
func (c *Client) Register(ctx context.Context, keyID string, attestation []byte, challenge string) (Registration, error) {
	req, err := json.Marshal(struct {
		KeyID       string `json:"keyId"`
		Attestation string `json:"attestation"`
		Challenge   string `json:"challenge"`
	}{keyID, base64.StdEncoding.EncodeToString(attestation), challenge})
	if err != nil {
		return Registration{}, err
	}
	resp, body, err := c.do(ctx, http.MethodPost, "/appattest/register", req)
	if err != nil {
		return Registration{}, fmt.Errorf("appattest register: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return Registration{}, serverError("register", resp, body)
	}
	r, err := parseRegistration(body, keyID)
	if err != nil {
		return Registration{}, &ServerError{Op: "register", StatusCode: resp.StatusCode, Err: err}
	}
	r.Again = resp.StatusCode == http.StatusOK
	return r, nil
}

// KeyStatus asks about the key whose id is keyID (standard base64, as
// App Attest gives it).
func (c *Client) KeyStatus(ctx context.Context, keyID string) (KeyState, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(keyID)
	if err != nil {
		return KeyState{}, fmt.Errorf("appattest key status: key id %q: %w", keyID, err)
	}
	resp, body, err := c.do(ctx, http.MethodGet, "/appattest/keys/"+base64.RawURLEncoding.EncodeToString(raw), nil)
	if err != nil {
		return KeyState{}, fmt.Errorf("appattest key status: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return KeyState{Status: KeyUnknown}, nil
	case http.StatusOK:
	default:
		return KeyState{}, serverError("key status", resp, body)
	}
	st, err := parseKeyState(body, keyID)
	if err != nil {
		return KeyState{}, &ServerError{Op: "key status", StatusCode: resp.StatusCode, Err: err}
	}
	return st, nil
}

// do makes one request and reads at most MaxResponseSize of its answer.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read the answer: %w", err)
	}
	if len(data) > MaxResponseSize {
		return nil, nil, fmt.Errorf("%w: an answer longer than %d bytes", ErrBadAnswer, MaxResponseSize)
	}
	return resp, data, nil
}

// serverError is the *ServerError of an answer that is not a success.
func serverError(op string, resp *http.Response, body []byte) *ServerError {
	e := &ServerError{Op: op, StatusCode: resp.StatusCode}
	e.Reason, e.Message = parseRefusal(body)
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseChallenge reads the challenge endpoint's body.
func parseChallenge(body []byte) (Challenge, error) {
	var v struct {
		Challenge   *string `json:"challenge"`
		ExpiresInMs *int64  `json:"expiresInMs"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Challenge{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if v.Challenge == nil || v.ExpiresInMs == nil {
		return Challenge{}, fmt.Errorf("%w: no challenge or expiresInMs", ErrBadAnswer)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(*v.Challenge)
	if err != nil || len(raw) == 0 || len(raw) > maxChallengeSize || strings.ContainsAny(*v.Challenge, "\r\n") {
		return Challenge{}, fmt.Errorf("%w: the challenge is not 1 to %d bytes of unpadded base64url", ErrBadAnswer, maxChallengeSize)
	}
	if *v.ExpiresInMs <= 0 || *v.ExpiresInMs > int64(24*time.Hour/time.Millisecond) {
		return Challenge{}, fmt.Errorf("%w: expiresInMs %d is not within a day", ErrBadAnswer, *v.ExpiresInMs)
	}
	return Challenge{Text: *v.Challenge, Bytes: raw, ExpiresIn: time.Duration(*v.ExpiresInMs) * time.Millisecond}, nil
}

// parseRegistration reads the register endpoint's body for keyID.
func parseRegistration(body []byte, keyID string) (Registration, error) {
	var v struct {
		KeyID       string `json:"keyId"`
		Environment string `json:"environment"`
		Status      string `json:"status"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Registration{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if v.KeyID != keyID || v.Status != KeyActive {
		return Registration{}, fmt.Errorf("%w: key %q with status %q, want %q active", ErrBadAnswer, v.KeyID, v.Status, keyID)
	}
	return Registration{KeyID: v.KeyID, Environment: v.Environment, Status: v.Status}, nil
}

// parseKeyState reads the key-status endpoint's 200 body for keyID.
func parseKeyState(body []byte, keyID string) (KeyState, error) {
	var v struct {
		KeyID       *string `json:"keyId"`
		Status      string  `json:"status"`
		Environment string  `json:"environment"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return KeyState{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if v.KeyID != nil && *v.KeyID != keyID && *v.KeyID != toURL(keyID) {
		return KeyState{}, fmt.Errorf("%w: an answer about key %q", ErrBadAnswer, *v.KeyID)
	}
	if v.Status != KeyActive && v.Status != KeyRevoked {
		return KeyState{}, fmt.Errorf("%w: key status %q", ErrBadAnswer, v.Status)
	}
	return KeyState{Status: v.Status, Environment: v.Environment}, nil
}

// toURL returns a standard base64 key id in unpadded base64url.
func toURL(keyID string) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(keyID), "=")
}

// parseRefusal reads the protocol's error body, {"error":…,"reason":…};
// anything else gives empty strings. Both are cut to 200 bytes.
func parseRefusal(body []byte) (reason, message string) {
	var v struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", ""
	}
	return clip(v.Reason), clip(v.Error)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// maxRetryAfter bounds what a server may ask the helper to wait.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date, at most maxRetryAfter; zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
