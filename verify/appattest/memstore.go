package appattest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxKeys bounds a MemoryKeyStore whose MaxKeys is zero.
const DefaultMaxKeys = 1 << 20

// keyShards spreads a MemoryKeyStore's keys over locks, so that
// assertions of different keys rarely wait for each other.
const keyShards = 16

// MemoryKeyStore is a KeyStore in this process's memory, for one
// instance (or tests): a restart forgets every key, and the apps
// register again. Each key's Window is applied under its shard's lock.
// The zero value is ready to use; its fields must not change after
// first use.
type MemoryKeyStore struct {
	// WindowSize is the counter window's width (see Window.Accept): zero
	// means DefaultWindowSize.
	WindowSize int
	// MaxKeys bounds the keys kept; Register fails with ErrStoreFull
	// beyond it. Zero means DefaultMaxKeys.
	MaxKeys int

	once   sync.Once
	mu     sync.Mutex // guards count
	count  int
	shards [keyShards]keyShard
}

type keyShard struct {
	mu   sync.Mutex
	keys map[[32]byte]*KeyRecord
	// last is each key's latest accept, for Release.
	last map[[32]byte]lastAccept
}

// lastAccept is a key's latest accepted counter: the check that made it
// and the Window before it.
type lastAccept struct {
	check string
	prev  Window
}

var _ KeyStore = (*MemoryKeyStore)(nil)

func (s *MemoryKeyStore) shard(id []byte) (*keyShard, [32]byte, error) {
	s.once.Do(func() {
		for i := range s.shards {
			s.shards[i].keys = map[[32]byte]*KeyRecord{}
			s.shards[i].last = map[[32]byte]lastAccept{}
		}
	})
	var k [32]byte
	if len(id) != len(k) {
		return nil, k, refuse(ErrUnknownKey, nil, "a key id of %d bytes names no key", len(id))
	}
	copy(k[:], id)
	return &s.shards[k[0]%keyShards], k, nil
}

// Register implements KeyStore.
func (s *MemoryKeyStore) Register(_ context.Context, key *Key, now time.Time) (*KeyRecord, bool, error) {
	if err := key.Storable(); err != nil {
		return nil, false, err
	}
	sh, k, err := s.shard(key.ID)
	if err != nil {
		return nil, false, err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r, ok := sh.keys[k]; ok {
		switch {
		case r.Status == KeyRevoked:
			return nil, false, revoked()
		case !sameKey(r, key):
			return nil, false, conflict()
		}
		r.Receipt, r.LastSeen = bytes.Clone(key.Receipt), now
		return r.clone(), false, nil
	}
	if !s.reserve() {
		return nil, false, fmt.Errorf("appattest: memory key store: %w: %d keys", ErrStoreFull, s.maxKeys())
	}
	r := &KeyRecord{ID: bytes.Clone(key.ID), PublicKey: key.PublicKey, AppID: key.AppID, Environment: key.Environment,
		Root: key.Root, Receipt: bytes.Clone(key.Receipt), KeyPolicy: bytes.Clone(key.KeyPolicy),
		Status: KeyActive, FirstSeen: now, LastSeen: now}
	sh.keys[k] = r
	return r.clone(), true, nil
}

func (s *MemoryKeyStore) maxKeys() int {
	if s.MaxKeys > 0 {
		return s.MaxKeys
	}
	return DefaultMaxKeys
}

// reserve counts one more key if the bound allows it.
func (s *MemoryKeyStore) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count >= s.maxKeys() {
		return false
	}
	s.count++
	return true
}

// Get implements KeyStore.
func (s *MemoryKeyStore) Get(_ context.Context, id []byte) (*KeyRecord, error) {
	sh, k, err := s.shard(id)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.keys[k]
	if !ok {
		return nil, unknown()
	}
	return r.clone(), nil
}

// Accept implements KeyStore.
func (s *MemoryKeyStore) Accept(_ context.Context, id []byte, counter uint32, check string, now time.Time) error {
	sh, k, err := s.shard(id)
	if err != nil {
		return err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.keys[k]
	switch {
	case !ok:
		return unknown()
	case r.Status == KeyRevoked:
		return revoked()
	}
	prev := r.Window
	if err := r.Window.Accept(counter, s.WindowSize); err != nil {
		return err
	}
	sh.last[k] = lastAccept{check: check, prev: prev}
	r.LastSeen = now
	return nil
}

// Release implements KeyStore.
func (s *MemoryKeyStore) Release(_ context.Context, id []byte, check string) (bool, error) {
	sh, k, err := s.shard(id)
	if err != nil {
		return false, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	last, ok := sh.last[k]
	r := sh.keys[k]
	if !ok || r == nil || check == "" || last.check != check {
		return false, nil
	}
	r.Window = last.prev
	delete(sh.last, k)
	return true, nil
}

// Revoke implements KeyStore.
func (s *MemoryKeyStore) Revoke(_ context.Context, id []byte, now time.Time) error {
	sh, k, err := s.shard(id)
	if err != nil {
		return err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.keys[k]
	if !ok {
		return unknown()
	}
	if r.Status != KeyRevoked {
		r.Status, r.RevokedAt = KeyRevoked, now
	}
	return nil
}

// List implements KeyStore. Records are copied shard by shard; one
// registered meanwhile may or may not be listed.
func (s *MemoryKeyStore) List(ctx context.Context, yield func(*KeyRecord) bool) error {
	s.shard(make([]byte, 32)) // make the maps
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		recs := make([]*KeyRecord, 0, len(sh.keys))
		for _, r := range sh.keys {
			recs = append(recs, r.clone())
		}
		sh.mu.Unlock()
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !yield(r) {
				return nil
			}
		}
	}
	return nil
}

// clone copies a record, so that callers never share the store's.
func (r *KeyRecord) clone() *KeyRecord {
	c := *r
	c.ID, c.Receipt, c.KeyPolicy = bytes.Clone(r.ID), bytes.Clone(r.Receipt), bytes.Clone(r.KeyPolicy)
	return &c
}

// DefaultMaxChallenges bounds a MemoryChallengeStore whose MaxEntries is
// zero.
const DefaultMaxChallenges = 1 << 16

// MemoryChallengeStore is a ChallengeStore in this process's memory:
// only the instance that issued a challenge can take its registration.
// Expired challenges are dropped as it goes; when it holds MaxEntries
// unexpired ones, Put fails with ErrStoreFull. The zero value is ready
// to use.
type MemoryChallengeStore struct {
	// MaxEntries bounds the challenges kept. Zero means
	// DefaultMaxChallenges.
	MaxEntries int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	issued    map[string]time.Time // challenge → expiry
	nextSweep time.Time            // the next sweep of expired challenges
	lastFull  time.Time            // the last sweep because the store was full
}

var _ ChallengeStore = (*MemoryChallengeStore)(nil)

func (s *MemoryChallengeStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Put implements ChallengeStore.
func (s *MemoryChallengeStore) Put(_ context.Context, challenge string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("appattest: challenge ttl %v is not positive", ttl)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil {
		s.issued = map[string]time.Time{}
	}
	max := s.MaxEntries
	if max <= 0 {
		max = DefaultMaxChallenges
	}
	full := len(s.issued) >= max
	if !now.Before(s.nextSweep) || (full && now.Sub(s.lastFull) >= time.Second) {
		for c, exp := range s.issued {
			if !now.Before(exp) {
				delete(s.issued, c)
			}
		}
		s.nextSweep = now.Add(time.Minute)
		if full {
			s.lastFull = now
		}
	}
	if len(s.issued) >= max {
		return fmt.Errorf("appattest: memory challenge store: %w: %d unexpired challenges", ErrStoreFull, max)
	}
	s.issued[challenge] = now.Add(ttl)
	return nil
}

// Take implements ChallengeStore.
func (s *MemoryChallengeStore) Take(_ context.Context, challenge string) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.issued[challenge]
	if !ok {
		return false, nil
	}
	delete(s.issued, challenge)
	return now.Before(exp), nil
}
