package redisreplay

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, srv *redistest.Server, opts Options) *Store {
	t.Helper()
	s, err := Open(srv.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	key := verify.ReplayKey([]byte("token"))

	if ok, err := s.Add(ctx, key, "first", time.Hour); !ok || err != nil {
		t.Fatalf("first Add = %v, %v", ok, err)
	}
	if ok, err := s.Add(ctx, key, "second", time.Hour); ok || err != nil {
		t.Fatalf("second Add = %v, %v; want false: a replay", ok, err)
	}
	// Redis holds the key under the prefix, with Redis's own expiry.
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DisableIdentity: true})
	defer rdb.Close()
	pttl, err := rdb.PTTL(ctx, DefaultPrefix+key).Result()
	if err != nil || pttl <= 59*time.Minute || pttl > time.Hour {
		t.Errorf("PTTL %v, %v; want just under an hour", pttl, err)
	}
	if ms := 1500 * time.Millisecond; true {
		s.Add(ctx, "ms", "id", ms)
		if pttl, _ := rdb.PTTL(ctx, DefaultPrefix+"ms").Result(); pttl <= time.Second || pttl > ms {
			t.Errorf("PTTL %v for a 1.5 s ttl: PX keeps milliseconds", pttl)
		}
	}
	if err := s.Remove(ctx, key, "second"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Add(ctx, key, "third", time.Hour); ok {
		t.Errorf("Add after removing another's record succeeded: the first record was deleted")
	}
	if err := s.Remove(ctx, key, "first"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Add(ctx, key, "third", time.Hour); !ok || err != nil {
		t.Errorf("Add after Remove = %v, %v", ok, err)
	}
	// Extend moves the expiry of its own record only.
	if err := s.Extend(ctx, "ms", "id", time.Hour); err != nil {
		t.Errorf("Extend of its own record: %v", err)
	}
	if pttl, _ := rdb.PTTL(ctx, DefaultPrefix+"ms").Result(); pttl <= 59*time.Minute {
		t.Errorf("PTTL %v after Extend to an hour", pttl)
	}
	for _, tt := range []struct{ key, id string }{{"ms", "another check"}, {"never recorded", "id"}} {
		if err := s.Extend(ctx, tt.key, tt.id, time.Hour); !errors.Is(err, verify.ErrRecordLost) {
			t.Errorf("Extend(%q, %q) = %v, want ErrRecordLost", tt.key, tt.id, err)
		}
	}
	// Another prefix is another namespace.
	other := open(t, srv, Options{Prefix: "other-service:"})
	if ok, err := other.Add(ctx, key, "other", time.Hour); !ok || err != nil {
		t.Errorf("Add under another prefix = %v, %v", ok, err)
	}
	if _, err := s.Add(ctx, key, "id", 0); err == nil {
		t.Error("Add with ttl 0 succeeded")
	}
	// The largest durations are kept as long as Redis can: a window of
	// 2,190,000 hours does not overflow into an expired record.
	for _, ttl := range []time.Duration{2190000 * time.Hour, math.MaxInt64} {
		k := verify.ReplayKey([]byte(ttl.String()))
		if ok, err := s.Add(ctx, k, "a", ttl); !ok || err != nil {
			t.Fatalf("Add(%v) = %v, %v", ttl, ok, err)
		}
		if ok, err := s.Add(ctx, k, "b", ttl); ok || err != nil {
			t.Errorf("second Add(%v) = %v, %v; want a replay", ttl, ok, err)
		}
		if pttl, err := rdb.PTTL(ctx, DefaultPrefix+k).Result(); err != nil || pttl < ttl-time.Minute {
			t.Errorf("PTTL %v, %v for a ttl of %v", pttl, err, ttl)
		}
	}
}

// Many instances, one Redis: of concurrent uses of one token across
// instances, exactly one is accepted.
func TestInstancesShareOneRedis(t *testing.T) {
	srv := redistest.Start(t)
	instances := []*Store{open(t, srv, Options{}), open(t, srv, Options{}), open(t, srv, Options{})}
	var added atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := instances[i%3].Add(context.Background(), verify.ReplayKey([]byte("shared")), strconv.Itoa(i), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				added.Add(1)
			}
		}()
	}
	wg.Wait()
	if added.Load() != 1 {
		t.Errorf("%d of 30 concurrent uses accepted, want 1", added.Load())
	}
}

// Two Verifiers, as two instances of a service would run them: a header
// accepted by one is a replay for the other, even re-encoded with a fresh
// generation time.
func TestVerifiersRefuseEachOthersReplays(t *testing.T) {
	srv := redistest.Start(t)
	a := &verify.Verifier{AllowDev: true, Replays: open(t, srv, Options{})}
	b := &verify.Verifier{AllowDev: true, Replays: open(t, srv, Options{})}
	token := []byte("captured on the way to instance a")
	enc := func(g time.Time) string {
		v, err := header.Encode(header.Value{Kind: header.KindDev, Token: token, GeneratedAt: g})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ctx := context.Background()
	if _, err := a.Verify(ctx, enc(time.Now())); err != nil {
		t.Fatalf("instance a: %v", err)
	}
	if _, err := b.Verify(ctx, enc(time.Now().Add(time.Second))); !errors.Is(err, verify.ErrReplay) {
		t.Errorf("instance b, same token with a fresh g: %v, want a replay", err)
	}
}

// With Redis gone, the check fails closed, with a reason that says so;
// with a Fallback it goes on with the local cache, and says what failed.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	var failures atomic.Int32
	closed := open(t, srv, Options{OnError: func(error) { failures.Add(1) }})
	degraded := open(t, srv, Options{Fallback: verify.NewMemoryReplayCache(), OnError: func(error) { failures.Add(1) }})
	srv.Stop()

	ctx := context.Background()
	_, err := closed.Add(ctx, "k", "id", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "redis replay store") {
		t.Fatalf("Add with Redis stopped: %v", err)
	}
	v := &verify.Verifier{AllowDev: true, Replays: closed}
	value, _ := header.Encode(header.Value{Kind: header.KindDev, Token: []byte("t"), GeneratedAt: time.Now()})
	res, err := v.Verify(ctx, value)
	if res == nil || res.Valid || !errors.Is(err, verify.ErrReplayStore) || verify.Reason(err) != "replay_store" || verify.Rejected(err) {
		t.Errorf("Verify with Redis stopped: %v, %v", res, err)
	}

	if ok, err := degraded.Add(ctx, "k", "one", time.Minute); !ok || err != nil {
		t.Errorf("Add with a fallback = %v, %v", ok, err)
	}
	if ok, err := degraded.Add(ctx, "k", "two", time.Minute); ok || err != nil {
		t.Errorf("second Add with a fallback = %v, %v; want the fallback's replay", ok, err)
	}
	if err := degraded.Extend(ctx, "k", "one", time.Hour); err != nil {
		t.Errorf("Extend with a fallback = %v", err)
	}
	// closed: an Add, then a check's Add and the Remove of what it may
	// have recorded; degraded: two Adds and an Extend.
	if failures.Load() != 6 {
		t.Errorf("OnError called %d times, want 6", failures.Load())
	}
}

func TestOpenRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "http://x", "redis://host:port:extra", "redis://:pw-secret@127.0.0.1:notaport/0"} {
		s, err := Open(u, Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("Open(%q): %v: the error shows the password", u, err)
		}
	}
}

// Remove deletes only what its own check recorded: never the record
// another instance made of the same token, nor one another check of the
// same instance made (item 6 of issue 20: one id per Store let two
// requests for one token in one process delete each other's record).
func TestRemoveLeavesAnotherChecksRecord(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv, Options{}), open(t, srv, Options{})
	ctx := context.Background()
	key := verify.ReplayKey([]byte("recorded by a"))
	if ok, err := a.Add(ctx, key, "check 1", time.Hour); !ok || err != nil {
		t.Fatalf("a.Add = %v, %v", ok, err)
	}
	for _, s := range []*Store{b, a} {
		if err := s.Remove(ctx, key, "check 2"); err != nil {
			t.Fatalf("Remove = %v", err)
		}
		if ok, err := b.Add(ctx, key, "check 3", time.Hour); ok || err != nil {
			t.Fatalf("Add after another check's Remove = %v, %v; want check 1's record kept", ok, err)
		}
	}
	if err := a.Remove(ctx, key, "check 1"); err != nil {
		t.Fatalf("a.Remove = %v", err)
	}
	if ok, err := b.Add(ctx, key, "check 3", time.Hour); !ok || err != nil {
		t.Fatalf("b.Add after check 1's Remove = %v, %v; want it forgotten", ok, err)
	}
}
