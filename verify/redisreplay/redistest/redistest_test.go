package redistest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartWithConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   Options
		scheme string
	}{
		{"tcp", Options{TCP: true, Config: []string{"maxmemory-policy allkeys-lru"}}, "redis://127.0.0.1:"},
		{"unix", Options{Config: []string{"maxmemory-policy volatile-lru"}}, "unix:///"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := StartWith(t, tc.opts)
			if !strings.HasPrefix(srv.URL(), tc.scheme) {
				t.Fatalf("URL() = %q, want it to start with %q", srv.URL(), tc.scheme)
			}
			if (srv.Addr != "") != tc.opts.TCP || (srv.Socket != "") == tc.opts.TCP {
				t.Fatalf("Addr %q, Socket %q for TCP=%v", srv.Addr, srv.Socket, tc.opts.TCP)
			}
			opt, err := redis.ParseURL(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Fields(tc.opts.Config[0])[1]
			if got["maxmemory-policy"] != want {
				t.Fatalf("maxmemory-policy = %q, want %q", got["maxmemory-policy"], want)
			}
		})
	}
}

// The cluster is real: keys in different slots land on different
// masters, a key written through one node is read through another, and a
// plain client asking the wrong node is redirected.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	opt, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatalf("ParseClusterURL(%q): %v", c.URL(), err)
	}
	if !slices.Equal(opt.Addrs, c.Addrs()) {
		t.Fatalf("ParseClusterURL(%q).Addrs = %q, want %q", c.URL(), opt.Addrs, c.Addrs())
	}
	writer := redis.NewClusterClient(opt)
	defer writer.Close()

	owners := map[string][]string{} // node address → keys it holds
	for i := range 30 {
		key := fmt.Sprintf("key-%d", i)
		if err := writer.Set(ctx, key, "value-"+key, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		owner, err := writer.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		owners[owner.Options().Addr] = append(owners[owner.Options().Addr], key)
	}
	if len(owners) != clusterSize {
		t.Fatalf("30 keys landed on %d masters, want %d: %v", len(owners), clusterSize, owners)
	}

	for owner, keys := range owners {
		key := keys[0]
		for _, addr := range c.Addrs() {
			if addr == owner {
				continue
			}
			// A cluster client that knows only another node finds the key.
			reader := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
			got, err := reader.Get(ctx, key).Result()
			reader.Close()
			if err != nil || got != "value-"+key {
				t.Errorf("GET %s through %s (owner %s) = %q, %v", key, addr, owner, got, err)
			}
			// A plain client asking that node is told where the key lives.
			plain := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			err = plain.Get(ctx, key).Err()
			plain.Close()
			if err == nil || !strings.HasPrefix(err.Error(), "MOVED ") || !strings.HasSuffix(err.Error(), owner) {
				t.Errorf("GET %s from non-owner %s: %v, want MOVED … %s", key, addr, err, owner)
			}
		}
	}
}

func TestClusterStop(t *testing.T) {
	t.Parallel()
	c := StartCluster(t)
	c.Stop()
	c.Stop() // twice is fine
	for _, n := range c.Nodes {
		select {
		case <-n.done:
		default:
			t.Errorf("%s still running after Stop", n)
		}
	}
}
