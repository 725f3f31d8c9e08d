package verify

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrAppleDown marks a failure to reach Apple (no answer, a 5xx, or the
// time running out) that happened while the Client's breaker counted
// Apple as down: most recent attempts to Apple, each given its whole
// AttemptTimeout, had failed. AppleDown tests for it; it is what
// MiddlewareOptions.WhenAppleDown may let through.
var ErrAppleDown = errors.New("apple is down")

// Defaults of BreakerConfig.
const (
	DefaultBreakerWindow       = 10 * time.Second
	DefaultBreakerMinFailures  = 5
	DefaultBreakerFailureRatio = 0.5
)

// BreakerConfig decides when a Client counts Apple as down. It is decided
// from Apple's behaviour across many checks, never from one request: a
// request can be made to fail by its caller (a short deadline), by a slow
// replay store that leaves Apple little time, or by an impostor on the
// path (a certificate that does not verify is an unexpected answer, not
// an outage).
//
// The breaker counts the attempts to Apple within the last Window. An
// attempt fails when it got a 5xx, or no answer (a transport error or
// its own timeout) in an attempt that had its whole AttemptTimeout, not
// one cut short by the call's deadline. Any other
// answer from Apple (a 2xx, a 4xx such as "bad device token" or 429)
// counts as a success; an unexpected answer (a redirect, a page, a TLS
// failure) counts as neither. The breaker opens once at least
// MinFailures attempts within Window failed and they were at least
// FailureRatio of all attempts counted there. It closes at the first
// success, or once fewer than MinFailures failures remain within Window.
type BreakerConfig struct {
	// Window is how far back attempts count. Zero means
	// DefaultBreakerWindow (10 s).
	Window time.Duration
	// MinFailures is how many failed attempts within Window open the
	// breaker, at least. Zero means DefaultBreakerMinFailures (5).
	MinFailures int
	// FailureRatio is the share of the attempts within Window that must
	// have failed, from 0 to 1. Zero means DefaultBreakerFailureRatio
	// (one half).
	FailureRatio float64
}

// breakerBuckets is how many slices of Window the breaker counts in.
const breakerBuckets = 10

// breaker counts recent attempts to Apple in time buckets; see
// BreakerConfig.
type breaker struct {
	window      time.Duration
	minFailures int
	ratio       float64
	now         func() time.Time

	mu      sync.Mutex
	open    bool
	buckets [breakerBuckets]breakerBucket
}

type breakerBucket struct {
	slot         int64 // which slice of time it counts, unix ns / width
	ok, failures int
}

func newBreaker(cfg BreakerConfig, now func() time.Time) *breaker {
	b := &breaker{window: cfg.Window, minFailures: cfg.MinFailures, ratio: cfg.FailureRatio, now: now}
	if b.window <= 0 {
		b.window = DefaultBreakerWindow
	}
	if b.minFailures <= 0 {
		b.minFailures = DefaultBreakerMinFailures
	}
	if b.ratio <= 0 || b.ratio > 1 {
		b.ratio = DefaultBreakerFailureRatio
	}
	return b
}

// width is the span of one bucket.
func (b *breaker) width() int64 { return max(1, int64(b.window)/breakerBuckets) }

// bucket returns the bucket for now, emptied if it counted an older slice.
func (b *breaker) bucket(now int64) *breakerBucket {
	slot := now / b.width()
	bk := &b.buckets[slot%breakerBuckets]
	if bk.slot != slot {
		*bk = breakerBucket{slot: slot}
	}
	return bk
}

// counts sums the attempts within the window ending now.
func (b *breaker) counts(now int64) (ok, failures int) {
	oldest := now/b.width() - breakerBuckets + 1
	for _, bk := range b.buckets {
		if bk.slot >= oldest {
			ok, failures = ok+bk.ok, failures+bk.failures
		}
	}
	return ok, failures
}

// success records an answer from Apple: it closes an open breaker.
func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		b.open, b.buckets = false, [breakerBuckets]breakerBucket{}
		return
	}
	b.bucket(b.now().UnixNano()).ok++
}

// failure records an attempt that had its whole time and got no answer
// or a 5xx.
func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now().UnixNano()
	b.bucket(now).failures++
	ok, failures := b.counts(now)
	if failures >= b.minFailures && float64(failures) >= b.ratio*float64(ok+failures) {
		b.open = true
	}
}

// isOpen reports whether Apple counts as down now.
func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		if _, failures := b.counts(b.now().UnixNano()); failures < b.minFailures {
			b.open = false // the evidence has aged out
		}
	}
	return b.open
}

// state describes the breaker for ErrAppleDown's message.
func (b *breaker) state() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ok, failures := b.counts(b.now().UnixNano())
	return fmt.Sprintf("%d of %d attempts in the last %v failed", failures, ok+failures, b.window)
}
