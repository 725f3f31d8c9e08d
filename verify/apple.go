package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Base URLs of Apple's DeviceCheck server API.
const (
	Production  = "https://api.devicecheck.apple.com"
	Development = "https://api.development.devicecheck.apple.com"
)

// EnvironmentURL turns "production", "development" or a base URL (a fake
// server in tests, or a proxy) into the base URL a Client uses. A base
// URL must be https, or plain http to a loopback address (127.0.0.0/8,
// ::1 or localhost, which a Client then reaches at 127.0.0.1 without
// asking the resolver), and must carry no query, fragment or credentials:
// the bearer JWT and the device tokens go wherever it points.
func EnvironmentURL(env string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "", "production", "prod":
		return Production, nil
	case "development", "dev":
		return Development, nil
	}
	u, err := url.Parse(env)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("environment %q: want production, development or an https URL", env)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "", fmt.Errorf("environment %q: plain http is allowed only to a loopback address; use https", env)
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("environment %q: want production, development or an https URL", env)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(env, "#"):
		return "", fmt.Errorf("environment %q: a base URL must not have a query or a fragment", env)
	case u.User != nil:
		return "", fmt.Errorf("environment %q: a base URL must not carry credentials", env)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// pinLocalhost returns the URL to send requests to for base: for plain
// http to "localhost", the same URL to 127.0.0.1, and the Host header
// that keeps the name. Plain http is allowed to localhost because it is
// this machine; asking the system resolver would let /etc/hosts or a DNS
// search domain send the bearer JWT in clear elsewhere. (https names are
// resolved as usual: TLS checks whom it reaches.)
func pinLocalhost(base string) (target, hostHeader string) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || !strings.EqualFold(u.Hostname(), "localhost") {
		return base, ""
	}
	hostHeader, port := u.Host, u.Port()
	u.Host = "127.0.0.1"
	if port != "" {
		u.Host = net.JoinHostPort("127.0.0.1", port)
	}
	return u.String(), hostHeader
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Errors for Apple's answers, each carried by an *AppleError (or, for
// ErrNetwork, wrapped with the transport's error). Test with errors.Is.
var (
	// ErrBadDeviceToken: Apple does not recognise the device token (400).
	// This is the answer for a forged, expired or corrupted token, and for
	// a token of the other environment (see Development).
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
	// ErrRateLimited: too many requests (429). Not retried unless
	// Config.RetryRateLimited is set.
	ErrRateLimited = errors.New("apple rate-limited the request")
	// ErrServerError: Apple failed (500 and other 5xx). Retried.
	ErrServerError = errors.New("apple server error")
	// ErrUnavailable: Apple is unavailable (503). Retried.
	ErrUnavailable = errors.New("apple service unavailable")
	// ErrUnexpectedResponse: an answer the API does not document: a
	// redirect (never followed), a 200 with a body where Apple sends none
	// (a proxy or captive portal), an unknown status, or one from a
	// server that is not Apple (a certificate that does not verify,
	// plain HTTP where TLS was spoken). Never "valid", and never an
	// outage.
	ErrUnexpectedResponse = errors.New("unexpected answer from apple")
	// ErrNetwork: no answer (connection failure, per-attempt timeout).
	// Retried.
	ErrNetwork = errors.New("no answer from apple")
	// ErrLimited: the Client's own limit on calls to Apple
	// (Config.RateLimit, Config.MaxConcurrent) left no room within the
	// call's time budget, so Apple was not asked.
	ErrLimited = errors.New("too many calls to apple: local limit reached")
)

// AppleError is an answer from Apple other than success. Err is one of the
// sentinel errors above, so errors.Is(err, ErrBadDeviceToken) works.
type AppleError struct {
	// Op is the endpoint: validate_device_token, query_two_bits or
	// update_two_bits.
	Op string
	// Status is the HTTP status code.
	Status int
	// Body is the start of the answer's text (at most 512 bytes), with
	// anything that looks like a token or credential (a run of 32 or more
	// base64, base64url or hex characters, or the token's raw bytes)
	// elided, so a proxy that echoes the request cannot leak it.
	Body string
	// Location is a redirect's target, elided the same way.
	Location string
	// RetryAfter is what Apple's Retry-After header asked for, or zero.
	RetryAfter time.Duration
	// Attempts is how many requests were made, counting retries.
	Attempts int
	// Err is the sentinel error for the answer, e.g. ErrBadDeviceToken.
	Err error
}

// Error describes the answer: the endpoint, the sentinel's text, the
// status and the start of the body, never the token.
func (e *AppleError) Error() string {
	s := fmt.Sprintf("devicecheck %s: %v (HTTP %d", e.Op, e.Err, e.Status)
	if e.Location != "" {
		s += fmt.Sprintf(" to %q", e.Location)
	}
	if e.Body != "" {
		s += fmt.Sprintf(": %q", e.Body)
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %v", e.RetryAfter)
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

// Defaults for Config.
const (
	// DefaultTimeout bounds one call to Apple in all: the wait for a slot
	// under the limits, every attempt, and the waits between attempts.
	DefaultTimeout = 5 * time.Second
	// DefaultAttemptTimeout bounds one HTTP request to Apple.
	DefaultAttemptTimeout = 2 * time.Second
	// DefaultRateLimit is how many requests per second a Client sends to
	// Apple at most. Apple publishes no quota; size it to your traffic.
	DefaultRateLimit = 100
	// DefaultMaxConcurrent is how many requests to Apple a Client has in
	// flight at most.
	DefaultMaxConcurrent = 64
)

// Config configures a Client. TeamID, KeyID and Key (P-256) are required.
type Config struct {
	// TeamID is the Apple developer team identifier (the JWT iss).
	TeamID string
	// KeyID is the identifier of the DeviceCheck key (the JWT kid).
	KeyID string
	// Key is the key's private half, from LoadPrivateKey.
	Key *ecdsa.PrivateKey
	// BaseURL is Production (the default), Development, or another base
	// URL, e.g. a fake server in tests; see EnvironmentURL for what is
	// accepted. Tokens from development builds of an app validate only
	// against Development.
	BaseURL string
	// HTTPClient sends the requests; nil uses a client with its own
	// transport, cloned from http.DefaultTransport. Either way redirects
	// are never followed: the Client uses a copy whose CheckRedirect
	// refuses them.
	HTTPClient *http.Client
	// Timeout bounds one call (ValidateDeviceToken, QueryTwoBits,
	// UpdateTwoBits) in all: the wait under the limits below, every
	// attempt and the waits between them. Zero means DefaultTimeout.
	Timeout time.Duration
	// AttemptTimeout bounds each HTTP request. Zero means
	// DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// MaxAttempts bounds the requests per call, first one included, when
	// Apple answers 5xx or does not answer. Zero means 3; 1 disables
	// retries. A retry happens only when its wait fits in what is left of
	// Timeout. 4xx answers are never retried (but see RetryRateLimited).
	MaxAttempts int
	// RetryRateLimited retries a 429 answer too, when Apple's Retry-After
	// (or the backoff, without one) fits in what is left of Timeout. Off
	// by default: a rate-limited Apple is not helped by more requests.
	RetryRateLimited bool
	// MinBackoff and MaxBackoff bound the jittered, exponentially growing
	// wait between attempts. Zero means 200ms and 1s. Apple's Retry-After
	// raises the wait beyond MaxBackoff if it fits in the budget.
	MinBackoff, MaxBackoff time.Duration
	// JWTRefresh is how long one authorization token is reused before a
	// new one is signed. Zero means DefaultJWTRefresh; it is clamped to
	// 20–55 minutes (Apple asks for 20–60, and the iat is a minute early).
	JWTRefresh time.Duration
	// RateLimit is how many requests per second the Client sends to Apple
	// at most, across all calls; RateBurst how many it may send at once
	// after a quiet spell. Zero means DefaultRateLimit and one second's
	// worth; a negative RateLimit means no limit. A call that finds no
	// room within its Timeout fails with ErrLimited without asking Apple.
	RateLimit float64
	RateBurst int
	// MaxConcurrent bounds the requests to Apple in flight at once. Zero
	// means DefaultMaxConcurrent; negative means no bound.
	MaxConcurrent int
	// MaxClients bounds how many clients (named with WithClient, or by
	// MiddlewareOptions.Client) with calls waiting or in flight the
	// Client tells apart when it shares the limits above: each client
	// with calls waiting gets its turn in rotation, so a flood from one
	// client does not take the room of others. Clients beyond the bound
	// share one turn. Zero means DefaultMaxClients.
	MaxClients int
	// Breaker decides when Apple counts as down, from its answers to
	// recent attempts; see BreakerConfig. Only then does AppleDown hold
	// for a failed call.
	Breaker BreakerConfig
	// Observer, when set, is told of every request to Apple and every
	// retry.
	Observer Observer
}

// Client calls Apple's DeviceCheck server API. It is safe for concurrent
// use; share one per process, so that its authorization token is reused
// and its limits hold for the whole process.
type Client struct {
	base           string
	endpoints      map[string]string
	hostHeader     string // the Host header for a base URL pinLocalhost rewrote
	hc             *http.Client
	timeout        time.Duration
	attemptTimeout time.Duration
	maxAttempts    int
	retry429       bool
	minBackoff     time.Duration
	maxBackoff     time.Duration
	jwt            *jwtSource
	fair           *fairLimiter // nil: no limits on calls to Apple
	breaker        *breaker
	observer       Observer

	// Seams for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// The endpoints a Client calls.
const (
	opValidate = "validate_device_token"
	opQuery    = "query_two_bits"
	opUpdate   = "update_two_bits"
)

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	if cfg.TeamID == "" || cfg.KeyID == "" || cfg.Key == nil {
		return nil, errors.New("devicecheck client: team id, key id and key are required")
	}
	if cfg.Key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("devicecheck client: %w: a %s key cannot sign ES256", ErrKey, cfg.Key.Curve.Params().Name)
	}
	base, err := EnvironmentURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("devicecheck client: %w", err)
	}
	c := &Client{
		base:           base,
		endpoints:      map[string]string{},
		timeout:        orDefault(cfg.Timeout, DefaultTimeout),
		attemptTimeout: orDefault(cfg.AttemptTimeout, DefaultAttemptTimeout),
		maxAttempts:    cfg.MaxAttempts,
		retry429:       cfg.RetryRateLimited,
		minBackoff:     orDefault(cfg.MinBackoff, 200*time.Millisecond),
		maxBackoff:     orDefault(cfg.MaxBackoff, time.Second),
		observer:       cfg.Observer,
		now:            time.Now,
		sleep:          sleepCtx,
	}
	var target string
	target, c.hostHeader = pinLocalhost(base)
	for _, op := range []string{opValidate, opQuery, opUpdate} {
		if c.endpoints[op], err = url.JoinPath(target, "v1", op); err != nil {
			return nil, fmt.Errorf("devicecheck client: %w", err)
		}
	}
	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		c.hc = &hc
	} else {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.maxAttempts <= 0 {
		c.maxAttempts = 3
	}
	c.maxBackoff = max(c.maxBackoff, c.minBackoff)
	var limiter *rate.Limiter
	if limit := cfg.RateLimit; limit >= 0 && !math.IsInf(limit, 1) {
		if limit == 0 {
			limit = DefaultRateLimit
		}
		burst := cfg.RateBurst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(limit)))
		}
		limiter = rate.NewLimiter(rate.Limit(limit), burst)
	}
	slots := cfg.MaxConcurrent
	if slots == 0 {
		slots = DefaultMaxConcurrent
	}
	if limiter != nil || slots > 0 {
		c.fair = newFairLimiter(limiter, max(slots, 0), cfg.MaxClients)
	}
	c.breaker = newBreaker(cfg.Breaker, func() time.Time { return c.now() })
	refresh := min(max(orDefault(cfg.JWTRefresh, DefaultJWTRefresh), minJWTRefresh), maxJWTRefresh)
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

// errZeroClient is the error of a Client that did not come from NewClient.
var errZeroClient = fmt.Errorf("%w: the Client was not made by NewClient", ErrNotValidated)

// usable returns nil for a Client made by NewClient, and an error
// wrapping ErrNotValidated for a nil or zero one.
func (c *Client) usable() error {
	switch {
	case c == nil:
		return ErrNotValidated
	case c.hc == nil:
		return errZeroClient
	}
	return nil
}

// Down reports whether the Client counts Apple as down now: its breaker
// is open (see BreakerConfig). A readiness check or a metric can show it.
func (c *Client) Down() bool { return c.usable() == nil && c.breaker.isOpen() }

// BaseURL returns the base URL the client sends requests to.
func (c *Client) BaseURL() string { return c.base }

// CloseIdleConnections closes the client's idle connections to Apple.
func (c *Client) CloseIdleConnections() {
	if c.usable() == nil {
		c.hc.CloseIdleConnections()
	}
}

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
// device running an app of this developer team. It returns nil only for
// Apple's "yes": a 200 answer with an empty body (ASCII white space at
// most, shorter than the 64 KiB read limit). It
// returns an error wrapping ErrBadDeviceToken when Apple says no, and
// another error when Apple could not be asked or answered something else.
func (c *Client) ValidateDeviceToken(ctx context.Context, token []byte) error {
	_, err := c.call(ctx, opValidate, token, nil)
	return err
}

// QueryTwoBits returns the device's two bits. "Bit State Not Found" (or
// its other wording, "Failed to find bit state") is a normal answer:
// Bits.Found is false and the error nil. Any other 200 body that is not
// the bits' JSON is ErrUnexpectedResponse.
func (c *Client) QueryTwoBits(ctx context.Context, token []byte) (Bits, error) {
	body, err := c.call(ctx, opQuery, token, nil)
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
		return Bits{}, &AppleError{Op: opQuery, Status: http.StatusOK, Body: scrub(body, token), Err: ErrUnexpectedResponse}
	}
	return Bits{Found: true, Bit0: *w.Bit0, Bit1: *w.Bit1, LastUpdated: w.LastUpdateTime}, nil
}

// UpdateTwoBits sets the device's two bits. Like ValidateDeviceToken, it
// counts only a 200 with an empty body as done.
func (c *Client) UpdateTwoBits(ctx context.Context, token []byte, bit0, bit1 bool) error {
	_, err := c.call(ctx, opUpdate, token, &[2]bool{bit0, bit1})
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

// call posts to one endpoint within the client's time budget, retrying
// where that is safe and fits, and returns the body of a successful
// answer.
func (c *Client) call(ctx context.Context, op string, token []byte, bits *[2]bool) (_ []byte, err error) {
	if err := c.usable(); err != nil {
		return nil, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	defer func() {
		if err != nil && outage(err) && c.breaker.isOpen() {
			err = fmt.Errorf("%w (%s): %w", ErrAppleDown, c.breaker.state(), err)
		}
	}()
	if len(token) == 0 {
		return nil, fmt.Errorf("devicecheck %s: %w: empty device token", op, ErrBadDeviceToken)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	deviceToken := base64.StdEncoding.EncodeToString(token)
	var last error
	reauthorized := false
	for attempt := 1; ; attempt++ {
		release, err := c.acquire(ctx, op)
		if err != nil {
			if last != nil {
				return nil, last // Apple's own answer says more than our limit
			}
			return nil, err
		}
		req := request{DeviceToken: deviceToken, TransactionID: newTransactionID(), Timestamp: c.now().UnixMilli()}
		if bits != nil {
			req.Bit0, req.Bit1 = &bits[0], &bits[1]
		}
		body, fresh, err := c.attempt(ctx, op, req, token)
		release()
		if err == nil {
			return body, nil
		}
		var ae *AppleError
		if errors.As(err, &ae) {
			ae.Attempts = attempt
		}
		if ctx.Err() != nil { // no time for more
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("devicecheck %s: %w; last attempt: %w", op, ctx.Err(), err)
			}
			return nil, err
		}
		last = err
		// A refused JWT that was signed a while ago may just be stale (or
		// Apple's clock may differ): sign a new one and try once more.
		if ae != nil && ae.Status == http.StatusUnauthorized && !fresh && !reauthorized {
			reauthorized = true
			c.observeRetry(op, err)
			continue
		}
		temporary := errors.Is(err, ErrNetwork) || (ae != nil && ae.Status >= 500) ||
			(ae != nil && ae.Status == http.StatusTooManyRequests && c.retry429)
		if !temporary || attempt >= c.maxAttempts {
			return nil, err
		}
		var retryAfter time.Duration
		if ae != nil {
			retryAfter = ae.RetryAfter
		}
		wait := c.backoff(attempt, retryAfter)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return nil, err // the wait does not fit: report what Apple said now
		}
		c.observeRetry(op, err)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("devicecheck %s: %w; last attempt: %w", op, err, last)
		}
	}
}

// acquire waits for room under the rate limit and the bound on requests
// in flight, taking its turn among the calls of other clients (see
// Config.MaxClients); release gives the room back. It waits only while a
// request would still have time to get an answer: until what is left of
// ctx's budget is one AttemptTimeout, or half the budget when that is
// shorter. A slot that comes later would only send Apple a request the
// caller then abandons.
func (c *Client) acquire(ctx context.Context, op string) (release func(), err error) {
	if c.fair == nil {
		return func() {}, nil
	}
	wctx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, left-min(c.attemptTimeout, left/2))
		defer cancel()
	}
	if release, ok := c.fair.acquire(wctx, ClientFromContext(ctx)); ok {
		return release, nil
	}
	if ctx.Err() == context.Canceled {
		return nil, fmt.Errorf("devicecheck %s: %w (apple was not asked)", op, ctx.Err())
	}
	return nil, fmt.Errorf("devicecheck %s: %w", op, ErrLimited)
}

func (c *Client) observeRetry(op string, err error) {
	if c.observer != nil {
		c.observer.ObserveRetry(op, err)
	}
}

// backoff returns the wait before attempt+1: full jitter over an
// exponentially growing window, capped at maxBackoff, or Apple's
// Retry-After when that is longer.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	window := c.minBackoff << min(attempt-1, 16)
	if window <= 0 || window > c.maxBackoff {
		window = c.maxBackoff
	}
	d := c.minBackoff/2 + mrand.N(window-c.minBackoff/2+1)
	return max(d, retryAfter)
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

// attempt makes one request with once and tells the breaker what it
// says of Apple: an answer from Apple is a success; no answer, or a 5xx,
// is a failure, the former only when the attempt had its whole
// AttemptTimeout (not one cut short by the call's deadline, which its
// caller or a slow replay store may have made short); an unexpected
// answer (not Apple's) is neither.
func (c *Client) attempt(ctx context.Context, op string, r request, token []byte) ([]byte, bool, error) {
	deadline, ok := ctx.Deadline()
	full := !ok || time.Until(deadline) >= c.attemptTimeout
	body, fresh, err := c.once(ctx, op, r, token)
	var ae *AppleError
	switch {
	case err == nil:
		c.breaker.success()
	case errors.As(err, &ae) && ae.Status >= 500:
		c.breaker.failure()
	case ae != nil && !errors.Is(ae.Err, ErrUnexpectedResponse):
		c.breaker.success()
	case errors.Is(err, ErrNetwork) && full:
		c.breaker.failure()
	}
	return body, fresh, err
}

// outage reports whether err is what an outage of Apple looks like: no
// answer, a 5xx, or the time running out.
func outage(err error) bool {
	return errors.Is(err, ErrNetwork) || errors.Is(err, ErrServerError) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded)
}

// impostor reports whether a transport error says that whoever answered
// is not Apple: a certificate that does not verify (an intercepting
// proxy, spoofed DNS), a TLS alert, or plain HTTP where TLS was spoken.
// That is an unexpected answer, never an outage.
func impostor(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
		ope *net.OpError
	)
	return errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) ||
		errors.As(err, &rhe) || (errors.As(err, &ope) && ope.Op == "remote error") ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// once makes one request. fresh reports whether its JWT was signed for
// it. A non-nil error is an *AppleError, wraps ErrNetwork, or (when ctx
// is done) wraps ctx.Err().
func (c *Client) once(ctx context.Context, op string, r request, token []byte) (body []byte, fresh bool, err error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, false, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	bearer, fresh, err := c.jwt.token()
	if err != nil {
		return nil, false, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoints[op], bytes.NewReader(payload))
	if err != nil {
		return nil, fresh, fmt.Errorf("devicecheck %s: %w", op, err)
	}
	if c.hostHeader != "" {
		req.Host = c.hostHeader
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	status := 0
	if c.observer != nil {
		defer func() { c.observer.ObserveAppleRequest(op, status, time.Since(start)) }()
	}
	resp, err := c.hc.Do(req)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, fresh, fmt.Errorf("devicecheck %s: %w", op, ctx.Err())
	case impostor(err):
		return nil, fresh, fmt.Errorf("devicecheck %s: %w: not Apple: %w", op, ErrUnexpectedResponse, err)
	default:
		return nil, fresh, fmt.Errorf("devicecheck %s: %w: %w", op, ErrNetwork, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fresh, fmt.Errorf("devicecheck %s: %w", op, ctx.Err())
		}
		return nil, fresh, fmt.Errorf("devicecheck %s: read answer: %w: %w", op, ErrNetwork, err)
	}
	status = resp.StatusCode
	// A body that reaches the read limit is never a yes, whatever the
	// part read holds.
	whole := len(body) < maxResponseBody
	if status == http.StatusOK && whole && (op == opQuery || blank(body)) {
		// Apple's "yes" has no body. If `attestd probe` on a Mac ever
		// shows that Apple sends a fixed success text, accept exactly that
		// text here, nothing looser: a proxy, a captive portal or a wrong
		// base URL answers 200 with a page, and a page may start with
		// more white space than is read.
		return body, fresh, nil
	}
	if status == http.StatusUnauthorized {
		c.jwt.invalidate(bearer)
	}
	e := &AppleError{Op: op, Status: status, Body: scrub(body, token), Err: classify(status, body)}
	if e.Body == "" && !whole {
		e.Body = fmt.Sprintf("[%d bytes or more of white space]", len(body))
	}
	if status >= 300 && status < 400 {
		e.Location = scrub([]byte(resp.Header.Get("Location")), token)
	}
	if retryable(status) {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	return nil, fresh, e
}

// blank reports whether body holds nothing but ASCII white space (space,
// tab, line feed, form feed, carriage return): what an empty answer may
// carry. Unicode spaces (no-break space, NEL, …) are text.
func blank(body []byte) bool {
	for _, c := range body {
		if c != ' ' && c != '\t' && c != '\n' && c != '\f' && c != '\r' {
			return false
		}
	}
	return true
}

// classify maps an answer other than success to its sentinel error.
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

// parseRetryAfter reads a Retry-After value: delay seconds or an
// HTTP-date (then relative to now). It returns 0 for none, a bad value or
// a date in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// opaqueRun matches what could be a token or a credential in an answer:
// a long run of base64, base64url, hex or percent-encoded characters (a
// JWT's parts each match). Apple's own answers are short English phrases.
var opaqueRun = regexp.MustCompile(`[A-Za-z0-9+/=_%\\-]{32,}`)

// scrub returns body as text for error messages: the token's raw bytes
// (when long enough not to match ordinary words; DeviceCheck tokens run
// to thousands of bytes) and every opaque run elided, then cut to
// maxErrorBody bytes.
func scrub(body, token []byte) string {
	if len(token) >= 16 {
		body = bytes.ReplaceAll(body, token, []byte("[token]"))
	}
	s := opaqueRun.ReplaceAllStringFunc(string(body), func(m string) string {
		return fmt.Sprintf("[%d characters elided]", len(m))
	})
	return cut(s)
}

// cut returns s without surrounding ASCII white space (Unicode spaces are
// kept, to be seen) and cut to at most maxErrorBody bytes.
func cut(s string) string {
	s = strings.Trim(s, " \t\n\f\r")
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
