package provider

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Defaults for the zero fields of LazyConfig.
const (
	DefaultStartBackoffMin = time.Second
	DefaultStartBackoffMax = time.Minute
	DefaultStartTimeout    = 10 * time.Second
)

// LazyConfig configures a Lazy provider. Kind and Start are required.
type LazyConfig struct {
	// Kind is the name the provider goes by, started or not (Name): the
	// header kind of the tokens the started provider makes.
	Kind string
	// Name names the provider in errors, e.g. "DeviceCheck".
	Name string
	// Start makes the provider. A failure should carry a reason and a
	// hint (an *Error in its chain): clients get it as it is.
	Start func() (Provider, error)
	// Retry reports whether a failed start is worth another try. Nil
	// retries every failure except ReasonUnsupported, which no retry can
	// change (another OS, an unsupported Mac).
	Retry func(err error) bool
	// BackoffMin and BackoffMax bound the wait before another try: it
	// doubles from BackoffMin after each failure, up to BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// StartTimeout bounds the wait for an attempt: once one has run this
	// long (on the real clock), Generate stops waiting for it and fails at
	// once with reason provider_error, saying the start has not returned.
	// The attempt itself cannot be stopped (a system call that hangs); if
	// it ever returns, its result counts, and no other attempt starts
	// while it runs.
	StartTimeout time.Duration
	// OnStart, when set, is called after every attempt with its result
	// (nil when the provider started), outside any lock and before the
	// callers waiting for that attempt go on.
	OnStart func(err error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Lazy is a Provider that is made on demand rather than up front, so a
// daemon can take its socket first and then explain a provider that cannot
// start (no GUI session, unsupported) instead of exiting. Until the
// provider has started, Generate fails at once with the start error, its
// reason and its hint; a failure that a retry can cure is retried, on
// Start or on the next Generate once its backoff has passed, and never
// more than one attempt at a time. Retries need demand: a Lazy nobody asks
// does nothing.
type Lazy struct {
	cfg LazyConfig

	mu       sync.Mutex
	p        Provider      // set once started
	running  chan struct{} // closed when the attempt in progress ends; nil when none runs
	runSince time.Time     // when the attempt in progress began, on the real clock
	err      error         // the last failure to start
	errAt    time.Time
	attempts int
	retryAt  time.Time // when another try is allowed; zero when never
}

var _ Provider = (*Lazy)(nil)

// NewLazy returns a Lazy provider; nothing is started until Start or
// Generate.
func NewLazy(cfg LazyConfig) *Lazy {
	if cfg.Start == nil {
		panic("provider: LazyConfig.Start is nil")
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Kind
	}
	if cfg.Retry == nil {
		cfg.Retry = func(err error) bool { return ReasonOf(err) != ReasonUnsupported }
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultStartBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultStartBackoffMax, cfg.BackoffMin)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	return &Lazy{cfg: cfg}
}

// Name returns the configured kind, started or not.
func (l *Lazy) Name() string { return l.cfg.Kind }

// Start begins an attempt to start the provider in the background, unless
// it has started, an attempt runs, or the last failure is final or too
// recent. It returns a channel that is closed when the attempt in
// progress (if any) ends.
func (l *Lazy) Start() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if done := l.startLocked(); done != nil {
		return done
	}
	done := make(chan struct{})
	close(done)
	return done
}

// startLocked returns the channel of the attempt in progress, starting one
// if allowed, or nil when there is none to wait for.
func (l *Lazy) startLocked() chan struct{} {
	if l.p != nil || l.running != nil {
		return l.running
	}
	if l.err != nil && (l.retryAt.IsZero() || l.cfg.Now().Before(l.retryAt)) {
		return nil
	}
	done := make(chan struct{})
	l.running, l.runSince = done, time.Now()
	go l.attempt(done)
	return done
}

func (l *Lazy) attempt(done chan struct{}) {
	p, err := l.start()
	l.mu.Lock()
	l.running = nil
	if err == nil {
		l.p, l.err, l.retryAt = p, nil, time.Time{}
	} else {
		now := l.cfg.Now()
		l.err, l.errAt = err, now
		l.attempts++
		l.retryAt = time.Time{}
		if l.cfg.Retry(err) {
			wait := l.cfg.BackoffMin << min(l.attempts-1, 30)
			if wait <= 0 || wait > l.cfg.BackoffMax {
				wait = l.cfg.BackoffMax
			}
			l.retryAt = now.Add(wait)
		}
	}
	l.mu.Unlock()
	if l.cfg.OnStart != nil {
		l.cfg.OnStart(err)
	}
	close(done)
}

// start runs cfg.Start, turning a panic into an error.
func (l *Lazy) start() (p Provider, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &Error{Reason: ReasonProviderError, Msg: fmt.Sprintf("starting %s panicked: %v", l.cfg.Name, r)}
		}
	}()
	p, err = l.cfg.Start()
	if err == nil && p == nil {
		err = &Error{Reason: ReasonProviderError, Msg: "starting " + l.cfg.Name + " returned no provider"}
	}
	return p, err
}

// Generate returns a token from the started provider. Before the provider
// has started it waits (until ctx ends, and no longer than StartTimeout
// after the attempt began) for an attempt in progress, and otherwise fails
// at once with the last start error, which keeps that error's reason and
// hint.
func (l *Lazy) Generate(ctx context.Context) (Answer, error) {
	l.mu.Lock()
	done := l.startLocked()
	since := l.runSince
	l.mu.Unlock()
	if done != nil {
		wctx, cancel := context.WithDeadline(ctx, since.Add(l.cfg.StartTimeout))
		select {
		case <-done:
			cancel()
		case <-wctx.Done():
			cancel()
			if ctx.Err() != nil {
				return Answer{}, fmt.Errorf("%s is still starting: %w", l.cfg.Name, ctx.Err())
			}
			return Answer{}, &Error{Reason: ReasonProviderError,
				Msg:      fmt.Sprintf("starting %s has not returned after %v", l.cfg.Name, time.Since(since).Round(time.Millisecond)),
				HintText: "restart the daemon; if it happens again, \"attestd selftest\" shows which step hangs"}
		}
	}
	l.mu.Lock()
	p, err := l.p, l.err
	l.mu.Unlock()
	if p != nil {
		return p.Generate(ctx)
	}
	return Answer{}, fmt.Errorf("%s could not start: %w", l.cfg.Name, err)
}

// LazyState is what a Lazy provider knows about its start.
type LazyState struct {
	Started  bool
	Starting bool      // an attempt is in progress
	Err      error     // the last failure to start; nil once started
	At       time.Time // when Err happened
	Attempts int       // failed attempts so far
	RetryAt  time.Time // when another attempt is allowed; zero when none will be made
}

// State returns the provider's start state.
func (l *Lazy) State() LazyState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LazyState{Started: l.p != nil, Starting: l.running != nil, Err: l.err,
		At: l.errAt, Attempts: l.attempts, RetryAt: l.retryAt}
}

var _ Starter = (*Lazy)(nil)
