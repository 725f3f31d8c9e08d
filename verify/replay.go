package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the replay check. Test with errors.Is.
var (
	// ErrReplay means the token was already presented. DeviceCheck tokens
	// are meant for one use each, but Apple's server API is not documented
	// to refuse a second use, so a Verifier remembers them.
	ErrReplay = errors.New("attestation token already used")
	// ErrReplayStore means the replay store could not say whether the
	// token was seen before (unreachable, failing, or full). The check
	// fails closed: the attestation is not valid, and it is an outage
	// (503), not a rejection. The store's own error is wrapped too.
	ErrReplayStore = errors.New("replay store failed")
	// ErrReplayCacheFull is the error of a MemoryReplayCache holding
	// MaxEntries unexpired tokens. It is wrapped in ErrReplayStore.
	ErrReplayCacheFull = errors.New("replay cache full")
)

// ReplayCache remembers the tokens a Verifier has seen, so that a captured
// header cannot be sent again. MemoryReplayCache serves one process;
// package redisreplay provides one shared by every instance of a service.
type ReplayCache interface {
	// Add records key for ttl, measured on the store's own clock, and
	// reports whether it was new (not recorded, or recorded but expired).
	// It must be atomic: of two concurrent calls with one key, at most one
	// gets true.
	Add(ctx context.Context, key string, ttl time.Duration) (added bool, err error)
	// Remove forgets key. A Verifier calls it for a token it recorded
	// when the check then ended without Apple's verdict (our own limit,
	// Apple down, the caller gone): that token admitted nothing, so a
	// retry is checked again and a flood of such tokens takes no room. A
	// store shared by several instances deletes only a record its own Add
	// made, never another instance's.
	Remove(ctx context.Context, key string) error
}

// ReplayKey returns the key a Verifier gives its ReplayCache for token:
// the hex SHA-256 of the token bytes. The key depends on the token alone,
// not on the rest of the header (g, b and m are the client's to choose),
// so a token re-encoded with a fresh generation time is still a replay.
func ReplayKey(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:])
}

// DefaultMaxReplayEntries bounds a MemoryReplayCache whose MaxEntries is
// zero: about 64 MiB at the measured cost of an entry (see BENCHMARKS.md).
// A Client's default rate limit (100 calls a second) over the default
// one-hour window keeps at most 360,000 tokens.
const DefaultMaxReplayEntries = 1 << 20

const (
	replayShards = 16
	// sweepEvery is how often each shard drops its expired entries.
	sweepEvery = time.Minute
	// fullSweepEvery is how often a full cache sweeps every shard before
	// refusing a token.
	fullSweepEvery = time.Second
)

// MemoryReplayCache is a ReplayCache in this process's memory. Each entry
// is a fixed-size hash of its key and an expiry, whatever the key's
// length, so MaxEntries bounds its memory. Expired entries are dropped as
// it goes. When it holds MaxEntries unexpired tokens, Add fails with
// ErrReplayCacheFull rather than forget a token early: the check fails
// closed.
//
// The zero value is ready to use; its fields must not change after the
// first Add.
type MemoryReplayCache struct {
	// MaxEntries bounds the tokens remembered. Zero means
	// DefaultMaxReplayEntries.
	MaxEntries int

	now       func() time.Time // seam for tests; nil means time.Now
	count     atomic.Int64
	lastFull  atomic.Int64 // unix ns of the last sweep of a full cache
	shardOnce sync.Once
	shards    [replayShards]replayShard
}

type replayShard struct {
	mu        sync.Mutex
	seen      map[[sha256.Size]byte]int64 // key hash → expiry, unix ns
	nextSweep int64
}

// NewMemoryReplayCache returns an empty in-memory ReplayCache with the
// default bound; it is the same as new(MemoryReplayCache).
func NewMemoryReplayCache() *MemoryReplayCache { return new(MemoryReplayCache) }

// defaultReplays is the cache of every Verifier that sets neither Replays
// nor AllowReplays: one per process, so that a token seen by one such
// Verifier is a replay for all.
var defaultReplays = sync.OnceValue(NewMemoryReplayCache)

func (c *MemoryReplayCache) init() {
	c.shardOnce.Do(func() {
		for i := range c.shards {
			c.shards[i].seen = map[[sha256.Size]byte]int64{}
		}
	})
}

func (c *MemoryReplayCache) clock() int64 {
	if c.now != nil {
		return c.now().UnixNano()
	}
	return time.Now().UnixNano()
}

func (c *MemoryReplayCache) max() int64 {
	if c.MaxEntries > 0 {
		return int64(c.MaxEntries)
	}
	return DefaultMaxReplayEntries
}

// Add implements ReplayCache.
func (c *MemoryReplayCache) Add(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("replay cache: ttl %v is not positive", ttl)
	}
	c.init()
	k := sha256.Sum256([]byte(key))
	sh := &c.shards[k[0]%replayShards]
	now := c.clock()
	expiry := int64(addSat(time.Duration(now), ttl)) // the largest: never
	added, full := sh.add(k, now, expiry, c)
	if full && c.sweepAll(now) {
		added, full = sh.add(k, now, expiry, c)
	}
	if full {
		return false, fmt.Errorf("%w: %d unexpired tokens", ErrReplayCacheFull, c.max())
	}
	return added, nil
}

// add records k in the shard unless it is there unexpired; full reports
// that the cache had no room.
func (sh *replayShard) add(k [sha256.Size]byte, now, expiry int64, c *MemoryReplayCache) (added, full bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now >= sh.nextSweep {
		sh.sweep(now, c)
		sh.nextSweep = now + int64(sweepEvery)
	}
	exp, ok := sh.seen[k]
	switch {
	case ok && exp > now:
		return false, false
	case !ok && !c.reserve():
		return false, true
	}
	sh.seen[k] = expiry
	return true, false
}

// reserve counts one more entry if there is room for it.
func (c *MemoryReplayCache) reserve() bool {
	for {
		n := c.count.Load()
		if n >= c.max() {
			return false
		}
		if c.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// sweep drops expired entries; sh.mu must be held.
func (sh *replayShard) sweep(now int64, c *MemoryReplayCache) {
	for k, exp := range sh.seen {
		if exp <= now {
			delete(sh.seen, k)
			c.count.Add(-1)
		}
	}
}

// sweepAll sweeps every shard, at most once per fullSweepEvery, and
// reports whether it did.
func (c *MemoryReplayCache) sweepAll(now int64) bool {
	last := c.lastFull.Load()
	if now-last < int64(fullSweepEvery) || !c.lastFull.CompareAndSwap(last, now) {
		return false
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.sweep(now, c)
		sh.mu.Unlock()
	}
	return true
}

// Remove implements ReplayCache.
func (c *MemoryReplayCache) Remove(_ context.Context, key string) error {
	c.init()
	k := sha256.Sum256([]byte(key))
	sh := &c.shards[k[0]%replayShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.seen[k]; ok {
		delete(sh.seen, k)
		c.count.Add(-1)
	}
	return nil
}

// Len returns the number of tokens remembered, expired ones included until
// they are swept.
func (c *MemoryReplayCache) Len() int { return int(c.count.Load()) }

var _ ReplayCache = (*MemoryReplayCache)(nil)
