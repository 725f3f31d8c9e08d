// Package pool keeps attestation tokens ready ahead of need, so that a
// request is answered within the app-server's ~100 ms deadline although a
// DeviceCheck token can take longer than that to make.
//
// Rules (the README's "Defaults, and why" gives each default's reason):
//   - ready tokens are handed out once each, oldest first, and dropped once
//     older than MaxAge;
//   - how many are kept ready follows demand (see demand.go): Size while a
//     turn runs or just after a request or warm-up hint, WarmSize (one,
//     two from a 60 s MaxAge) for WarmWindow after the last of those, then
//     none, so an idle helper stops calling Apple;
//   - one generation at a time; requests take a ready token or wait, until
//     their context ends, for the generation in flight; waiting requests
//     are served round robin across queues (one per connection), so one
//     client pipelining heavily cannot starve the others;
//   - failures back off exponentially with jitter, capped at BackoffMax;
//     a generation that fails fails every request waiting on it, with its
//     reason, at once;
//   - a request that cannot be served before its deadline gets an error
//     promptly: at once while backing off, else when its context ends;
//   - WaitReady waits, without taking one, until a token is ready.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/internal/clock"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// Defaults for the zero fields of Config. BENCHMARKS.md has the
// simulation they were chosen from.
const (
	DefaultSize            = 2
	DefaultMaxAge          = 20 * time.Second
	DefaultWarmWindow      = 2 * time.Minute
	DefaultBusyWindow      = 10 * time.Second
	DefaultTurnTimeout     = 10 * time.Minute
	DefaultReadyMargin     = 500 * time.Millisecond
	DefaultGenerateTimeout = 15 * time.Second
	DefaultBackoffMin      = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultMaxWaiters      = 1024
)

// DefaultWarmSize is how many tokens to keep ready between turns for a
// token lifetime: one below a minute, two from a minute on. In the
// simulation a second token between turns serves a few more requests in
// time but, with short-lived tokens, costs many more tokens made per token
// served; with tokens that live a minute or more it costs little
// (BENCHMARKS.md, "Pareto table", has the figures). So --max-age is the
// one setting to change once Apple's token lifetime is measured.
func DefaultWarmSize(maxAge time.Duration) int {
	if maxAge >= time.Minute {
		return 2
	}
	return 1
}

// ErrClosed is returned by Token after Close.
var ErrClosed = &provider.Error{Reason: provider.ReasonShuttingDown, Msg: "token pool is shutting down"}

// ErrOverloaded is returned by Token when MaxWaiters requests already wait.
var ErrOverloaded = &provider.Error{Reason: provider.ReasonOverloaded,
	Msg:      "too many requests waiting for a token",
	HintText: "ask for a token only when a request needs one; tokens are single-use and made one at a time"}

// Config configures a Pool. Only Provider is required.
type Config struct {
	Provider provider.Provider
	// BundleID and TeamID fill the header's b and m fields.
	BundleID, TeamID string
	// Size is how many ready tokens to keep while busy: while a turn runs,
	// and for BusyWindow after a request or Warm hint.
	Size int
	// MaxAge is how long a ready token may wait before it is discarded.
	MaxAge time.Duration
	// RefreshAhead starts a token's replacement this long before it
	// reaches MaxAge (it is still handed out until then). Zero or
	// negative: at MaxAge.
	RefreshAhead time.Duration
	// ReadyMargin is how much life a token must have left for WaitReady
	// to count it as ready, so the request that follows the wait finds it
	// still fresh; zero means DefaultReadyMargin.
	ReadyMargin time.Duration
	// WarmWindow is how long after the last demand (a turn's end, a
	// request, a Warm hint) the pool keeps WarmSize tokens ready; after it
	// the pool makes nothing until the next demand.
	WarmWindow time.Duration
	// WarmSize is how many ready tokens to keep in the warm window; zero
	// means DefaultWarmSize(MaxAge), and it is at most Size.
	WarmSize int
	// BusyWindow is how long after a request or Warm hint the pool keeps
	// Size tokens ready, for clients that do not signal turns.
	BusyWindow time.Duration
	// TurnTimeout ends a turn that was never completed, this long after it
	// started.
	TurnTimeout time.Duration
	// GenerateTimeout bounds one call to the provider.
	GenerateTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed generation.
	BackoffMin, BackoffMax time.Duration
	// MaxWaiters caps requests waiting for a generation; past it a request
	// fails at once (or, when another queue holds more waiters, that
	// queue's newest fails instead), since one generation serves one
	// waiter and the rest would only time out while crowding the pool.
	MaxWaiters int
	// Logger receives generation events; tokens appear only as
	// fingerprints. Nil discards.
	Logger *slog.Logger
	// Clock and Jitter are seams for tests and simulations; Jitter returns
	// a number in [0, 1).
	Clock  clock.Clock
	Jitter func() float64
}

func (c *Config) setDefaults() {
	if c.Size <= 0 {
		c.Size = DefaultSize
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	c.RefreshAhead = min(max(c.RefreshAhead, 0), c.MaxAge/2)
	if c.ReadyMargin <= 0 {
		c.ReadyMargin = DefaultReadyMargin
	}
	c.ReadyMargin = min(c.ReadyMargin, c.MaxAge/4)
	if c.WarmSize <= 0 {
		c.WarmSize = DefaultWarmSize(c.MaxAge)
	}
	c.WarmSize = min(c.WarmSize, c.Size)
	if c.WarmWindow <= 0 {
		c.WarmWindow = DefaultWarmWindow
	}
	if c.BusyWindow <= 0 {
		c.BusyWindow = DefaultBusyWindow
	}
	if c.TurnTimeout <= 0 {
		c.TurnTimeout = DefaultTurnTimeout
	}
	if c.GenerateTimeout <= 0 {
		c.GenerateTimeout = DefaultGenerateTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.MaxWaiters <= 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
}

// Pool hands out header values made from provider tokens. It is safe for
// concurrent use.
type Pool struct {
	cfg Config

	mu         sync.Mutex
	ready      []entry // oldest first
	demand     demand
	queues     queues
	readyWait  readyWaiters
	generating bool
	failures   int
	retryAt    time.Time
	lastErr    error
	lastErrAt  time.Time
	counters   protocol.PoolCounters
	lastKind   string            // the kind of the last value handed out
	servedKind map[string]uint64 // values handed out, per kind
	closed     bool

	wake    chan struct{} // buffered 1: the loop has something to look at
	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{}

	// testHookIdle, when set, runs each time the loop is about to block.
	testHookIdle func()
}

type entry struct {
	value       string
	kind        string
	generatedAt time.Time
}

type result struct {
	value string
	err   error
}

// New starts a pool. It generates nothing until the first request, Warm,
// WaitReady or turn. Call Close to stop it.
func New(cfg Config) *Pool { return start(cfg, nil) }

// start is New with an idle hook for tests.
func start(cfg Config, idleHook func()) *Pool {
	if cfg.Provider == nil {
		panic("pool: Config.Provider is nil")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:     cfg,
		wake:    make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		stopped: make(chan struct{}),

		testHookIdle: idleHook,
	}
	p.demand.turns.Init()
	go p.loop()
	return p
}

// Token returns a fresh header value, never handed out before. It returns
// at once when a token is ready or the pool is backing off after failures;
// otherwise it waits for a generation until ctx ends. Errors carry a
// provider reason (provider.ReasonOf). Its waits share one queue; use
// TokenIn to be served fairly beside other clients.
func (p *Pool) Token(ctx context.Context) (string, error) {
	return p.TokenIn(ctx, nil)
}

// TokenIn is Token for a request of queue q: while requests wait for
// tokens, each token made goes to the next queue in turn (round robin),
// to that queue's oldest request. A nil q is the pool's shared queue.
func (p *Pool) TokenIn(ctx context.Context, q *Queue) (string, error) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", ErrClosed
	}
	p.demand.request(now, &p.cfg)
	if v, ok := p.takeReadyLocked(now); ok {
		p.mu.Unlock()
		p.kick() // refill
		return v, nil
	}
	p.counters.Requests++
	if !p.generating && now.Before(p.retryAt) {
		err := p.backoffErrLocked(now)
		p.counters.Errors++
		p.mu.Unlock()
		return "", err
	}
	if q == nil {
		q = &p.queues.shared
	}
	w, evicted, err := p.queues.push(q, p.cfg.MaxWaiters)
	if evicted || err != nil {
		p.counters.Errors++
	}
	if err != nil {
		p.mu.Unlock()
		return "", err
	}
	p.mu.Unlock()
	p.kick()

	select {
	case r := <-w.ch:
		return r.value, r.err
	case <-ctx.Done():
	}
	p.mu.Lock()
	if !p.queues.remove(w) {
		// Answered while we were giving up: the answer is ours.
		p.mu.Unlock()
		r := <-w.ch
		return r.value, r.err
	}
	p.counters.Timeouts++
	p.mu.Unlock()
	return "", &provider.Error{Reason: provider.ReasonTimeout,
		Msg:      "no token ready before the deadline (a generation is in flight)",
		HintText: "tokens are made ahead of need; send a warm-up hint, or wait for readiness (attestation/warm with wait), before requests arrive",
		Err:      ctx.Err()}
}

// backoffErrLocked is the error for a request that finds the pool
// backing off after a failed generation.
func (p *Pool) backoffErrLocked(now time.Time) error {
	return fmt.Errorf("no token ready; next try in %s after a failed generation: %w",
		p.retryAt.Sub(now).Round(time.Millisecond), p.lastErr)
}

// TryToken takes a ready token without waiting. When none is ready it
// returns false and changes nothing; call Token to wait for one.
func (p *Pool) TryToken() (string, bool) {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", false
	}
	v, ok := p.takeReadyLocked(now)
	if ok {
		p.demand.request(now, &p.cfg)
	}
	p.mu.Unlock()
	if ok {
		p.kick() // refill
	}
	return v, ok
}

// takeReadyLocked hands out the oldest fresh token, counting the request,
// or reports that none is ready.
func (p *Pool) takeReadyLocked(now time.Time) (string, bool) {
	p.dropExpiredLocked(now)
	if len(p.ready) == 0 {
		return "", false
	}
	e := p.ready[0]
	p.ready[0] = entry{}
	p.ready = p.ready[1:]
	p.counters.Requests++
	p.servedLocked(e.kind)
	return e.value, true
}

// servedLocked counts a value of kind handed out.
func (p *Pool) servedLocked(kind string) {
	p.counters.Served++
	p.lastKind = kind
	if p.servedKind == nil {
		p.servedKind = map[string]uint64{}
	}
	p.servedKind[kind]++
}

// Warm asks the pool to have Size tokens ready and stay warm, as a
// request would, without taking a token.
func (p *Pool) Warm() {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	p.demand.request(now, &p.cfg)
	p.mu.Unlock()
	p.kick()
}

// Close stops the pool: waiting requests fail with ErrClosed, a generation
// in flight is canceled, and Close returns once the pool's goroutine has
// exited. It is safe to call more than once.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.queues.failAll(ErrClosed)
		p.readyWait.notify(ErrClosed)
		p.ready = nil
	}
	p.mu.Unlock()
	p.cancel()
	p.kick()
	<-p.stopped
}

func (p *Pool) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Pool) loop() {
	defer close(p.stopped)
	for {
		now := p.cfg.Clock.Now()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.dropExpiredLocked(now)
		wait := time.Duration(-1)
		start := false
		want, fresh := p.targetLocked(now), p.freshLocked(now, p.cfg.RefreshAhead)
		needed := p.queues.n > 0 || fresh < want ||
			p.readyWait.n > 0 && p.freshLocked(now, p.cfg.ReadyMargin) == 0
		if needed && !p.generating {
			if now.Before(p.retryAt) {
				wait = p.retryAt.Sub(now)
			} else {
				start = true
				p.generating = true
			}
		}
		if len(p.ready) > 0 {
			// Wake when the oldest expires, or when it is due for
			// replacement while tokens are wanted.
			wait = minWait(wait, p.ready[0].generatedAt.Add(p.cfg.MaxAge).Sub(now))
			if want > 0 && fresh > 0 && p.cfg.RefreshAhead > 0 {
				wait = minWait(wait, p.ready[len(p.ready)-fresh].generatedAt.Add(p.cfg.MaxAge-p.cfg.RefreshAhead).Sub(now))
			}
		}
		p.mu.Unlock()

		if start {
			p.generate(now)
			continue
		}
		if hook := p.testHookIdle; hook != nil {
			hook()
		}
		var timerC <-chan time.Time
		var timer clock.Timer
		if wait >= 0 {
			timer = p.cfg.Clock.NewTimer(max(wait, time.Millisecond))
			timerC = timer.C()
		}
		select {
		case <-p.wake:
		case <-timerC:
		case <-p.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func minWait(a, b time.Duration) time.Duration {
	if a < 0 || b < a {
		return max(b, 0)
	}
	return a
}

// targetLocked is how many fresh values the pool keeps ready now: what
// demand asks for, shaped by a provider that makes its answers on demand
// (provider.Ahead).
func (p *Pool) targetLocked(now time.Time) int {
	want := p.demand.target(now, &p.cfg)
	if a, ok := p.cfg.Provider.(provider.Ahead); ok && want > 0 {
		want = min(max(a.Ahead(want), 0), want)
	}
	return want
}

// onDemand reports whether the provider makes its answers in time for
// each request just now, so that none need be made ahead.
func (p *Pool) onDemand() bool {
	a, ok := p.cfg.Provider.(provider.Ahead)
	return ok && a.Ahead(p.cfg.Size) == 0
}

// generate makes one value and hands it to the next waiting request or
// the ready set. start is when the loop decided to make it. It runs on the
// loop goroutine only.
func (p *Pool) generate(start time.Time) {
	ctx := newGenCtx(p.ctx, p.cfg.GenerateTimeout)
	ans, err := safeGenerate(ctx, p.cfg.Provider)
	ctx.cancel()
	now := p.cfg.Clock.Now()
	var value string
	if err == nil {
		if ans.GeneratedAt.IsZero() {
			ans.GeneratedAt = now
		}
		value, err = ans.Encode(p.cfg.BundleID, p.cfg.TeamID)
	}
	took := now.Sub(start)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.generating = false
	if err != nil {
		err = fmt.Errorf("generate token: %w", err)
		p.failures++
		p.counters.GenerateFailures++
		p.lastErr, p.lastErrAt = err, now
		delay := p.backoff(p.failures)
		p.retryAt = now.Add(delay)
		p.counters.Errors += uint64(p.queues.n)
		p.queues.failAll(err)
		p.readyWait.notify(err)
		if !p.closed {
			p.cfg.Logger.Warn("token generation failed", "reason", provider.ReasonOf(err), "err", err,
				"took", took, "failures", p.failures, "retryIn", delay)
		}
		return
	}
	p.failures = 0
	p.retryAt = time.Time{}
	p.counters.Generated++
	if p.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		p.cfg.Logger.Debug("token generated", "kind", ans.Kind, "fingerprint", header.Fingerprint(value), "took", took)
	}
	if p.closed {
		return
	}
	if w := p.queues.next(); w != nil {
		p.servedLocked(ans.Kind)
		w.ch <- result{value: value}
		return
	}
	p.ready = append(p.ready, entry{value: value, kind: ans.Kind, generatedAt: now})
	p.readyWait.notify(nil)
}

// backoff returns the wait after n consecutive failures: BackoffMin·2ⁿ⁻¹,
// capped at BackoffMax, with "equal jitter" (between half and all of it).
func (p *Pool) backoff(n int) time.Duration {
	d := p.cfg.BackoffMin
	for i := 1; i < n && d < p.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.BackoffMax)
	return d/2 + time.Duration(p.cfg.Jitter()*float64(d/2))
}

func safeGenerate(ctx context.Context, pr provider.Provider) (ans provider.Answer, err error) {
	defer func() {
		if r := recover(); r != nil {
			ans, err = provider.Answer{}, &provider.Error{Reason: provider.ReasonProviderError, Msg: fmt.Sprintf("provider panicked: %v", r)}
		}
	}()
	ans, err = pr.Generate(ctx)
	if err == nil && len(ans.Token) == 0 {
		err = errors.New("provider returned an empty token")
	}
	return ans, err
}

func (p *Pool) dropExpiredLocked(now time.Time) {
	i := 0
	for i < len(p.ready) && !now.Before(p.ready[i].generatedAt.Add(p.cfg.MaxAge)) {
		i++
	}
	if i > 0 {
		p.counters.Expired += uint64(i)
		p.ready = append(p.ready[:0:0], p.ready[i:]...)
	}
}

// freshLocked counts the ready tokens with more than margin of their
// life left. They are the newest ones.
func (p *Pool) freshLocked(now time.Time, margin time.Duration) int {
	n := 0
	for i := len(p.ready) - 1; i >= 0 && now.Before(p.ready[i].generatedAt.Add(p.cfg.MaxAge-margin)); i-- {
		n++
	}
	return n
}
