package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// ErrReplay means the token was already presented. DeviceCheck tokens are
// meant for one use each, but Apple's server API is not documented to
// refuse a second use, so a Verifier with a ReplayCache remembers them.
var ErrReplay = errors.New("attestation token already used")

// ReplayCache remembers tokens a Verifier has accepted, so that a captured
// header cannot be sent again. Use NewMemoryReplayCache for one process;
// implement it over a shared store (e.g. Redis SET NX PX) when several
// instances serve the same clients.
type ReplayCache interface {
	// Add records key until expiry and reports whether it was new. It
	// must be atomic: of two concurrent calls with one key, one gets true.
	Add(ctx context.Context, key string, expiry time.Time) (added bool, err error)
}

// ReplayKey returns the key a Verifier gives its ReplayCache for token:
// the hex SHA-256 of the token bytes.
func ReplayKey(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:])
}

// defaultReplayWindow is how long a token is remembered when the Verifier
// sets no MaxAge.
const defaultReplayWindow = time.Hour

// MemoryReplayCache is a ReplayCache in this process's memory. Entries are
// dropped once expired, so its size follows the request rate times the
// Verifier's MaxAge.
type MemoryReplayCache struct {
	now func() time.Time

	mu        sync.Mutex
	seen      map[string]time.Time
	nextSweep time.Time
}

// NewMemoryReplayCache returns an empty in-memory ReplayCache.
func NewMemoryReplayCache() *MemoryReplayCache {
	return &MemoryReplayCache{now: time.Now, seen: map[string]time.Time{}}
}

// Add implements ReplayCache.
func (c *MemoryReplayCache) Add(_ context.Context, key string, expiry time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.After(c.nextSweep) {
		for k, exp := range c.seen {
			if !exp.After(now) {
				delete(c.seen, k)
			}
		}
		c.nextSweep = now.Add(time.Minute)
	}
	if exp, ok := c.seen[key]; ok && exp.After(now) {
		return false, nil
	}
	c.seen[key] = expiry
	return true, nil
}

// Len returns the number of tokens remembered, expired ones included until
// the next sweep.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

var _ ReplayCache = (*MemoryReplayCache)(nil)
