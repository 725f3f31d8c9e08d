package redisreplay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func devValue(t *testing.T, token string) string {
	t.Helper()
	v, err := header.Encode(header.Value{Kind: header.KindDev, Token: []byte(token), GeneratedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A Redis whose maxmemory-policy may evict replay records (any but
// noeviction: every record has a TTL) fails every check closed, with an
// error naming the policy and the fix, unless the caller accepts
// eviction; Health says the same. Managed services often default to
// volatile-lru or allkeys-lru.
func TestEvictionPolicyFailsClosed(t *testing.T) {
	for _, policy := range []string{"allkeys-lru", "volatile-lru", "volatile-ttl", "allkeys-random", "noeviction"} {
		t.Run(policy, func(t *testing.T) {
			srv := redistest.Start(t, "maxmemory-policy "+policy)
			var logs syncBuffer
			for _, allow := range []bool{false, true} {
				store := open(t, srv, Options{AllowEviction: allow, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				v := &verify.Verifier{NoClient: true, AllowDev: true, Replays: store}
				_, err := v.Verify(context.Background(), devValue(t, policy+fmt.Sprint(allow)))
				masters, herr := store.Health(context.Background())
				if len(masters) != 1 || masters[0].Policy != policy || masters[0].Addr != srv.Socket {
					t.Errorf("Health: masters %+v", masters)
				}
				var ee *EvictionError
				if policy == "noeviction" || allow {
					if err != nil || herr != nil {
						t.Errorf("AllowEviction %v: Verify = %v, Health = %v; want both nil", allow, err, herr)
					}
					continue
				}
				if !errors.Is(err, verify.ErrReplayStore) || !errors.As(err, &ee) || ee.Policy != policy || ee.Addr != srv.Socket {
					t.Fatalf("Verify = %v, want replay_store with an *EvictionError for %s", err, policy)
				}
				for _, want := range []string{"maxmemory-policy " + policy, "CONFIG SET maxmemory-policy noeviction", "AllowEviction"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if !errors.As(herr, &ee) {
					t.Errorf("Health = %v, want the *EvictionError", herr)
				}
			}
			if accepted := strings.Contains(logs.String(), "eviction accepted"); accepted != (policy != "noeviction") {
				t.Errorf("warned of accepted eviction: %v; log:\n%s", accepted, logs.String())
			}
		})
	}
}

// Fixing the policy takes effect without a restart: a Store that found
// one that may evict reads it again every policyRecheck.
func TestEvictionPolicyFixedLater(t *testing.T) {
	srv := redistest.Start(t, "maxmemory-policy volatile-lru")
	store := open(t, srv, Options{})
	clock := time.Now()
	var mu sync.Mutex
	store.policy.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	v := &verify.Verifier{NoClient: true, AllowDev: true, Replays: store}
	ctx := context.Background()
	if _, err := v.Verify(ctx, devValue(t, "a")); !errors.Is(err, ErrEvictionPolicy) {
		t.Fatalf("Verify = %v, want ErrEvictionPolicy", err)
	}
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DisableIdentity: true})
	defer rdb.Close()
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, devValue(t, "b")); !errors.Is(err, ErrEvictionPolicy) {
		t.Errorf("Verify before the recheck = %v, want the policy still refused", err)
	}
	mu.Lock()
	clock = clock.Add(policyRecheck)
	mu.Unlock()
	if _, err := v.Verify(ctx, devValue(t, "c")); err != nil {
		t.Errorf("Verify after the policy was fixed = %v", err)
	}
}

// A policy that cannot be read (INFO renamed away, as some managed
// services do with CONFIG) is a warning, not a failure.
func TestEvictionPolicyUnreadable(t *testing.T) {
	srv := redistest.Start(t, `rename-command INFO ""`)
	var logs syncBuffer
	store := open(t, srv, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	v := &verify.Verifier{NoClient: true, AllowDev: true, Replays: store}
	if _, err := v.Verify(context.Background(), devValue(t, "a")); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "could not read maxmemory-policy") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	if masters, err := store.Health(context.Background()); !errors.Is(err, ErrPolicyUnknown) || len(masters) != 1 || masters[0].Policy != "" {
		t.Errorf("Health = %+v, %v; want ErrPolicyUnknown", masters, err)
	}
}

// In a Cluster every master is asked: one master that may evict is
// enough to refuse, and the error names it.
func TestEvictionPolicyCluster(t *testing.T) {
	cluster := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), ContextTimeoutEnabled: true, MaxRetries: -1, DisableIdentity: true})
	defer rdb.Close()
	store := New(rdb, Options{})
	ctx := context.Background()
	masters, err := store.Health(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("Health = %+v, %v; want three masters, noeviction", masters, err)
	}
	v := &verify.Verifier{NoClient: true, AllowDev: true, Replays: store}
	for i := range 20 { // keys land on every master
		if _, err := v.Verify(ctx, devValue(t, fmt.Sprint("before ", i))); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	}
	admin := redis.NewClient(&redis.Options{Addr: cluster.Nodes[1].Addr, DisableIdentity: true})
	defer admin.Close()
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	var ee *EvictionError
	if _, err := store.Health(ctx); !errors.As(err, &ee) || ee.Addr != cluster.Addrs()[1] || ee.Policy != "allkeys-lru" {
		t.Fatalf("Health with master %s on allkeys-lru = %v", cluster.Addrs()[1], err)
	}
	if _, err := v.Verify(ctx, devValue(t, "after")); !errors.Is(err, ErrEvictionPolicy) {
		t.Errorf("Verify = %v, want ErrEvictionPolicy", err)
	}
}

// The attack the check refuses to risk, kept as a test: with eviction
// accepted, records of forged tokens push a real token's record out, and
// its header is accepted a second time.
func TestEvictionLetsAReplayThrough(t *testing.T) {
	srv := redistest.Start(t, "maxmemory 3mb", "maxmemory-policy volatile-lru")
	store := open(t, srv, Options{AllowEviction: true, Logger: slog.New(slog.DiscardHandler)})
	v := &verify.Verifier{NoClient: true, AllowDev: true, Replays: store}
	ctx := context.Background()
	victim := devValue(t, "the victim's token")
	if _, err := v.Verify(ctx, victim); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DisableIdentity: true})
	defer rdb.Close()
	key := DefaultPrefix + verify.ReplayKey([]byte("the victim's token"))
	evicted := false
	for i := 0; i < 200 && !evicted; i++ { // at most 200,000 forged records
		pipe := rdb.Pipeline()
		for j := range 1000 {
			pipe.Do(ctx, "SET", DefaultPrefix+verify.ReplayKey(fmt.Appendf(nil, "forged %d %d", i, j)), "a check's id", "PX", time.Minute.Milliseconds(), "NX")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		evicted = rdb.Exists(ctx, key).Val() == 0
	}
	if !evicted {
		t.Fatal("the victim's record was never evicted")
	}
	if _, err := v.Verify(ctx, victim); err != nil {
		t.Fatalf("the victim's header again: %v; the attack needs it accepted", err)
	}
}
