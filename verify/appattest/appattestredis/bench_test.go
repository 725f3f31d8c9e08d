package appattestredis_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// BenchmarkAppAttestCheck: one App Attest check as Verifier.Verify makes
// it, with the key store in memory (the baseline) and in a redis-server
// on a Unix socket of the same machine (two round trips: the key's
// record, then the counter script). With -cpu 1, checks/s is what one
// core makes a second; a Redis across a network adds its round trips.
//
//	go test -run '^$' -bench AppAttestCheck -cpu 1 ./verify/appattest/appattestredis/
func BenchmarkAppAttestCheck(b *testing.B) {
	srv := redistest.Start(b)
	replay, err := redisreplay.Open(srv.URL(), redisreplay.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer replay.Close()
	for _, tt := range []struct {
		name string
		keys appattest.KeyStore
	}{
		{"memory", &appattest.MemoryKeyStore{}},
		{"redis", appattestredis.New(replay, appattestredis.Options{})},
	} {
		b.Run(tt.name, func(b *testing.B) {
			key, err := devattest.NewKey("TEAMID1234.com.example.app")
			if err != nil {
				b.Fatal(err)
			}
			rec := &appattest.Key{ID: key.ID(), PublicKey: &key.PrivateKey.PublicKey, AppID: key.AppID, Environment: appattest.Production, Root: appattest.AppleRootName}
			if _, _, err := tt.keys.Register(context.Background(), rec, time.Now()); err != nil {
				b.Fatal(err)
			}
			v := &verify.Verifier{NoClient: true, Keys: tt.keys, Kinds: []string{header.KindAppAttest}}
			ctx := context.Background()
			var chunk []string
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%1024 == 0 { // the device's work, not the server's
					b.StopTimer()
					chunk = values(b, key, 1024)
					b.StartTimer()
				}
				if _, err := v.Verify(ctx, chunk[i%1024]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
		})
	}
}

// values makes key's next n header values.
func values(b *testing.B, key *devattest.Key, n int) []string {
	out := make([]string, n)
	for i := range out {
		v := header.Value{Kind: header.KindAppAttest, KeyID: key.ID(), Nonce: make([]byte, header.NonceLen), GeneratedAt: time.Now()}
		rand.Read(v.Nonce)
		cdh := header.AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce)
		var err error
		if v.Token, err = key.Assert(cdh[:]); err != nil {
			b.Fatal(err)
		}
		if out[i], err = header.Encode(v); err != nil {
			b.Fatal(err)
		}
	}
	return out
}
