// Package redisreplay is a verify.ReplayCache in Redis (or Valkey), shared
// by every instance of a service, so that a header replayed to another
// instance is refused too.
//
// Each check is one atomic command, SET key ID NX PX ttl: the key is new
// (the token was not seen) or it is not, and Redis's own clock expires it.
// When Redis cannot answer, Add returns the error and the check fails
// closed (verify.ErrReplayStore: 503 from the middleware, "could not
// check" from attestd verify), unless Options.Fallback names a local
// cache to use meanwhile.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true, MaxRetries: -1})
//	v := &verify.Verifier{Client: apple, Replays: redisreplay.New(rdb, redisreplay.Options{})}
package redisreplay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
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
}

// Store is a verify.ReplayCache in Redis. It is safe for concurrent use.
type Store struct {
	rdb   redis.UniversalClient
	opts  Options
	owned bool   // Close closes rdb
	id    string // the value of the keys this Store sets, so Remove deletes only its own
}

// New returns a Store using rdb. Set ContextTimeoutEnabled on rdb's
// options, so a check's deadline bounds its Redis command, and MaxRetries
// to -1: a SET NX retried after a lost answer finds its own key and calls
// a fresh token a replay. Close does not close rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, opts: opts, id: rand.Text()}
}

// Open connects to the Redis at rawURL (redis://[user:password@]host:port/db,
// rediss:// for TLS, or unix:///path/to/socket) with the settings New
// asks for, and one dial attempt per command, so that a Redis that is
// down fails a check at once. It does not dial: the first check does.
// Close closes the connection. Its errors never repeat the URL, which
// may carry a password.
func Open(rawURL string, opts Options) (*Store, error) {
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("bad URL: %w", ue.Err)
		}
		return nil, fmt.Errorf("redis replay store: %w", err)
	}
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = -1
	ro.DialerRetries = 1      // Redis down fails the check now, not after 5 redials
	ro.DisableIdentity = true // CLIENT SETINFO is unknown before Redis 7.2
	s := New(redis.NewClient(ro), opts)
	s.owned = true
	return s, nil
}

// Add implements verify.ReplayCache with SET key ID NX PX ttl, where ID
// is this Store's own random identifier.
func (s *Store) Add(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redis replay store: ttl %v is not positive", ttl)
	}
	ms := max(1, ttl.Milliseconds())
	err := s.rdb.Do(ctx, "SET", s.opts.Prefix+key, s.id, "PX", ms, "NX").Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	err = fmt.Errorf("redis replay store: %w", err)
	if s.opts.OnError != nil {
		s.opts.OnError(err)
	}
	if s.opts.Fallback != nil {
		return s.opts.Fallback.Add(ctx, key, ttl)
	}
	return false, err
}

// removeOwn deletes KEYS[1] only if its value is ARGV[1].
var removeOwn = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Remove implements verify.ReplayCache: it deletes key only if this Store
// set it, in one atomic script. A Verifier removes a token it recorded
// when Apple gave no verdict; if this Store's Add had fallen back to
// Fallback meanwhile while another instance recorded the token in Redis
// (and perhaps let it through), a plain DEL would erase that instance's
// record and let the header pass again.
func (s *Store) Remove(ctx context.Context, key string) error {
	err := removeOwn.Run(ctx, s.rdb, []string{s.opts.Prefix + key}, s.id).Err()
	if s.opts.Fallback != nil {
		s.opts.Fallback.Remove(ctx, key)
	}
	if err != nil {
		err = fmt.Errorf("redis replay store: %w", err)
		if s.opts.OnError != nil {
			s.opts.OnError(err)
		}
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
