package appattest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// state is what the provider knows about its service, key and
// registration; guarded by Provider.mu. The background work changes the
// key; a request may only mark it invalid (newKey) or ask for a check.
type state struct {
	svc         Service
	unsupported bool
	key         keyID
	gen         uint64 // counts the keys: a result about an older key is dropped
	loaded      bool   // the key store was read
	stored      bool   // the key store holds key
	newKey      bool   // make a new key next
	needCheck   bool   // ask the server about the key next
	registered  bool
	environment string

	failures       int // rounds failed in a row
	lastErr        error
	lastErrAt      time.Time
	lastCheck      time.Time
	nextAttempt    time.Time
	assertFailures int
	assertRetryAt  time.Time
}

func (s *state) fail(err error, now time.Time) { s.lastErr, s.lastErrAt = err, now }

// phase is the status's state.
func (s *state) phase() string {
	switch {
	case s.unsupported:
		return protocol.AppAttestUnsupported
	case s.registered && !s.newKey:
		return protocol.AppAttestRegistered
	case s.failures > 0:
		return protocol.AppAttestFailing
	case s.key.text != "":
		return protocol.AppAttestRegistering
	}
	return protocol.AppAttestStarting
}

// run is the background work: rounds until Close, or until App Attest
// turns out to be unsupported.
func (p *Provider) run() {
	defer close(p.done)
	first := true
	for {
		wait, stop := p.round()
		if first {
			close(p.started)
			first = false
		}
		if stop || !p.sleep(wait) {
			return
		}
	}
}

// sleep waits d, or less when a request asks for a check while no failure
// is being backed off from; it reports false once the provider is closed.
func (p *Provider) sleep(d time.Duration) bool {
	p.mu.Lock()
	p.st.nextAttempt = p.cfg.Clock.Now().Add(d)
	p.mu.Unlock()
	t := p.cfg.Clock.NewTimer(d)
	defer t.Stop()
	if p.testHookWait != nil {
		p.testHookWait(d)
	}
	for {
		select {
		case <-t.C():
			return true
		case <-p.wake:
			p.mu.Lock()
			backingOff := p.st.failures > 0
			p.mu.Unlock()
			if !backingOff {
				return true
			}
		case <-p.ctx.Done():
			return false
		}
	}
}

// round does what the key needs now and returns how long to wait before
// the next round, and whether to stop.
func (p *Provider) round() (time.Duration, bool) {
	err := p.advance()
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	if p.st.unsupported || p.ctx.Err() != nil {
		p.mu.Unlock()
		return 0, true
	}
	if err == nil {
		p.st.failures = 0
		p.mu.Unlock()
		return time.Duration(float64(p.cfg.CheckEvery) * (0.9 + 0.2*p.cfg.Jitter())), false
	}
	p.st.failures++
	p.st.fail(err, now)
	n := p.st.failures
	wait := p.backoff(n)
	var se *ServerError
	if errors.As(err, &se) {
		wait = max(wait, se.RetryAfter)
	}
	registered := p.st.registered
	p.mu.Unlock()
	p.cfg.Logger.Warn("App Attest: background work failed; trying again later", "registered", registered,
		"failures", n, "retryIn", wait, "reason", provider.ReasonOf(err), "err", err, "hint", hint.Of(err))
	return wait, false
}

// maxSteps bounds one round: loading, a new key, a check, a registration
// and a second key after an invalidKey.
const maxSteps = 6

// errNoProgress ends a round that took maxSteps without settling.
var errNoProgress = errors.New("appattest: the key did not settle in one round")

// advance starts the service if needed, then takes the key through its
// steps until it is registered and checked, or a step fails.
func (p *Provider) advance() error {
	if err := p.ensureService(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.st.registered {
		p.st.needCheck = true // every round of a registered key is a check
	}
	p.mu.Unlock()
	p.saveKey()
	for range maxSteps {
		step := p.nextStep()
		if step == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.CallTimeout)
		err := step(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	return errNoProgress
}

// nextStep returns what the key needs next, or nil when it is registered
// and checked.
func (p *Provider) nextStep() func(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s := &p.st; {
	case s.newKey:
		return p.makeKey
	case !s.loaded && s.key.text == "":
		return p.loadKey
	case s.needCheck:
		return p.checkKey
	case !s.registered:
		return p.register
	}
	return nil
}

// ensureService starts the service once. A start that fails with reason
// unsupported ends App Attest for good; any other failure is retried.
func (p *Provider) ensureService() error {
	p.mu.Lock()
	has := p.st.svc != nil
	p.mu.Unlock()
	if has {
		return nil
	}
	svc, err := p.startService()
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	if err == nil {
		p.st.svc = svc
		p.mu.Unlock()
		return nil
	}
	unsupported := provider.ReasonOf(err) == provider.ReasonUnsupported
	if unsupported {
		p.st.unsupported = true
		p.st.fail(err, now)
	}
	p.mu.Unlock()
	if unsupported {
		h := hint.Of(err)
		if h == "" {
			h = "App Attest works on macOS 27 or later, in a helper whose profile grants it; --provider appattest-sim runs anywhere"
		}
		p.cfg.Logger.Info("App Attest is not available here; the fallback answers every request",
			"fallback", p.cfg.Fallback.Name(), "err", err, "hint", h)
	}
	return fmt.Errorf("start App Attest: %w", err)
}

// startResult is what Config.Start returned.
type startResult struct {
	svc Service
	err error
}

// startService calls Config.Start on a goroutine of its own and waits for
// it up to CallTimeout: a start that hangs (isSupported is a system call)
// must neither hold up Close nor be started twice. A start still running
// is waited for again next round; its result counts whenever it comes.
func (p *Provider) startService() (Service, error) {
	if p.starting == nil {
		ch := make(chan startResult, 1)
		p.starting = ch
		go func() {
			var r startResult
			defer func() {
				if v := recover(); v != nil {
					r = startResult{err: &provider.Error{Reason: provider.ReasonProviderError, Msg: fmt.Sprintf("starting App Attest panicked: %v", v)}}
				}
				ch <- r
			}()
			r.svc, r.err = p.cfg.Start()
			if r.err == nil && r.svc == nil {
				r.err = errors.New("starting App Attest returned no service")
			}
		}()
	}
	t := time.NewTimer(p.cfg.CallTimeout) // the real clock: it bounds a real call
	defer t.Stop()
	select {
	case r := <-p.starting:
		p.starting = nil
		return r.svc, r.err
	case <-t.C:
		return nil, &provider.Error{Reason: provider.ReasonProviderError,
			Msg:      fmt.Sprintf("starting App Attest has not returned after %v", p.cfg.CallTimeout),
			HintText: "run \"attestd selftest\" to see whether isSupported hangs on this Mac"}
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

// loadKey reads the key id from the key store; none (or one not in App
// Attest's form) means a new key.
func (p *Provider) loadKey(ctx context.Context) error {
	text, err := p.cfg.Keys.Get(ctx)
	if err != nil && !p.cfg.NoKeyID(err) {
		return fmt.Errorf("read the key id: %w", err)
	}
	k, perr := parseKeyID(text)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.loaded = true
	if err != nil || perr != nil {
		p.st.newKey = true
		p.cfg.Logger.Info("App Attest: no usable key id stored; making a key", "err", errors.Join(err, perr))
		return nil
	}
	p.st.key, p.st.stored, p.st.needCheck = k, true, true
	p.st.gen++
	return nil
}

// makeKey makes a new key and stores its id.
func (p *Provider) makeKey(ctx context.Context) error {
	p.mu.Lock()
	svc := p.st.svc
	p.mu.Unlock()
	text, err := svc.GenerateKey(ctx)
	if err != nil {
		return fmt.Errorf("make a key: %w", err)
	}
	k, err := parseKeyID(text)
	if err != nil {
		return fmt.Errorf("make a key: %w", err)
	}
	p.mu.Lock()
	p.st.key, p.st.gen = k, p.st.gen+1
	p.st.loaded, p.st.stored, p.st.newKey, p.st.needCheck, p.st.registered = true, false, false, false, false
	p.st.environment = ""
	p.count.KeysMade++
	p.mu.Unlock()
	p.cfg.Logger.Info("App Attest: made a key", "key", k.fingerprint())
	p.saveKey()
	return nil
}

// saveKey stores a key id the key store does not hold yet. A failure is
// reported and tried again next round; the key works meanwhile.
func (p *Provider) saveKey() {
	p.mu.Lock()
	k, gen, todo := p.st.key, p.st.gen, p.st.key.text != "" && !p.st.stored
	p.mu.Unlock()
	if !todo {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.CallTimeout)
	err := p.cfg.Keys.Set(ctx, k.text)
	cancel()
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.st.fail(fmt.Errorf("store the key id: %w", err), now)
		p.cfg.Logger.Warn("App Attest: cannot store the key id; the key works until the helper stops", "err", err, "hint", hint.Of(err))
		return
	}
	if gen == p.st.gen {
		p.st.stored = true
	}
}

// checkKey asks the server about the key: active keeps it, revoked makes
// a new one, unknown registers it again.
func (p *Provider) checkKey(ctx context.Context) error {
	p.mu.Lock()
	k, gen := p.st.key, p.st.gen
	p.mu.Unlock()
	st, err := p.reg.KeyStatus(ctx, k.text)
	if err != nil {
		return fmt.Errorf("ask the key's status: %w", err)
	}
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count.Checks++
	p.st.lastCheck = now
	if gen != p.st.gen {
		return nil
	}
	p.st.needCheck = false
	switch st.Status {
	case KeyActive:
		p.st.registered, p.st.environment = true, st.Environment
	case KeyRevoked:
		p.st.registered, p.st.newKey = false, true
		p.cfg.Logger.Warn("App Attest: the server revoked the key; making a new one", "key", k.fingerprint())
	default:
		p.st.registered = false
		p.cfg.Logger.Info("App Attest: the server does not know the key; registering it", "key", k.fingerprint())
	}
	return nil
}

// register attests the key for a fresh challenge and registers it. App
// Attest's invalidKey makes a new key at once; any other refusal but
// serverUnavailable or a timeout makes one next round (Apple attests a
// key again only until its first assertion).
func (p *Provider) register(ctx context.Context) error {
	p.mu.Lock()
	svc, k, gen := p.st.svc, p.st.key, p.st.gen
	p.mu.Unlock()
	ch, err := p.reg.Challenge(ctx)
	if err != nil {
		return fmt.Errorf("get a challenge: %w", err)
	}
	h := sha256.Sum256(ch.Bytes)
	att, err := svc.AttestKey(ctx, k.text, h[:])
	if err != nil {
		retry := isDCCode(err, dcErrorServerUnavailable) || provider.ReasonOf(err) == provider.ReasonTimeout || ctx.Err() != nil
		if !retry {
			p.replaceKey(gen)
		}
		if isDCCode(err, dcErrorInvalidKey) {
			p.cfg.Logger.Warn("App Attest: the key is invalid; making a new one", "key", k.fingerprint(), "err", err)
			return nil
		}
		return fmt.Errorf("attest the key: %w", err)
	}
	r, err := p.reg.Register(ctx, k.text, att, ch.Text)
	if err != nil {
		return fmt.Errorf("register the key: %w", err)
	}
	p.mu.Lock()
	if gen == p.st.gen && !p.st.newKey {
		p.st.registered, p.st.environment = true, r.Environment
		p.count.Registrations++
	}
	p.mu.Unlock()
	p.cfg.Logger.Info("App Attest: key registered; requests get assertions", "key", k.fingerprint(),
		"environment", r.Environment, "again", r.Again)
	return nil
}

// replaceKey has the key of generation gen replaced by a new one.
func (p *Provider) replaceKey(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen == p.st.gen {
		p.st.newKey, p.st.registered = true, false
	}
}
