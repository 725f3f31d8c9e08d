package appattestredis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/storetest"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// instances opens n Stores on srv, each with its own connection (as n
// instances of a service would), under one prefix.
func instances(t *testing.T, srv *redistest.Server, prefix string, n int, opts appattestredis.Options, ropts redisreplay.Options) []*appattestredis.Store {
	t.Helper()
	if ropts.Logger == nil {
		ropts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Prefix = prefix
	var out []*appattestredis.Store
	for range n {
		replay, err := redisreplay.Open(srv.URL(), ropts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replay.Close() })
		out = append(out, appattestredis.New(replay, opts))
	}
	return out
}

// The Redis stores pass the suite the memory stores pass, as two
// instances on one redis-server.
func TestRedisStores(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	prefix := func() string { return fmt.Sprintf("test%d:", n.Add(1)) }
	t.Run("keys", func(t *testing.T) {
		storetest.TestKeyStore(t, func(t *testing.T, size int) (a, b appattest.KeyStore) {
			s := instances(t, srv, prefix(), 2, appattestredis.Options{WindowSize: size}, redisreplay.Options{})
			return s[0], s[1]
		})
	})
	t.Run("challenges", func(t *testing.T) {
		storetest.TestChallengeStore(t, func(t *testing.T) (a, b appattest.ChallengeStore) {
			s := instances(t, srv, prefix(), 2, appattestredis.Options{}, redisreplay.Options{})
			return s[0], s[1]
		})
	})
}

// A Redis whose maxmemory-policy may evict fails every operation closed
// (a store failure, not a refusal), as the replay store does, unless the
// replay store accepts eviction.
func TestEvictionPolicyFailsClosed(t *testing.T) {
	srv := redistest.Start(t, "maxmemory-policy allkeys-lru")
	ctx := context.Background()
	key := storetest.NewKey(t, "T.app", appattest.Production, appattest.AppleRootName)
	s := instances(t, srv, "p:", 1, appattestredis.Options{}, redisreplay.Options{})[0]
	ops := map[string]func() error{
		"Register": func() error { _, _, err := s.Register(ctx, key, time.Now()); return err },
		"Get":      func() error { _, err := s.Get(ctx, key.ID); return err },
		"Accept":   func() error { return s.Accept(ctx, key.ID, 1, "check", time.Now()) },
		"Revoke":   func() error { return s.Revoke(ctx, key.ID, time.Now()) },
		"List":     func() error { return s.List(ctx, func(*appattest.KeyRecord) bool { return true }) },
		"Put":      func() error { return s.Put(ctx, "c", time.Minute) },
		"Take":     func() error { _, err := s.Take(ctx, "c"); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, redisreplay.ErrEvictionPolicy) || appattest.Rejected(err) {
			t.Errorf("%s = %v, want ErrEvictionPolicy", name, err)
		}
	}
	allowed := instances(t, srv, "p:", 1, appattestredis.Options{}, redisreplay.Options{AllowEviction: true})[0]
	if _, created, err := allowed.Register(ctx, key, time.Now()); err != nil || !created {
		t.Errorf("Register with eviction accepted = %v, %v", created, err)
	}
}

// A Redis that does not answer is a store failure, never a refusal: the
// caller answers 503, and no key is taken for unknown.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := instances(t, srv, "p:", 1, appattestredis.Options{}, redisreplay.Options{})[0]
	key := storetest.NewKey(t, "T.app", appattest.Production, appattest.AppleRootName)
	if _, _, err := s.Register(ctx, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for name, err := range map[string]error{
		"Accept": s.Accept(ctx, key.ID, 1, "check", time.Now()),
		"Get":    func() error { _, err := s.Get(ctx, key.ID); return err }(),
		"Take":   func() error { _, err := s.Take(ctx, "c"); return err }(),
	} {
		if err == nil || appattest.Rejected(err) {
			t.Errorf("%s with Redis down = %v, want a store failure", name, err)
		}
	}
}

// A record that is not what the store wrote (another program, a bad
// migration) is a store failure, not a refusal and not a pass.
func TestCorruptRecord(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := instances(t, srv, "p:", 1, appattestredis.Options{}, redisreplay.Options{})[0]
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DisableIdentity: true})
	defer rdb.Close()
	for _, tt := range []struct{ field, value string }{
		{"seen", "1x"}, {"seen", string(make([]byte, 65))}, {"hi", "-1"}, {"pub", "short"}, {"status", "maybe"}, {"first", "soon"},
	} {
		key := storetest.NewKey(t, "T.app", appattest.Production, appattest.AppleRootName)
		if _, _, err := s.Register(ctx, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, fmt.Sprintf("p:key:%x", key.ID), tt.field, tt.value).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, key.ID); err == nil || appattest.Rejected(err) {
			t.Errorf("%s=%q: Get = %v, want a store failure", tt.field, tt.value, err)
		}
	}
}

// An attacker with many addresses (an IPv6 /64 holds 2^64), each within
// the registration's rate of 1 a second, asked for challenges faster
// than they expired: each was a Redis key of about 166 bytes for five
// minutes, so 4,096 clients held some 200 MB, and a Redis at its
// maxmemory under noeviction refuses every write: every check, of every
// kind, on every instance, failed with 503. The store now holds at most
// Options.MaxChallenges unexpired challenges, across instances; beyond
// that Put fails (503 from the registration), and taken or expired
// challenges make room.
func TestChallengesBounded(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	const max = 50
	s := instances(t, srv, "p:", 2, appattestredis.Options{MaxChallenges: max}, redisreplay.Options{})
	for i := range max {
		if err := s[i%2].Put(ctx, fmt.Sprint("c", i), time.Minute); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	for _, inst := range s {
		if err := inst.Put(ctx, "one too many", time.Minute); !errors.Is(err, appattest.ErrStoreFull) || appattest.Rejected(err) {
			t.Fatalf("Put beyond MaxChallenges = %v, want ErrStoreFull", err)
		}
	}
	if ok, err := s[1].Take(ctx, "c7"); !ok || err != nil {
		t.Fatalf("Take = %v, %v", ok, err)
	}
	if err := s[0].Put(ctx, "in its place", time.Minute); err != nil {
		t.Fatalf("Put after a Take: %v", err)
	}
	if ok, err := s[0].Take(ctx, "c7"); ok || err != nil {
		t.Fatalf("Take again = %v, %v; want false", ok, err)
	}

	// Expired challenges make room too, by Redis's clock.
	short := instances(t, srv, "short:", 1, appattestredis.Options{MaxChallenges: 3}, redisreplay.Options{})[0]
	for i := range 3 {
		if err := short.Put(ctx, fmt.Sprint("s", i), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for range 200 {
		err := short.Put(ctx, "after expiry", time.Minute)
		if err == nil {
			return
		}
		if !errors.Is(err, appattest.ErrStoreFull) {
			t.Fatal(err)
		}
		<-tick.C
	}
	t.Fatal("challenges of 1 ms still filled the store after a second")
}
