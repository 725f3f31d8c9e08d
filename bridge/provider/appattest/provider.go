package appattest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/internal/clock"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// Service is App Attest as the provider uses it: darwin.AppAttestService
// satisfies it, and so does the simulator. Its errors follow darwin's: an
// error carrying a *provider.Error with DCError code 3 (invalidKey) means
// the key is gone, code 4 (serverUnavailable) that attestKey could not
// reach Apple.
type Service interface {
	// GenerateKey makes a new key and returns its id: standard base64
	// of 32 bytes.
	GenerateKey(ctx context.Context) (keyID string, err error)
	// AttestKey has Apple attest the key for clientDataHash (32 bytes).
	AttestKey(ctx context.Context, keyID string, clientDataHash []byte) (attestation []byte, err error)
	// GenerateAssertion signs clientDataHash (32 bytes) with the key.
	GenerateAssertion(ctx context.Context, keyID string, clientDataHash []byte) (assertion []byte, err error)
}

// KeyStore keeps the key id between runs: darwin.KeyStore (the login
// Keychain) satisfies it.
type KeyStore interface {
	// Get returns the stored key id; Config.NoKeyID tells the error of a
	// store that holds none (or none usable).
	Get(ctx context.Context) (keyID string, err error)
	// Set stores keyID, replacing any stored one.
	Set(ctx context.Context, keyID string) error
}

// The DCError codes (DCError.h) that change what the provider does.
const (
	dcErrorInvalidKey        = 3
	dcErrorServerUnavailable = 4
)

// ErrNoKeyID is what a KeyStore without a key id returns when
// Config.NoKeyID is nil.
var ErrNoKeyID = errors.New("no App Attest key id is stored")

// Defaults for the zero fields of Config.
const (
	DefaultCheckEvery    = 6 * time.Hour
	DefaultBackoffMin    = 2 * time.Second
	DefaultBackoffMax    = 10 * time.Minute
	DefaultAssertTimeout = 2 * time.Second
	DefaultCallTimeout   = 30 * time.Second
)

// Config configures a Provider. Start, Keys, Server and Fallback are
// required.
type Config struct {
	// Name is the provider's name in status ("appattest",
	// "appattest-sim").
	Name string
	// Start returns the App Attest service (darwin.NewAppAttest). It is
	// called in the background until it succeeds; a failure with reason
	// unsupported (isSupported is false, another OS) is final: the
	// fallback answers for good.
	Start func() (Service, error)
	// Keys keeps the key id; NoKeyID reports whether an error of
	// Keys.Get means that it holds no usable key id, so that a new key
	// is made (nil: errors.Is(err, ErrNoKeyID)). Other errors (a locked
	// Keychain) are retried.
	Keys    KeyStore
	NoKeyID func(error) bool
	// Server is the registration base URL (--appattest-register); HTTP
	// carries its requests (nil: http.DefaultClient).
	Server string
	HTTP   *http.Client
	// Fallback answers while no key is registered, while registration
	// fails and after an assertion fails: DeviceCheck (the simulator:
	// dev).
	Fallback provider.Provider
	// Ready is how many assertions the pool keeps made ahead while busy
	// (at most its --prefetch); 0 makes each when a request asks.
	Ready int
	// CheckEvery is how often the key's status is asked while all is
	// well (±10%); BackoffMin and BackoffMax bound the wait after a
	// failure, doubling, with jitter; a server's Retry-After is honoured
	// when longer.
	CheckEvery, BackoffMin, BackoffMax time.Duration
	// AssertTimeout bounds one assertion; past it the request gets the
	// fallback's answer and assertions back off. CallTimeout bounds each
	// step of the background work (a Keychain call, a key, an
	// attestation, a request to the server).
	AssertTimeout, CallTimeout time.Duration
	// Logger gets the background work's events; nil discards.
	Logger *slog.Logger
	// Clock and Jitter are seams for tests; Jitter returns a number in
	// [0, 1).
	Clock  clock.Clock
	Jitter func() float64
}

func (c *Config) check() error {
	switch {
	case c.Start == nil:
		return errors.New("appattest: Config.Start is nil")
	case c.Keys == nil:
		return errors.New("appattest: Config.Keys is nil")
	case c.Fallback == nil:
		return errors.New("appattest: Config.Fallback is nil")
	case c.Server == "":
		return errors.New("appattest: no registration server: give --appattest-register URL")
	case c.Ready < 0:
		return fmt.Errorf("appattest: negative ready count %d", c.Ready)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "appattest"
	}
	if c.NoKeyID == nil {
		c.NoKeyID = func(err error) bool { return errors.Is(err, ErrNoKeyID) }
	}
	c.CheckEvery = or(c.CheckEvery, DefaultCheckEvery)
	c.BackoffMin = or(c.BackoffMin, DefaultBackoffMin)
	c.BackoffMax = max(or(c.BackoffMax, DefaultBackoffMax), c.BackoffMin)
	c.AssertTimeout = or(c.AssertTimeout, DefaultAssertTimeout)
	c.CallTimeout = or(c.CallTimeout, DefaultCallTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Jitter == nil {
		c.Jitter = mrand.Float64
	}
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Provider is the App Attest provider: it answers each request with an
// assertion of its registered key, made for that request, and with the
// fallback's answer until the key is registered. Getting the key
// registered is background work (Start), never in a request's path. It
// is safe for concurrent use.
type Provider struct {
	cfg Config
	reg Client

	startOnce sync.Once
	started   chan struct{} // closed when the first round of background work ends
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}    // closed when the background work has stopped
	wake      chan struct{}    // buffered 1: check the key now
	starting  chan startResult // a start in progress; the background work's alone

	mu    sync.Mutex
	st    state
	count protocol.AppAttestCounters

	// testHookWait, when set, is told how long the background work waits
	// before its next round.
	testHookWait func(time.Duration)
}

var (
	_ provider.Provider          = (*Provider)(nil)
	_ provider.Ahead             = (*Provider)(nil)
	_ provider.AppAttestReporter = (*Provider)(nil)
	_ provider.Starter           = (*Provider)(nil)
)

// New returns a Provider; nothing runs before Start or the first
// Generate.
func New(cfg Config) (*Provider, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Provider{cfg: cfg, reg: Client{BaseURL: cfg.Server, HTTP: cfg.HTTP},
		started: make(chan struct{}), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}, 1)}, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.cfg.Name }

// Fallback returns the provider that answers until the key is registered.
func (p *Provider) Fallback() provider.Provider { return p.cfg.Fallback }

// Start starts the background work, once, and the fallback's when it has
// any (provider.Lazy). The channel it returns is closed when the first
// round of that work has ended: the key is registered, or the round
// failed, or App Attest is unsupported here.
func (p *Provider) Start() <-chan struct{} {
	p.startOnce.Do(func() {
		if s, ok := p.cfg.Fallback.(interface{ Start() <-chan struct{} }); ok {
			s.Start()
		}
		go p.run()
	})
	return p.started
}

// Close stops the background work and waits for it; a call to Apple or
// the server in progress is canceled. Generate keeps working with the
// state reached.
func (p *Provider) Close() error {
	p.startOnce.Do(func() { close(p.started); close(p.done) }) // never started: nothing runs
	p.cancel()
	<-p.done
	return nil
}

// Generate implements provider.Provider: an App Attest assertion made for
// this request when the key is registered, else the fallback's answer.
// An assertion that fails is answered by the fallback too.
func (p *Provider) Generate(ctx context.Context) (provider.Answer, error) {
	p.Start()
	svc, key, gen, ok := p.usable()
	if ok {
		a, err := p.assert(ctx, svc, key)
		if err == nil {
			p.mu.Lock()
			p.count.Assertions++
			p.st.assertFailures = 0
			p.mu.Unlock()
			return a, nil
		}
		p.assertionFailed(gen, err)
		if ctx.Err() != nil {
			return provider.Answer{}, err
		}
	}
	p.mu.Lock()
	p.count.Fallbacks++
	p.mu.Unlock()
	return p.cfg.Fallback.Generate(ctx)
}

// assert makes one assertion of key for a fresh nonce and now.
func (p *Provider) assert(ctx context.Context, svc Service, key keyID) (provider.Answer, error) {
	nonce := make([]byte, header.NonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return provider.Answer{}, err
	}
	g := time.UnixMilli(p.cfg.Clock.Now().UnixMilli())
	h := header.AppAttestClientDataHash(key.raw, g, nonce)
	actx, cancel := context.WithTimeout(ctx, p.cfg.AssertTimeout)
	defer cancel()
	obj, err := svc.GenerateAssertion(actx, key.text, h[:])
	if err == nil && len(obj) == 0 {
		err = errors.New("App Attest returned an empty assertion")
	}
	if err != nil {
		return provider.Answer{}, fmt.Errorf("appattest assertion: %w", err)
	}
	return provider.Answer{Kind: header.KindAppAttest, Token: obj, GeneratedAt: g,
		KeyID: append([]byte(nil), key.raw...), Nonce: nonce}, nil
}

// assertionFailed records a failed assertion of the key of generation
// gen: an invalid key is replaced; any other failure makes assertions back
// off, and has the background work check the key.
func (p *Provider) assertionFailed(gen uint64, err error) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	p.count.AssertionFailures++
	p.st.fail(err, now)
	invalid := isDCCode(err, dcErrorInvalidKey)
	if invalid && gen == p.st.gen {
		p.st.registered, p.st.newKey = false, true
	} else if !invalid {
		p.st.assertFailures++
		p.st.assertRetryAt = now.Add(p.backoff(p.st.assertFailures))
		p.st.needCheck = true
	}
	p.mu.Unlock()
	p.cfg.Logger.Warn("App Attest assertion failed; the fallback answers", "invalidKey", invalid,
		"reason", provider.ReasonOf(err), "err", err)
	p.kick()
}

// kick asks the background work to look at the key now.
func (p *Provider) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// usable returns what an assertion needs, and whether requests get
// assertions now.
func (p *Provider) usable() (Service, keyID, uint64, bool) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := p.st.svc != nil && p.st.registered && !p.st.newKey && !now.Before(p.st.assertRetryAt)
	return p.st.svc, p.st.key, p.st.gen, ok
}

// Ahead implements provider.Ahead: Config.Ready while requests get
// assertions, else as many as the pool wants (the fallback's tokens are
// slow to make).
func (p *Provider) Ahead(want int) int {
	if _, _, _, ok := p.usable(); ok {
		return min(p.cfg.Ready, want)
	}
	return want
}

// AppAttestStatus implements provider.AppAttestReporter.
func (p *Provider) AppAttestStatus() protocol.AppAttestStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := protocol.AppAttestStatus{State: p.st.phase(), Registered: p.st.registered && !p.st.newKey,
		KeyID: p.st.key.text, Environment: p.st.environment, Server: p.cfg.Server, Ahead: p.cfg.Ready,
		Fallback: p.cfg.Fallback.Name(), Counters: p.count}
	if t := p.st.lastCheck; !t.IsZero() {
		s.LastCheck = &t
	}
	if t := p.st.nextAttempt; !t.IsZero() {
		s.NextAttempt = &t
	}
	if e := p.st.lastErr; e != nil {
		s.LastError = &protocol.PoolFailure{Reason: provider.ReasonOf(e), Message: e.Error(), At: p.st.lastErrAt}
		if code, ok := provider.DCErrorCodeOf(e); ok {
			s.LastError.DCErrorCode = &code
		}
	}
	return s
}

// backoff returns the wait after n consecutive failures: BackoffMin·2ⁿ⁻¹,
// capped at BackoffMax, with equal jitter (between half and all of it).
func (p *Provider) backoff(n int) time.Duration {
	d := p.cfg.BackoffMin
	for i := 1; i < n && d < p.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.BackoffMax)
	return d/2 + time.Duration(p.cfg.Jitter()*float64(d/2))
}

// isDCCode reports whether err carries Apple's DCError code.
func isDCCode(err error, code int) bool {
	c, ok := provider.DCErrorCodeOf(err)
	return ok && c == code
}

// keyID is a key id in App Attest's text (standard base64) and raw.
type keyID struct {
	text string
	raw  []byte
}

// parseKeyID reads a key id in App Attest's form: standard base64 of 32
// bytes, nothing else.
func parseKeyID(text string) (keyID, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || len(raw) != header.KeyIDLen || base64.StdEncoding.EncodeToString(raw) != text {
		return keyID{}, fmt.Errorf("not an App Attest key id (standard base64 of 32 bytes): %q", text)
	}
	return keyID{text: text, raw: raw}, nil
}

// fingerprint names the key in logs (its id is no secret, but long).
func (k keyID) fingerprint() string { return header.Fingerprint(k.raw) }
