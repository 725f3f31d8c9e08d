package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Base URLs of Apple's DeviceCheck server API.
const (
	Production  = "https://api.devicecheck.apple.com"
	Development = "https://api.development.devicecheck.apple.com"
)

// EnvironmentURL turns "production", "development" or an http(s) base URL
// (a fake server in tests, or a proxy) into the base URL a Client uses.
func EnvironmentURL(env string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "", "production", "prod":
		return Production, nil
	case "development", "dev":
		return Development, nil
	}
	u, err := url.Parse(env)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("environment %q: want production, development or an http(s) URL", env)
	}
	return strings.TrimRight(env, "/"), nil
}

// Errors for Apple's answers, each carried by an *AppleError (or, for
// ErrNetwork, wrapped with the transport's error). Test with errors.Is.
var (
	// ErrBadDeviceToken: Apple does not recognise the device token (400).
	// This is the answer for a forged or corrupted token.
	ErrBadDeviceToken = errors.New("apple rejected the device token")
	// ErrBadRequest: Apple rejected another part of the request (400, 405).
	ErrBadRequest = errors.New("apple rejected the request")
	// ErrBadAuthorization: Apple could not verify the authorization token
	// (401, or 400 for a malformed one): wrong team id, key id or key, or a
	// key without DeviceCheck enabled.
	ErrBadAuthorization = errors.New("apple rejected the authorization token")
	// ErrExpiredAuthorization: Apple says the authorization token expired
	// (401). The client signs a new one on the next call.
	ErrExpiredAuthorization = errors.New("apple says the authorization token expired")
	// ErrForbidden: Apple refused the request (403).
	ErrForbidden = errors.New("apple refused the request")
	// ErrRateLimited: too many requests (429). Retried.
	ErrRateLimited = errors.New("apple rate-limited the request")
	// ErrServerError: Apple failed (500 and other 5xx). Retried.
	ErrServerError = errors.New("apple server error")
	// ErrUnavailable: Apple is unavailable (503). Retried.
	ErrUnavailable = errors.New("apple service unavailable")
	// ErrUnexpectedResponse: a status or body the API does not document.
	ErrUnexpectedResponse = errors.New("unexpected answer from apple")
	// ErrNetwork: no answer (connection failure, per-request timeout).
	// Retried.
	ErrNetwork = errors.New("no answer from apple")
)

// AppleError is an answer from Apple other than success. Err is one of the
// sentinel errors above, so errors.Is(err, ErrBadDeviceToken) works.
type AppleError struct {
	// Op is the endpoint: validate_device_token, query_two_bits or
	// update_two_bits.
	Op string
	// Status is the HTTP status code.
	Status int
	// Body is Apple's answer text, cut to maxErrorBody bytes.
	Body string
	// Attempts is how many requests were made, counting retries.
	Attempts int
	Err      error
}

func (e *AppleError) Error() string {
	s := fmt.Sprintf("devicecheck %s: %v (HTTP %d", e.Op, e.Err, e.Status)
	if e.Body != "" {
		s += fmt.Sprintf(": %q", e.Body)
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(", %d attempts", e.Attempts)
	}
	return s + ")"
}

// Unwrap returns the sentinel error for the answer.
func (e *AppleError) Unwrap() error { return e.Err }

// Temporary reports whether the same request may succeed later.
func (e *AppleError) Temporary() bool { return retryable(e.Status) }

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// Config configures a Client. TeamID, KeyID and Key are required.
type Config struct {
	// TeamID is the Apple developer team identifier (the JWT iss).
	TeamID string
	// KeyID is the identifier of the DeviceCheck key (the JWT kid).
	KeyID string
	// Key is the key's private half, from LoadPrivateKey.
	Key *ecdsa.PrivateKey
	// BaseURL is Production (the default), Development, or another base
	// URL, e.g. a fake server in tests; see EnvironmentURL. Tokens from
	// development builds of an app validate only against Development.
	BaseURL string
	// HTTPClient sends the requests; nil uses a client with its own
	// transport, cloned from http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds each request to Apple; every retry gets its own.
	// Zero means 10 seconds.
	Timeout time.Duration
	// MaxAttempts bounds the requests per call, first one included, when
	// Apple answers 429 or 5xx or does not answer. Zero means 3; 1
	// disables retries. 4xx answers are never retried.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the jittered, exponentially growing
	// wait between attempts. Zero means 200ms and 3s.
	MinBackoff, MaxBackoff time.Duration
	// JWTRefresh is how long one authorization token is reused before a
	// new one is signed. Zero means DefaultJWTRefresh; at most 50 minutes,
	// since Apple accepts a token for an hour.
	JWTRefresh time.Duration
}

// Client calls Apple's DeviceCheck server API. It is safe for concurrent
// use; share one per process so its authorization token is reused.
type Client struct {
	base        string
	hc          *http.Client
	timeout     time.Duration
	maxAttempts int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	jwt         *jwtSource

	// Seams for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	if cfg.TeamID == "" || cfg.KeyID == "" || cfg.Key == nil {
		return nil, errors.New("devicecheck client: team id, key id and key are required")
	}
	base := cfg.BaseURL
	if base == "" {
		base = Production
	}
	base, err := EnvironmentURL(base)
	if err != nil {
		return nil, fmt.Errorf("devicecheck client: %w", err)
	}
	c := &Client{
		base:        base,
		hc:          cfg.HTTPClient,
		timeout:     orDefault(cfg.Timeout, 10*time.Second),
		maxAttempts: cfg.MaxAttempts,
		minBackoff:  orDefault(cfg.MinBackoff, 200*time.Millisecond),
		maxBackoff:  orDefault(cfg.MaxBackoff, 3*time.Second),
		now:         time.Now,
		sleep:       sleepCtx,
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 3
	}
	c.maxBackoff = max(c.maxBackoff, c.minBackoff)
	refresh := min(orDefault(cfg.JWTRefresh, DefaultJWTRefresh), maxJWTRefresh)
	c.jwt = &jwtSource{
		teamID: cfg.TeamID, keyID: cfg.KeyID, key: cfg.Key,
		refresh: refresh,
		now:     func() time.Time { return c.now() },
		sign:    signToken,
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// BaseURL returns the base URL the client sends requests to.
func (c *Client) BaseURL() string { return c.base }

// CloseIdleConnections closes the client's idle connections to Apple.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Bits is the two per-device bits Apple stores for an app.
type Bits struct {
	// Found is false when Apple has no bits for the device yet ("Bit State
	// Not Found"); the other fields are then zero.
	Found      bool
	Bit0, Bit1 bool
	// LastUpdated is the month of the last update, as Apple reports it
	// ("YYYY-MM").
	LastUpdated string
}

// ValidateDeviceToken asks Apple whether token came from a genuine Apple
// device running an app of this developer team. It returns nil when Apple
// accepts it; an error wrapping ErrBadDeviceToken when Apple does not.
func (c *Client) ValidateDeviceToken(ctx context.Context, token []byte) error {
	_, err := c.call(ctx, "validate_device_token", token, nil)
	return err
}

// QueryTwoBits returns the device's two bits. "Bit State Not Found" is a
// normal answer: Bits.Found is false and the error nil.
func (c *Client) QueryTwoBits(ctx context.Context, token []byte) (Bits, error) {
	const op = "query_two_bits"
	body, err := c.call(ctx, op, token, nil)
	if err != nil {
		return Bits{}, err
	}
	if bitStateNotFound(body) {
		return Bits{}, nil
	}
	var w struct {
		Bit0           *bool  `json:"bit0"`
		Bit1           *bool  `json:"bit1"`
		LastUpdateTime string `json:"last_update_time"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.Bit0 == nil || w.Bit1 == nil {
		return Bits{}, &AppleError{Op: op, Status: http.StatusOK, Body: cut(body), Err: ErrUnexpectedResponse}
	}
	return Bits{Found: true, Bit0: *w.Bit0, Bit1: *w.Bit1, LastUpdated: w.LastUpdateTime}, nil
}

// UpdateTwoBits sets the device's two bits.
func (c *Client) UpdateTwoBits(ctx context.Context, token []byte, bit0, bit1 bool) error {
	_, err := c.call(ctx, "update_two_bits", token, &[2]bool{bit0, bit1})
	return err
}

func bitStateNotFound(body []byte) bool {
	s := strings.ToLower(strings.TrimSpace(string(body)))
	return s == "failed to find bit state" || s == "bit state not found"
}

// request is the JSON body Apple expects; the field order is Apple's.
type request struct {
	DeviceToken   string `json:"device_token"`
	TransactionID string `json:"transaction_id"`
	Timestamp     int64  `json:"timestamp"`
	Bit0          *bool  `json:"bit0,omitempty"`
	Bit1          *bool  `json:"bit1,omitempty"`
}

const (
	maxResponseBody = 64 << 10
	maxErrorBody    = 512
)

// call posts to one endpoint, retrying where that is safe, and returns the
// body of a 200 answer.
func (c *Client) call(ctx context.Context, op string, token []byte, bits *[2]bool) ([]byte, error) {
	if len(token) == 0 {
		return nil, fmt.Errorf("devicecheck %s: %w: empty device token", op, ErrBadDeviceToken)
	}
	deviceToken := base64.StdEncoding.EncodeToString(token)
	var last error
	for attempt := 1; ; attempt++ {
		req := request{DeviceToken: deviceToken, TransactionID: newTransactionID(), Timestamp: c.now().UnixMilli()}
		if bits != nil {
			req.Bit0, req.Bit1 = &bits[0], &bits[1]
		}
		body, retryAfter, err := c.once(ctx, op, req)
		if err == nil {
			return body, nil
		}
		var ae *AppleError
		if errors.As(err, &ae) {
			ae.Attempts = attempt
		}
		last = err
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("devicecheck %s: %w; last attempt: %w", op, ctx.Err(), last)
		}
		temporary := errors.Is(err, ErrNetwork) || (ae != nil && ae.Temporary())
		if !temporary || attempt >= c.maxAttempts || ctx.Err() != nil {
			return nil, err
		}
		if err := c.sleep(ctx, c.backoff(attempt, retryAfter)); err != nil {
			return nil, fmt.Errorf("devicecheck %s: %w; last attempt: %w", op, err, last)
		}
	}
}

// backoff returns the wait before attempt+1: full jitter over an
// exponentially growing window, capped at maxBackoff. A Retry-After from
// Apple raises the wait, within the same cap.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	window := c.minBackoff << min(attempt-1, 16)
	if window <= 0 || window > c.maxBackoff {
		window = c.maxBackoff
	}
	d := c.minBackoff/2 + mrand.N(window-c.minBackoff/2+1)
	d = max(d, min(retryAfter, c.maxBackoff))
	return min(d, c.maxBackoff)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// once makes one request. A non-nil error is an *AppleError, wraps
// ErrNetwork, or (when ctx is done) wraps ctx.Err().
func (c *Client) once(ctx context.Context, op string, r request) (body []byte, retryAfter time.Duration, err error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, 0, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	bearer, err := c.jwt.token()
	if err != nil {
		return nil, 0, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.base+"/v1/"+op, bytes.NewReader(payload))
	if err != nil {
		return nil, 0, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("devicecheck %s: %w", op, ctx.Err())
		}
		return nil, 0, fmt.Errorf("devicecheck %s: %w: %w", op, ErrNetwork, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("devicecheck %s: %w", op, ctx.Err())
		}
		return nil, 0, fmt.Errorf("devicecheck %s: read answer: %w: %w", op, ErrNetwork, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, 0, nil
	}
	if resp.StatusCode == http.StatusUnauthorized {
		c.jwt.invalidate(bearer)
	}
	return nil, parseRetryAfter(resp.Header.Get("Retry-After")), &AppleError{
		Op: op, Status: resp.StatusCode, Body: cut(body), Err: classify(resp.StatusCode, body),
	}
}

// classify maps a non-200 answer to its sentinel error.
func classify(status int, body []byte) error {
	text := strings.ToLower(string(body))
	switch {
	case status == http.StatusBadRequest && strings.Contains(text, "device token"):
		return ErrBadDeviceToken
	case status == http.StatusBadRequest && strings.Contains(text, "authorization"):
		return ErrBadAuthorization
	case status == http.StatusBadRequest, status == http.StatusMethodNotAllowed:
		return ErrBadRequest
	case status == http.StatusUnauthorized && strings.Contains(text, "expired"):
		return ErrExpiredAuthorization
	case status == http.StatusUnauthorized:
		return ErrBadAuthorization
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusServiceUnavailable:
		return ErrUnavailable
	case status >= 500:
		return ErrServerError
	}
	return ErrUnexpectedResponse
}

func parseRetryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// cut returns body as text of at most maxErrorBody bytes, for error
// messages.
func cut(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// newTransactionID returns a random (version 4) UUID.
func newTransactionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("verify: crypto/rand failed: " + err.Error()) // never happens since Go 1.24
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
