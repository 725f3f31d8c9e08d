package verify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/devicechecktest"
)

// Only Apple's empty 200 is a yes. A proxy, captive portal or wrong base
// URL that answers 200 with a page makes every call "unexpected", never
// valid; white space alone is still Apple's empty answer.
func TestSuccessNeedsAnEmptyBody(t *testing.T) {
	for _, tt := range []struct {
		body string
		want error
	}{
		{"", nil},
		{" \r\n\t", nil},
		{"<html><body>Welcome to the hotel network</body></html>", ErrUnexpectedResponse},
		// A page after the read limit's worth of white space: the part
		// read is blank, but a body that fills the limit is never "yes".
		{strings.Repeat(" ", 64<<10) + "<html>Welcome</html>", ErrUnexpectedResponse},
		{strings.Repeat("\n", 64<<10), ErrUnexpectedResponse},
		// Only ASCII white space is empty: not NBSP, NEL or other
		// Unicode spaces.
		{"\u00a0", ErrUnexpectedResponse},
		{"\u0085", ErrUnexpectedResponse},
		{"\u2003\u3000", ErrUnexpectedResponse},
		{"\v", ErrUnexpectedResponse},
		{"OK", ErrUnexpectedResponse},
		{`{"status":"ok"}`, ErrUnexpectedResponse},
	} {
		h := newHarness(t)
		h.apple.SetSuccessBody(tt.body)
		ctx := context.Background()
		for _, call := range []struct {
			op  string
			err error
		}{
			{opValidate, h.client.ValidateDeviceToken(ctx, []byte("tok"))},
			{opUpdate, h.client.UpdateTwoBits(ctx, []byte("tok"), true, true)},
		} {
			if !errors.Is(call.err, tt.want) || (tt.want == nil) != (call.err == nil) {
				t.Errorf("%s with a 200 and body %.60q (%d bytes): %v, want %v", call.op, tt.body, len(tt.body), call.err, tt.want)
				continue
			}
			var ae *AppleError
			if tt.want != nil && (!errors.As(call.err, &ae) || ae.Status != 200 || ae.Body != wantBody(tt.body) || ae.Attempts != 1) {
				t.Errorf("%s: AppleError %+v", call.op, ae)
			}
		}
	}
}

// wantBody is the AppleError.Body of a 200 with body: its scrubbed start,
// or a note when the part read is white space.
func wantBody(body string) string {
	if len(body) >= 64<<10 && strings.Trim(body[:64<<10], " \n") == "" {
		return "[65536 bytes or more of white space]"
	}
	return scrub([]byte(body), nil)
}

// Redirects are never followed, whatever the code and whatever client the
// caller supplied: the bearer JWT would go along, and the page at the
// other end answers 200.
func TestRedirectsNotFollowed(t *testing.T) {
	follow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	for _, hc := range []*http.Client{nil, follow} {
		for _, code := range []int{301, 302, 303, 307, 308} {
			h := newHarness(t, func(c *Config) { c.HTTPClient = hc })
			h.apple.Redirect(code)
			err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
			var ae *AppleError
			if !errors.Is(err, ErrUnexpectedResponse) || !errors.As(err, &ae) || ae.Status != code || ae.Location != devicechecktest.PortalPath {
				t.Errorf("redirect %d (own client %v): %v", code, hc != nil, err)
			}
			if Reason(err) != "unexpected_response" || Rejected(err) || AppleDown(err) {
				t.Errorf("redirect %d: reason %q, rejected %v, down %v", code, Reason(err), Rejected(err), AppleDown(err))
			}
			for _, r := range h.apple.Requests() {
				if r.Op == devicechecktest.PortalPath {
					t.Errorf("redirect %d followed: %+v", code, r)
				}
			}
		}
	}
	if follow.CheckRedirect == nil || follow.CheckRedirect(nil, nil) != nil {
		t.Error("the caller's http.Client was changed")
	}
}

// A proxy that swaps the bearer for something that is not a JWT gets
// Apple's 400 about the authorization: our credentials, not the token, so
// the check could not be made.
func TestNonJWTBearer(t *testing.T) {
	swap := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer proxy-session-42")
		return http.DefaultTransport.RoundTrip(r)
	})}
	h := newHarness(t, func(c *Config) { c.HTTPClient = swap })
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
	var ae *AppleError
	if !errors.Is(err, ErrBadAuthorization) || !errors.As(err, &ae) || ae.Status != 400 || ae.Body != devicechecktest.BodyBadAuthorizationFormat {
		t.Fatalf("error %v", err)
	}
	if Rejected(err) || Reason(err) != "bad_authorization" {
		t.Errorf("reason %q, rejected %v: want a failure to check", Reason(err), Rejected(err))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A token from a development-signed app is a bad token to production, and
// the other way round: refused, and said to be the token's fault.
func TestTokenOfTheOtherEnvironment(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	dev, prod := h.apple.IssueTokenFor(devicechecktest.Development), h.apple.IssueTokenFor(devicechecktest.Production)
	if err := h.client.ValidateDeviceToken(ctx, dev); !errors.Is(err, ErrBadDeviceToken) || !Rejected(err) {
		t.Errorf("development token at production: %v", err)
	}
	if err := h.client.ValidateDeviceToken(ctx, prod); err != nil {
		t.Errorf("production token at production: %v", err)
	}
	h.apple.SetEnvironment(devicechecktest.Development)
	if err := h.client.ValidateDeviceToken(ctx, dev); err != nil {
		t.Errorf("development token at development: %v", err)
	}
}

// One call has one budget: a hung Apple ends the call at Timeout, not at
// MaxAttempts × AttemptTimeout plus backoff.
func TestCallBudget(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Timeout = 300 * time.Millisecond
		c.AttemptTimeout = time.Hour
		c.MaxAttempts = 3
	})
	h.apple.SetLatency(time.Hour)
	err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
	// Not "down": the attempt did not have its whole AttemptTimeout.
	if !errors.Is(err, context.DeadlineExceeded) || Reason(err) != "timeout" || AppleDown(err) {
		t.Fatalf("error %v (reason %q), want the call's deadline", err, Reason(err))
	}
	if w := h.waits(); len(w) != 0 {
		t.Errorf("waited %v after the budget ran out", w)
	}

	// A backoff that does not fit what is left is not waited for.
	h = newHarness(t, func(c *Config) { c.MinBackoff = 10 * time.Second; c.MaxBackoff = 10 * time.Second })
	h.apple.Respond(func(devicechecktest.Request) *devicechecktest.Response { return &devicechecktest.Response{Status: 500} })
	err = h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
	if !errors.Is(err, ErrServerError) || len(h.waits()) != 0 || len(h.apple.Requests()) != 1 {
		t.Errorf("10 s backoff in a 5 s budget: %v, waits %v, %d requests", err, h.waits(), len(h.apple.Requests()))
	}
}

// The rate limit and the bound on requests in flight hold across calls; a
// call that finds no room in its budget is refused without asking Apple.
func TestLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = 1; c.RateBurst = 1; c.Timeout = 200 * time.Millisecond })
	ctx := context.Background()
	if err := h.client.ValidateDeviceToken(ctx, []byte("tok")); err != nil {
		t.Fatal(err)
	}
	err := h.client.ValidateDeviceToken(ctx, []byte("tok"))
	if !errors.Is(err, ErrLimited) || Reason(err) != "limited" || Rejected(err) || AppleDown(err) {
		t.Errorf("second call within a second at 1/s: %v (reason %q)", err, Reason(err))
	}
	if n := len(h.apple.Requests()); n != 1 {
		t.Errorf("Apple got %d requests, want 1", n)
	}

	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	h = newHarness(t, func(c *Config) { c.BaseURL = srv.URL; c.MaxConcurrent = 1; c.RateLimit = -1; c.MaxAttempts = 1 })
	first := make(chan error, 1)
	go func() { first <- h.client.ValidateDeviceToken(ctx, []byte("tok")) }()
	<-arrived // the first call holds the only slot
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := h.client.ValidateDeviceToken(short, []byte("tok")); !errors.Is(err, ErrLimited) {
		t.Errorf("second call while one is in flight, MaxConcurrent 1: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}

	// A caller that hangs up while waiting for room gets its own error.
	canceled, cancel2 := context.WithCancel(ctx)
	cancel2()
	h = newHarness(t, func(c *Config) { c.RateLimit = 1; c.RateBurst = 1 })
	h.client.ValidateDeviceToken(ctx, []byte("tok"))
	if err := h.client.ValidateDeviceToken(canceled, []byte("tok")); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled caller: %v", err)
	}
}

// Nothing that looks like the token or a credential gets into an error,
// even from a proxy that echoes the request back.
func TestErrorsElideEchoedSecrets(t *testing.T) {
	token := make([]byte, 48)
	rand.Read(token)
	var bearer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.StdEncoding.EncodeToString(token)
		jwt := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		bearer.Store(jwt)
		echo := fmt.Sprintf(`you sent {"device_token":%q} with %s; raw %s; url %s; hex %s; json-escaped %s`,
			b64, jwt, token, base64.RawURLEncoding.EncodeToString(token), hex.EncodeToString(token),
			strings.ReplaceAll(b64, "/", `\/`))
		switch r.URL.Query().Get("n") {
		case "":
			w.Header().Set("Location", "/next?n=1&t="+base64.URLEncoding.EncodeToString(token))
			w.WriteHeader(http.StatusFound)
		default:
			w.WriteHeader(http.StatusOK)
		}
		w.Write([]byte(echo))
	}))
	defer srv.Close()
	c, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: newKey(t), BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	err = c.ValidateDeviceToken(context.Background(), token)
	if !errors.Is(err, ErrUnexpectedResponse) {
		t.Fatalf("error %v", err)
	}
	msg := err.Error()
	jwt := bearer.Load().(string)
	for _, secret := range []string{
		string(token), base64.StdEncoding.EncodeToString(token), base64.RawURLEncoding.EncodeToString(token),
		hex.EncodeToString(token), jwt, strings.Split(jwt, ".")[2],
	} {
		for i := 0; i+24 <= len(secret); i += 8 {
			if strings.Contains(msg, secret[i:i+24]) {
				t.Fatalf("error reveals a secret's part %q:\n%s", secret[i:i+24], msg)
			}
		}
	}
	if !strings.Contains(msg, "you sent") || !strings.Contains(msg, "HTTP 302") {
		t.Errorf("error %q lost the answer's readable start", msg)
	}
}

func TestEnvironmentURLRules(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.8.9.10", "http://127.8.9.10"},
		{"http://[::1]:9000/", "http://[::1]:9000"},
		{"http://localhost:9000", "http://localhost:9000"},
		{"https://devicecheck-proxy.internal/apple/", "https://devicecheck-proxy.internal/apple"},
		{"http://devicecheck-proxy.internal", ""},
		{"http://10.0.0.1", ""},
		{"http://[::ffff:10.0.0.1]", ""},
		{"http://localhost.example.com", ""},
		{"https://proxy.example/?env=prod", ""},
		{"https://proxy.example/?", ""},
		{"https://proxy.example/#frag", ""},
		{"https://user:pass@proxy.example/", ""},
		{"https:proxy.example", ""},
	} {
		got, err := EnvironmentURL(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("EnvironmentURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// A base URL with a path keeps it: requests go under it, joined properly.
func TestEndpointsUnderBasePath(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { path.Store(r.URL.Path) }))
	defer srv.Close()
	for _, base := range []string{srv.URL + "/apple", srv.URL + "/apple/", srv.URL + "/apple//"} {
		c, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: newKey(t), BaseURL: base})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ValidateDeviceToken(context.Background(), []byte("tok")); err != nil {
			t.Fatal(err)
		}
		c.CloseIdleConnections()
		if got := path.Load(); got != "/apple/v1/validate_device_token" {
			t.Errorf("base %q: request to %q", base, got)
		}
	}
}

// A call waits for a slot only while an attempt would still fit in what
// is left of its budget: a later slot would only send Apple a request
// the caller abandons.
func TestLimitLeavesTimeForTheAttempt(t *testing.T) {
	for _, tt := range []struct {
		timeout time.Duration
		want    error
	}{
		{1500 * time.Millisecond, ErrLimited}, // may wait 0.5 s; the next slot is 1 s away
		{3 * time.Second, nil},                // may wait 2 s
	} {
		h := newHarness(t, func(c *Config) {
			c.RateLimit, c.RateBurst = 1, 1
			c.Timeout, c.AttemptTimeout = tt.timeout, time.Second
		})
		h.client.fair.limiter.Allow() // the one slot of this second is gone
		err := h.client.ValidateDeviceToken(context.Background(), []byte("tok"))
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Timeout %v: %v, want %v", tt.timeout, err, tt.want)
		}
		if n, want := len(h.apple.Requests()), map[bool]int{true: 1, false: 0}[tt.want == nil]; n != want {
			t.Errorf("Timeout %v: Apple got %d requests, want %d", tt.timeout, n, want)
		}
	}
}

// Plain http is allowed to localhost because it is this machine, so the
// name is not given to the system resolver (which /etc/hosts or a DNS
// search domain could point elsewhere, and the bearer JWT would follow in
// clear): the Client dials 127.0.0.1 and keeps the name in the Host
// header.
func TestLocalhostIsLoopbackWithoutResolver(t *testing.T) {
	var host atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var dialed []string
	var mu sync.Mutex
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	c, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: newKey(t), BaseURL: "http://LocalHost:" + port, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateDeviceToken(context.Background(), []byte("tok")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "127.0.0.1:" + port; len(dialed) != 1 || dialed[0] != want {
		t.Errorf("dialed %q, want %q: localhost went to the resolver", dialed, want)
	}
	if got := host.Load(); got != "LocalHost:"+port {
		t.Errorf("Host header %q, want the name as given", got)
	}
	if c.BaseURL() != "http://LocalHost:"+port {
		t.Errorf("BaseURL() = %q", c.BaseURL())
	}
}
