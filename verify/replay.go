package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
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
	// token was seen before (unreachable, failing, full or misconfigured),
	// or could not keep its record for the whole window. The check fails
	// closed: the attestation is not valid, and it is an outage (503),
	// not a rejection. The store's own error is wrapped too.
	ErrReplayStore = errors.New("replay store failed")
	// ErrReplayCacheFull is the error of a MemoryReplayCache holding
	// MaxEntries unexpired tokens. It is wrapped in ErrReplayStore.
	ErrReplayCacheFull = errors.New("replay cache full")
	// ErrRecordLost is the error of ReplayCache.Extend when the record is
	// no longer the one Add made: expired, evicted, removed, or made by
	// another check. It is wrapped in ErrReplayStore.
	ErrRecordLost = errors.New("replay record lost")
)

// ReplayCache remembers the tokens a Verifier has seen, so that a captured
// header cannot be sent again. MemoryReplayCache serves one process;
// package redisreplay provides one shared by every instance of a service.
//
// Each check makes its own record under an id of its own (a random
// string), so that it extends or removes only what it recorded, never
// the record another check (in this process or another) made of the same
// token. A Verifier records a token before asking Apple, for a short
// time; extends the record to the whole replay window once the token may
// be admitted (Apple said yes, or a policy lets it through without
// Apple's verdict), before answering; leaves the short record of a token
// Apple refused; and removes the record of a check that admitted nothing
// without Apple's verdict, or whose Add's outcome is unknown.
type ReplayCache interface {
	// Add records key under id for ttl, measured on the store's own
	// clock, and reports whether it was new (not recorded, or recorded
	// but expired). It must be atomic: of two concurrent calls with one
	// key, at most one gets true. An error means the outcome is unknown:
	// the record may have been made.
	Add(ctx context.Context, key, id string, ttl time.Duration) (added bool, err error)
	// Extend makes key's record expire ttl from now, if it is still the
	// record Add made under id; otherwise it returns an error wrapping
	// ErrRecordLost.
	Extend(ctx context.Context, key, id string, ttl time.Duration) error
	// Remove deletes key's record if it is the one Add made under id,
	// and does nothing otherwise.
	Remove(ctx context.Context, key, id string) error
}

// ReplayKey returns the key a Verifier gives its ReplayCache for token:
// the hex SHA-256 of the token bytes. The key depends on the token alone,
// not on the rest of the header (g, b and m are the client's to choose),
// so a token re-encoded with a fresh generation time is still a replay.
// An App Attest value (kind "aa"), whose assertion bytes can be changed
// without breaking its signature, is recorded under ReplayKey of
// "attestd-aa-spent:" followed by its clientDataHash
// (header.AppAttestClientDataHash), which the signature covers.
func ReplayKey(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:])
}

// DefaultMaxReplayEntries bounds a MemoryReplayCache whose MaxEntries is
// zero: about 74 MiB at the measured cost of an entry (see BENCHMARKS.md).
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
// is a fixed-size hash of its key, a hash of its record's id and an
// expiry, whatever the key's length, so MaxEntries bounds its memory.
// Expired entries are dropped as it goes. When it holds MaxEntries
// unexpired tokens, Add fails with ErrReplayCacheFull rather than forget
// a token early: the check fails closed.
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
	idSeed    maphash.Seed
	shards    [replayShards]replayShard
}

type replayShard struct {
	mu        sync.Mutex
	seen      map[[sha256.Size]byte]replayEntry // key hash → entry
	nextSweep int64
}

// replayEntry is one record: when it expires (unix ns; the largest value
// never) and a hash of the id its Add gave it.
type replayEntry struct {
	expiry int64
	id     uint64
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
		c.idSeed = maphash.MakeSeed()
		for i := range c.shards {
			c.shards[i].seen = map[[sha256.Size]byte]replayEntry{}
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

// locate returns key's hash, its shard and the hash of id.
func (c *MemoryReplayCache) locate(key, id string) ([sha256.Size]byte, *replayShard, uint64) {
	c.init()
	k := sha256.Sum256([]byte(key))
	return k, &c.shards[k[0]%replayShards], maphash.String(c.idSeed, id)
}

// Add implements ReplayCache.
func (c *MemoryReplayCache) Add(_ context.Context, key, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("replay cache: ttl %v is not positive", ttl)
	}
	k, sh, idHash := c.locate(key, id)
	now := c.clock()
	e := replayEntry{expiry: int64(addSat(time.Duration(now), ttl)), id: idHash} // the largest: never
	added, full := sh.add(k, now, e, c)
	if full && c.sweepAll(now) {
		added, full = sh.add(k, now, e, c)
	}
	if full {
		return false, fmt.Errorf("%w: %d unexpired tokens", ErrReplayCacheFull, c.max())
	}
	return added, nil
}

// add records k in the shard unless it is there unexpired; full reports
// that the cache had no room.
func (sh *replayShard) add(k [sha256.Size]byte, now int64, e replayEntry, c *MemoryReplayCache) (added, full bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now >= sh.nextSweep {
		sh.sweep(now, c)
		sh.nextSweep = now + int64(sweepEvery)
	}
	old, ok := sh.seen[k]
	switch {
	case ok && old.expiry > now:
		return false, false
	case !ok && !c.reserve():
		return false, true
	}
	sh.seen[k] = e
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
	for k, e := range sh.seen {
		if e.expiry <= now {
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

// Extend implements ReplayCache.
func (c *MemoryReplayCache) Extend(_ context.Context, key, id string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("replay cache: ttl %v is not positive", ttl)
	}
	k, sh, idHash := c.locate(key, id)
	now := c.clock()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.seen[k]
	if !ok || e.id != idHash || e.expiry <= now {
		return fmt.Errorf("replay cache: %w", ErrRecordLost)
	}
	e.expiry = int64(addSat(time.Duration(now), ttl))
	sh.seen[k] = e
	return nil
}

// Remove implements ReplayCache.
func (c *MemoryReplayCache) Remove(_ context.Context, key, id string) error {
	k, sh, idHash := c.locate(key, id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.seen[k]; ok && e.id == idHash {
		delete(sh.seen, k)
		c.count.Add(-1)
	}
	return nil
}

// Len returns the number of tokens remembered, expired ones included until
// they are swept.
func (c *MemoryReplayCache) Len() int { return int(c.count.Load()) }

var _ ReplayCache = (*MemoryReplayCache)(nil)
