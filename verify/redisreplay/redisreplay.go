// Package redisreplay is a verify.ReplayCache in Redis (or Valkey), shared
// by every instance of a service, so that a header replayed to another
// instance is refused too.
//
// A check records its token with one atomic command, SET key ID NX PX
// ttl, where ID is the check's own random id: the key is new (the token
// was not seen) or it is not, and Redis's own clock expires it. Extending
// the record (once the token may be admitted) and removing it (when the
// check admitted nothing) are scripts that touch the key only while its
// value is still that ID, so no check, of this instance or another,
// extends or deletes a record another made.
// When Redis cannot answer, Add returns the error and the check fails
// closed (verify.ErrReplayStore: 503 from the middleware, "could not
// check" from attestd verify), unless Options.Fallback names a local
// cache to use meanwhile.
//
// Redis must not evict the records: when a Store first connects it reads
// every master's maxmemory-policy (INFO memory), and a policy other than
// noeviction fails every check closed with an *EvictionError naming it
// and the fix, unless Options.AllowEviction accepts the risk. Health
// reads it again for a readiness check.
//
// Open (one server) and OpenMode (one server, a Cluster, or a master
// found through Sentinel) take a URL and make a client with the settings
// this needs; New takes a client of your own:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true, MaxRetries: -1})
//	v := &verify.Verifier{Client: apple, Replays: redisreplay.New(rdb, redisreplay.Options{})}
package redisreplay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify"
)

// DefaultPrefix is put before every key when Options.Prefix is empty.
const DefaultPrefix = "attestd:replay:"

// Options configures a Store.
type Options struct {
	// Prefix is put before every key, so several services can share one
	// Redis. Empty means DefaultPrefix. Instances that must refuse each
	// other's replays need the same prefix.
	Prefix string
	// Fallback, when set, answers while Redis does not: each instance
	// then refuses only the replays it saw itself. Nil, the default,
	// fails the check closed instead.
	Fallback verify.ReplayCache
	// OnError, when set, is called with every error from Redis, whether
	// or not Fallback then answered (for a log line or an alert).
	OnError func(error)
	// AllowEviction accepts a Redis whose maxmemory-policy may evict
	// replay records (any policy but noeviction). By default every check
	// fails closed with an *EvictionError on such a Redis: forged tokens
	// can fill its memory, and a real token whose record was evicted is
	// accepted again.
	AllowEviction bool
	// Logger receives the Store's warnings (a policy that could not be
	// read, or eviction accepted); nil means slog.Default().
	Logger *slog.Logger
}

// Store is a verify.ReplayCache in Redis. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	opts   Options
	owned  bool // Close closes rdb
	policy policyState
}

// New returns a Store using rdb. Set ContextTimeoutEnabled on rdb's
// options, so a check's deadline bounds its Redis command, and MaxRetries
// to -1: a SET NX retried after a lost answer finds its own key and calls
// a fresh token a replay. Close does not close rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, opts: opts, policy: policyState{now: time.Now}}
}

// Open connects to the one Redis server at rawURL
// (redis://[user:password@]host:port/db, rediss:// for TLS, or
// unix:///path/to/socket) with the settings New asks for, and one dial
// attempt per command, so that a Redis that is down fails a check at
// once. It does not dial: the first check does. Close closes the
// connection. Its errors never repeat the URL, which may carry a
// password. OpenMode connects to a Cluster or through Sentinel.
func Open(rawURL string, opts Options) (*Store, error) {
	return OpenMode(rawURL, Single, opts)
}

// Add implements verify.ReplayCache with SET key id NX PX ttl.
func (s *Store) Add(ctx context.Context, key, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redis replay store: ttl %v is not positive", ttl)
	}
	if err := s.checkPolicy(ctx); err != nil {
		return false, s.failed(err) // a misconfigured Redis: no fallback
	}
	err := s.rdb.Do(ctx, "SET", s.opts.Prefix+key, id, "PX", millis(ttl), "NX").Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	err = s.failed(err)
	if s.opts.Fallback != nil {
		return s.opts.Fallback.Add(ctx, key, id, ttl)
	}
	return false, err
}

// millis is ttl in whole milliseconds, at least one.
func millis(ttl time.Duration) int64 { return max(1, ttl.Milliseconds()) }

// extendOwn sets KEYS[1] to expire in ARGV[2] ms only if its value is
// ARGV[1].
var extendOwn = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// Extend implements verify.ReplayCache: it extends key's record only
// while its value is id, in one atomic script. A record that is gone
// (expired, evicted) or another's is verify.ErrRecordLost; when Add went
// to Fallback, Fallback's record is extended instead.
func (s *Store) Extend(ctx context.Context, key, id string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis replay store: ttl %v is not positive", ttl)
	}
	n, err := extendOwn.Run(ctx, s.rdb, []string{s.opts.Prefix + key}, id, millis(ttl)).Int()
	switch {
	case err == nil && n == 1:
		return nil
	case err != nil:
		err = s.failed(err)
	default:
		err = fmt.Errorf("redis replay store: %w", verify.ErrRecordLost)
	}
	if s.opts.Fallback != nil {
		return s.opts.Fallback.Extend(ctx, key, id, ttl)
	}
	return err
}

// removeOwn deletes KEYS[1] only if its value is ARGV[1].
var removeOwn = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Remove implements verify.ReplayCache: it deletes key only while its
// value is id, in one atomic script, so it never erases the record
// another check made of the same token (and perhaps let through): not
// one of another instance, nor of this one, nor one made while this
// check's Add went to Fallback.
func (s *Store) Remove(ctx context.Context, key, id string) error {
	err := removeOwn.Run(ctx, s.rdb, []string{s.opts.Prefix + key}, id).Err()
	if s.opts.Fallback != nil {
		s.opts.Fallback.Remove(ctx, key, id)
	}
	if err != nil {
		return s.failed(err)
	}
	return nil
}

// failed wraps an error from Redis and reports it to OnError.
func (s *Store) failed(err error) error {
	err = fmt.Errorf("redis replay store: %w", err)
	if s.opts.OnError != nil {
		s.opts.OnError(err)
	}
	return err
}

// Close closes the connection Open made; for a Store from New it does
// nothing.
func (s *Store) Close() error {
	if s.owned {
		return s.rdb.Close()
	}
	return nil
}

var _ verify.ReplayCache = (*Store)(nil)
