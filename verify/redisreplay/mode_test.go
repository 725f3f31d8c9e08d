package redisreplay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"", Single, false},
		{"single", Single, false},
		{" Cluster ", Cluster, false},
		{"SENTINEL", Sentinel, false},
		{"failover", "", true},
		{"ring", "", true},
	} {
		got, err := ParseMode(tt.in)
		if got != tt.want || (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrMode)) {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// Whatever the topology, a bad URL is refused with an error that never
// shows the password it carried.
func TestOpenModeRefusesBadURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode Mode
		url  string
	}{
		{Single, "redis://:pw-secret@127.0.0.1:notaport/0"},
		{Single, "http://:pw-secret@x"},
		{Cluster, "redis://:pw-secret@127.0.0.1:6379?addr=no-port"},
		{Cluster, "redis://:pw-secret@127.0.0.1:6379?no_such_option=1"},
		{Cluster, "ftp://:pw-secret@127.0.0.1:6379"},
		{Sentinel, "redis://:pw-secret@127.0.0.1:26379"}, // no master_name
		{Sentinel, "redis://:pw-secret@127.0.0.1:26379/x?master_name=m"},
		{Sentinel, "redis://u:pw-secret@[::1:26379?master_name=m"},
		{"ring", "redis://:pw-secret@127.0.0.1:6379"},
	} {
		s, err := OpenMode(tt.url, tt.mode, Options{})
		if err == nil {
			s.Close()
			t.Errorf("OpenMode(%q, %s) succeeded", tt.url, tt.mode)
			continue
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("OpenMode(%q, %s): %v: the error shows the password", tt.url, tt.mode, err)
		}
	}
}

// Every topology's client sends each command once and dials once, with
// the check's deadline, whatever the URL's own parameters ask.
func TestOpenModeSettings(t *testing.T) {
	t.Parallel()
	single, err := OpenMode("redis://127.0.0.1:1/0?max_retries=5", Single, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	// A client's options, once made, say 0 for "no retries" (-1 before).
	if o := single.rdb.(*redis.Client).Options(); o.MaxRetries != 0 || o.DialerRetries != 1 || !o.ContextTimeoutEnabled || !o.DisableIdentity {
		t.Errorf("single: MaxRetries %d, DialerRetries %d, ContextTimeoutEnabled %v, DisableIdentity %v",
			o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled, o.DisableIdentity)
	}
	cluster, err := OpenMode("redis://127.0.0.1:1?addr=127.0.0.1:2&max_redirects=8&max_retries=5&dialer_retries=4", Cluster, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	o := cluster.rdb.(*redis.ClusterClient).Options()
	if o.MaxRedirects != 0 || o.MaxRetries != -1 || o.DialerRetries != 1 || !o.ContextTimeoutEnabled || !o.DisableIdentity {
		t.Errorf("cluster: MaxRedirects %d (a lost answer is tried again that many times), MaxRetries %d, DialerRetries %d, ContextTimeoutEnabled %v, DisableIdentity %v",
			o.MaxRedirects, o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled, o.DisableIdentity)
	}
	if len(o.Addrs) != 2 {
		t.Errorf("cluster seeds %v, want both", o.Addrs)
	}
	sentinel, err := OpenMode("redis://127.0.0.1:1?master_name=m&max_retries=5&dialer_retries=4&context_timeout_enabled=false", Sentinel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sentinel.Close()
	if o := sentinel.rdb.(*redis.Client).Options(); o.MaxRetries != 0 || o.DialerRetries != 1 || !o.ContextTimeoutEnabled || !o.DisableIdentity {
		t.Errorf("sentinel: MaxRetries %d, DialerRetries %d, ContextTimeoutEnabled %v, DisableIdentity %v",
			o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled, o.DisableIdentity)
	}
}

// Two instances on one real Redis Cluster refuse each other's replays,
// their records spread over every master, and Health reads all three.
func TestClusterStoresShareReplays(t *testing.T) {
	cluster := redistest.StartCluster(t)
	a, err := OpenMode(cluster.URL(), Cluster, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenMode(cluster.URL(), Cluster, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if masters, err := a.Health(ctx); err != nil || len(masters) != 3 {
		t.Fatalf("Health = %+v, %v; want three masters", masters, err)
	}
	va := &verify.Verifier{NoClient: true, AllowDev: true, Replays: a}
	vb := &verify.Verifier{NoClient: true, AllowDev: true, Replays: b}
	for i := range 30 {
		value := devValue(t, fmt.Sprint("cluster ", i))
		if _, err := va.Verify(ctx, value); err != nil {
			t.Fatalf("instance a, token %d: %v", i, err)
		}
		if _, err := vb.Verify(ctx, value); !errors.Is(err, verify.ErrReplay) {
			t.Fatalf("instance b, token %d again: %v, want a replay", i, err)
		}
	}
	perMaster := map[string]int64{}
	for _, node := range cluster.Nodes {
		c := redis.NewClient(&redis.Options{Addr: node.Addr, DisableIdentity: true})
		n, err := c.DBSize(ctx).Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		perMaster[node.Addr] = n
	}
	for addr, n := range perMaster {
		if n == 0 {
			t.Errorf("no record on master %s (%v): the keys do not spread over the cluster", addr, perMaster)
		}
	}
}

// Through a real Sentinel, the store finds the master and refuses replays.
func TestSentinelStore(t *testing.T) {
	master := redistest.StartWith(t, redistest.Options{TCP: true})
	sentinel := redistest.StartSentinel(t, master)
	s, err := OpenMode(sentinel.SentinelURL(), Sentinel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := &verify.Verifier{NoClient: true, AllowDev: true, Replays: s}
	value := devValue(t, "through sentinel")
	if _, err := v.Verify(ctx, value); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrReplay) {
		t.Fatalf("second use: %v, want a replay", err)
	}
	if _, err := s.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master.Addr, DisableIdentity: true})
	defer direct.Close()
	if n, err := direct.DBSize(ctx).Result(); err != nil || n != 1 {
		t.Errorf("the master holds %d keys (%v), want the one record", n, err)
	}
}
