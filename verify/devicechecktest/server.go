// Package devicechecktest provides a fake of Apple's DeviceCheck server
// API for tests: it checks the authorization token and the request body the
// way Apple documents them, and answers like Apple.
//
// Besides Apple's own answers it models what stands between a backend and
// Apple on a hostile network, so a client's fail-closed rules can be
// tested: a proxy or captive portal that answers 200 with a page
// (SetSuccessBody), redirects (Redirect), a slow Apple (SetLatency), Apple's
// rate limit (SetRateLimit), and tokens from the other environment
// (SetEnvironment, IssueTokenFor).
package devicechecktest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Apple's answer texts, as the fake sends them.
const (
	BodyBadDeviceToken   = "Missing or incorrectly formatted device token payload"
	BodyBadTimestamp     = "Missing or incorrectly formatted time stamp"
	BodyBadTransaction   = "Missing or incorrectly formatted transaction id"
	BodyBadBits          = "Missing or incorrectly formatted bits"
	BodyBadAuthorization = "Unable to verify authorization token"
	// BodyBadAuthorizationFormat is Apple's answer (400) to a request
	// without a bearer token or with one that is not a JWT at all.
	BodyBadAuthorizationFormat = "Missing or badly formatted authorization token"
	BodyExpired                = "Expired authorization token"
	BodyBitStateNotFound       = "Failed to find bit state"
	// BodyTooManyRequests is the fake's answer (429) past SetRateLimit.
	BodyTooManyRequests = "Too Many Requests"
)

// PortalPath is where the fake's redirects point (see Redirect). It
// answers every method with 200 and an empty body, so a client that
// follows a redirect there sees what looks like Apple's "valid".
const PortalPath = "/portal"

// Environment is one of Apple's two DeviceCheck environments. A token
// from an app signed for development validates only against the
// development host, and a production token only against production.
type Environment int

const (
	// Production is api.devicecheck.apple.com, the fake's default.
	Production Environment = iota
	// Development is api.development.devicecheck.apple.com.
	Development
)

// String returns "production" or "development".
func (e Environment) String() string {
	if e == Development {
		return "development"
	}
	return "production"
}

// Request is one request the fake received, as it parsed it.
type Request struct {
	// Op is the endpoint: validate_device_token, query_two_bits or
	// update_two_bits; or PortalPath for a request that followed one of
	// the fake's redirects.
	Op string
	// Method is the HTTP method.
	Method string
	// JWT is the bearer token.
	JWT string
	// DeviceToken is the decoded device_token.
	DeviceToken   []byte
	TransactionID string
	Timestamp     int64
	Bit0, Bit1    *bool
	// Problem is what the fake found wrong with the request, or "" when
	// it found nothing; it then answered 400 or 401 with this body.
	Problem string
}

// Response is an answer the fake gives instead of its default one.
type Response struct {
	Status int
	Body   string
	Header http.Header
}

// Server is a fake DeviceCheck server on 127.0.0.1. Create one with
// NewServer; Close it when done.
type Server struct {
	*httptest.Server

	pub           *ecdsa.PublicKey
	teamID, keyID string
	// Now returns the fake's current time, for checking timestamps and
	// JWT ages. Replace it before the first request, with a function that
	// is safe for concurrent use.
	Now func() time.Time

	mu       sync.Mutex
	respond  func(Request) *Response
	requests []Request
	jwts     map[string]bool
	txids    map[string]bool
	bits     map[string][2]bool
	valid    func([]byte) bool
	issued   map[string]issue // IssueToken's tokens
	lifetime time.Duration
	once     bool
	used     map[string]bool
	env      Environment
	okBody   string
	redirect int
	latency  time.Duration
	limit    int       // answers per second before 429; 0: none
	window   time.Time // start of the current one-second window
	inWindow int
}

// issue is what the fake remembers of a token it issued.
type issue struct {
	at  time.Time
	env Environment
}

// NewServer starts a fake that accepts bearer tokens signed with the
// private half of pub, with kid keyID and iss teamID.
func NewServer(pub *ecdsa.PublicKey, teamID, keyID string) *Server {
	s := &Server{
		pub: pub, teamID: teamID, keyID: keyID, Now: time.Now,
		jwts: map[string]bool{}, txids: map[string]bool{}, bits: map[string][2]bool{},
		issued: map[string]issue{}, used: map[string]bool{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Respond makes the fake answer with f's Response for each request that
// passed its checks, or with its default answer when f returns nil.
// A nil f restores the default for every request.
func (s *Server) Respond(f func(Request) *Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = f
}

// ValidTokens makes the fake answer validate_device_token with 400
// (bad device token) for tokens f does not accept. By default it accepts
// every well-formed token.
func (s *Server) ValidTokens(f func(token []byte) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid = f
}

// IssueToken returns a new device token as if Apple had just issued it to
// an app (at Now), for providers in tests that stand in for DeviceCheck.
// The fake remembers when it issued each such token, for SetTokenLifetime,
// and for which environment: the fake's own (see SetEnvironment).
func (s *Server) IssueToken() []byte {
	s.mu.Lock()
	env := s.env
	s.mu.Unlock()
	return s.IssueTokenFor(env)
}

// IssueTokenFor returns a new device token as if Apple had just issued it
// to an app signed for env. validate_device_token refuses it, with 400 and
// BodyBadDeviceToken, while the fake serves the other environment (what
// Apple sends for a token of the wrong environment is not published; a
// bad-token answer is what such tokens are reported to get).
func (s *Server) IssueTokenFor(env Environment) []byte {
	tok := make([]byte, 48)
	rand.Read(tok)
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[string(tok)] = issue{at: now, env: env}
	return tok
}

// Issued reports whether tok came from IssueToken or IssueTokenFor.
// ValidTokens(s.Issued) makes the fake refuse every other token, as Apple
// refuses forged ones.
func (s *Server) Issued(tok []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.issued[string(tok)]
	return ok
}

// SetEnvironment makes the fake answer as env's host: tokens issued for
// the other environment are refused. The default is Production.
func (s *Server) SetEnvironment(env Environment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env = env
}

// SetSuccessBody models a proxy, captive portal or wrong base URL that
// answers 200 with a page: from then on every answer that would be a bare
// 200 (validate_device_token and update_two_bits) carries body instead.
// An empty body restores Apple's own empty answer.
func (s *Server) SetSuccessBody(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.okBody = body
}

// Redirect makes the fake answer every API request with the redirect
// status code (301, 302, 303, 307 or 308) and a Location pointing at
// PortalPath on the fake itself, which answers 200 with an empty body. A
// client that follows redirects then reads every token as valid. Zero
// stops redirecting.
func (s *Server) Redirect(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirect = code
}

// SetLatency makes every API answer wait d first, like a distant or
// struggling Apple; the wait ends early when the client hangs up. Zero,
// the default, answers at once.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRateLimit models Apple's rate limit on a developer team: past n
// requests within one second (of Now), the fake answers 429 with
// BodyTooManyRequests and "Retry-After: 1". Apple publishes no figure.
// Zero, the default, never limits.
func (s *Server) SetRateLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
}

// SetTokenLifetime models how long a device token stays valid: from then
// on, validate_device_token refuses a token from IssueToken that is older
// than d with 400 and BodyBadDeviceToken (what Apple sends for a token past
// its lifetime is not published; attestd probe measures it). Zero means
// tokens never expire, the default. Tokens the fake did not issue are not
// affected.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// RejectReuse models a server that accepts each device token once: from
// then on, validate_device_token refuses a token it has already accepted,
// with 400 and BodyBadDeviceToken. Whether Apple does is not published
// (attestd probe asks); by default the fake accepts a token every time.
func (s *Server) RejectReuse(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.once = on
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// JWTs returns how many distinct bearer tokens the fake has seen: the
// number of times the client signed one.
func (s *Server) JWTs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jwts)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PortalPath {
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.requests = append(s.requests, Request{Op: PortalPath, Method: r.Method, JWT: bearer})
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	op, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok || (op != "validate_device_token" && op != "query_two_bits" && op != "update_two_bits") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	req := Request{Op: op, Method: r.Method}
	status, problem := s.check(r, &req)
	req.Problem = problem
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		// Only once the body is read does the server notice a hang-up.
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	s.mu.Lock()
	s.requests = append(s.requests, req)
	if req.JWT != "" {
		s.jwts[req.JWT] = true
	}
	respond, valid, okBody, redirect := s.respond, s.valid, s.okBody, s.redirect
	limited := s.overLimit()
	s.mu.Unlock()

	switch {
	case redirect != 0:
		http.Redirect(w, r, PortalPath, redirect)
		return
	case limited:
		writeText(w, http.StatusTooManyRequests, BodyTooManyRequests, http.Header{"Retry-After": {"1"}})
		return
	case problem != "":
		writeText(w, status, problem, nil)
		return
	}
	if respond != nil {
		if resp := respond(req); resp != nil {
			writeText(w, resp.Status, resp.Body, resp.Header)
			return
		}
	}
	switch op {
	case "validate_device_token":
		if (valid != nil && !valid(req.DeviceToken)) || !s.acceptOnce(req.DeviceToken) {
			writeText(w, http.StatusBadRequest, BodyBadDeviceToken, nil)
			return
		}
		writeOK(w, okBody)
	case "query_two_bits":
		s.mu.Lock()
		b, found := s.bits[string(req.DeviceToken)]
		s.mu.Unlock()
		if !found {
			writeText(w, http.StatusOK, BodyBitStateNotFound, nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"bit0":%t,"bit1":%t,"last_update_time":%q}`, b[0], b[1], s.Now().UTC().Format("2006-01"))
	case "update_two_bits":
		s.mu.Lock()
		b := s.bits[string(req.DeviceToken)]
		if req.Bit0 != nil {
			b[0] = *req.Bit0
		}
		if req.Bit1 != nil {
			b[1] = *req.Bit1
		}
		s.bits[string(req.DeviceToken)] = b
		s.mu.Unlock()
		writeOK(w, okBody)
	}
}

// overLimit counts a request against SetRateLimit's one-second window and
// reports whether it is over. s.mu must be held.
func (s *Server) overLimit() bool {
	if s.limit <= 0 {
		return false
	}
	now := s.Now()
	if now.Sub(s.window) >= time.Second || now.Before(s.window) {
		s.window, s.inWindow = now, 0
	}
	s.inWindow++
	return s.inWindow > s.limit
}

// writeOK writes Apple's success answer: 200 and an empty body, unless
// SetSuccessBody says otherwise.
func writeOK(w http.ResponseWriter, body string) {
	if body == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeText(w, http.StatusOK, body, nil)
}

// acceptOnce applies the environment, the token lifetime and the one-use
// rule to a token that is otherwise valid, and records its use.
func (s *Server) acceptOnce(tok []byte) bool {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issued[string(tok)]
	if ok && (is.env != s.env || (s.lifetime > 0 && now.Sub(is.at) > s.lifetime)) {
		return false
	}
	if s.once && s.used[string(tok)] {
		return false
	}
	s.used[string(tok)] = true
	return true
}

// check validates the authorization and body like Apple, filling req. It
// returns the status and body of the error answer, or "" when all is well.
func (s *Server) check(r *http.Request, req *Request) (int, string) {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	req.JWT = bearer
	if !ok || !looksLikeJWT(bearer) {
		return http.StatusBadRequest, BodyBadAuthorizationFormat
	}
	if problem := s.checkJWT(bearer); problem != "" {
		return http.StatusUnauthorized, problem
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return http.StatusBadRequest, BodyBadDeviceToken
	}
	var b struct {
		DeviceToken   *string          `json:"device_token"`
		TransactionID *string          `json:"transaction_id"`
		Timestamp     *json.RawMessage `json:"timestamp"`
		Bit0          *bool            `json:"bit0"`
		Bit1          *bool            `json:"bit1"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.DeviceToken == nil {
		return http.StatusBadRequest, BodyBadDeviceToken
	}
	// Apple wants standard base64 on one line.
	tok, err := base64.StdEncoding.Strict().DecodeString(*b.DeviceToken)
	if err != nil || len(tok) == 0 || strings.ContainsAny(*b.DeviceToken, "\r\n") {
		return http.StatusBadRequest, BodyBadDeviceToken
	}
	req.DeviceToken = tok
	if b.TransactionID == nil || *b.TransactionID == "" {
		return http.StatusBadRequest, BodyBadTransaction
	}
	req.TransactionID = *b.TransactionID
	s.mu.Lock()
	dup := s.txids[req.TransactionID]
	s.txids[req.TransactionID] = true
	s.mu.Unlock()
	if dup {
		return http.StatusBadRequest, BodyBadTransaction
	}
	var ts int64
	if b.Timestamp == nil || json.Unmarshal(*b.Timestamp, &ts) != nil {
		return http.StatusBadRequest, BodyBadTimestamp
	}
	req.Timestamp = ts
	// Milliseconds, close to now: a value in seconds lands in 1970.
	if d := s.Now().Sub(time.UnixMilli(ts)); d > 5*time.Minute || d < -5*time.Minute {
		return http.StatusBadRequest, BodyBadTimestamp
	}
	req.Bit0, req.Bit1 = b.Bit0, b.Bit1
	if req.Op == "update_two_bits" && b.Bit0 == nil && b.Bit1 == nil {
		return http.StatusBadRequest, BodyBadBits
	}
	return 0, ""
}

// looksLikeJWT reports whether s has a JWT's shape: three dot-separated
// parts, the first two of them base64url-encoded JSON objects. Apple
// answers a bearer without that shape as a badly formatted one (400),
// and a JWT that does not verify as unverifiable (401).
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[2] == "" {
		return false
	}
	for _, p := range parts[:2] {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || !json.Valid(b) || !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
			return false
		}
	}
	return true
}

func (s *Server) checkJWT(bearer string) string {
	claims := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(bearer, claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.keyID {
			return nil, fmt.Errorf("kid %q", kid)
		}
		return s.pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil || !t.Valid {
		return BodyBadAuthorization
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return BodyBadAuthorization
	}
	if iss, _ := claims.GetIssuer(); iss != s.teamID {
		return BodyBadAuthorization
	}
	switch age := s.Now().Sub(iat.Time); {
	case age > time.Hour:
		return BodyExpired
	case age < -time.Minute:
		return BodyBadAuthorization
	}
	return ""
}

func writeText(w http.ResponseWriter, status int, body string, h http.Header) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
