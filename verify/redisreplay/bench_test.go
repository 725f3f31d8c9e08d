package redisreplay

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// BenchmarkReplayCheck measures one replay check of a fresh token: the
// in-process MemoryReplayCache (the baseline) against this Store, one
// SET NX PX to a redis-server on a Unix socket of the same machine (a
// Redis across a network adds its round trip).
//
//	go test -run '^$' -bench ReplayCheck ./verify/redisreplay/
func BenchmarkReplayCheck(b *testing.B) {
	srv := redistest.Start(b)
	store, err := Open(srv.URL(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	for _, tt := range []struct {
		name  string
		cache func(n int) verify.ReplayCache
	}{
		{"memory", func(n int) verify.ReplayCache { return &verify.MemoryReplayCache{MaxEntries: n} }},
		{"redis", func(int) verify.ReplayCache { return store }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cache := tt.cache(b.N)
			ctx := context.Background()
			var tok [32]byte
			rand.Read(tok[:8])
			for i := range b.N {
				tok[31], tok[30], tok[29] = byte(i), byte(i>>8), byte(i>>16)
				tok[28] = byte(i >> 24)
				added, err := cache.Add(ctx, verify.ReplayKey(tok[:]), rand.Text(), time.Hour)
				if err != nil || !added {
					b.Fatalf("Add = %v, %v", added, err)
				}
			}
		})
	}
}

// BenchmarkRedisEntryMemory reports what one remembered token costs
// Redis (used_memory after 200,000 keys, per key), for sizing it: each
// key as a check makes it, the prefixed hex SHA-256 of a token holding
// the check's own id (rand.Text, 26 characters) with an hour's TTL.
//
//	go test -run '^$' -bench RedisEntryMemory -benchtime 1x ./verify/redisreplay/
func BenchmarkRedisEntryMemory(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DisableIdentity: true})
	defer rdb.Close()
	ctx := context.Background()
	used := func() float64 {
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
		b.Fatal("no used_memory in INFO")
		return 0
	}
	const n = 200_000
	var perEntry float64
	for range b.N {
		rdb.FlushAll(ctx)
		before := used()
		for i := 0; i < n; i += 1000 {
			pipe := rdb.Pipeline()
			for j := i; j < i+1000; j++ {
				var tok [32]byte
				rand.Read(tok[:])
				pipe.Do(ctx, "SET", DefaultPrefix+verify.ReplayKey(tok[:]), rand.Text(), "PX", time.Hour.Milliseconds(), "NX")
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		perEntry = (used() - before) / n
	}
	b.ReportMetric(perEntry, "B/entry")
}
