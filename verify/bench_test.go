package verify

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// BenchmarkMiddleware measures one request with a fresh token (of a real
// DeviceCheck token's size, 2,500 bytes):
//
//   - loopback/…: through an HTTP server on loopback, as a backend's
//     client sends it: to a bare handler (the baseline), behind Middleware
//     with a development Verifier that asks no one, and behind Middleware
//     asking the fake Apple on loopback (one more HTTP round trip).
//   - in-process/…: Middleware's own CPU cost (parse, policy, replay
//     cache, header removal) against the bare handler, both called
//     directly, without a network; and, asking the fake Apple with the
//     Client's limits on, the cost of the fair share per client: the
//     same with and without MiddlewareOptions.Client naming 1,000
//     clients in rotation.
//
// The loopback Client's limits are off: this measures cost, not policy.
//
//	go test -run '^$' -bench Middleware -benchmem ./verify/
func BenchmarkMiddleware(b *testing.B) {
	key := newKey(b)
	apple := devicechecktest.NewServer(&key.PublicKey, testTeamID, testKeyID)
	defer apple.Close()
	client, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: key, BaseURL: apple.URL, RateLimit: -1, MaxConcurrent: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer client.CloseIdleConnections()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	local := func() http.Handler {
		return Middleware(bare, MiddlewareOptions{Verifier: &Verifier{NoClient: true, AllowDev: true, Replays: NewMemoryReplayCache()}})
	}
	// values returns the i-th fresh header value, made 1,024 at a time
	// with the timer stopped.
	values := func(b *testing.B, kind string) func(i int) string {
		var chunk []string
		return func(i int) string {
			if i%1024 == 0 {
				b.StopTimer()
				chunk = chunk[:0]
				for range 1024 {
					tok := make([]byte, 2500)
					rand.Read(tok)
					chunk = append(chunk, mustEncode(b, header.Value{Kind: kind, Token: tok, GeneratedAt: time.Now()}))
				}
				b.StartTimer()
			}
			return chunk[i%1024]
		}
	}
	for _, tt := range []struct {
		name    string
		handler http.Handler
		kind    string
	}{
		{"loopback/bare", bare, header.KindDev},
		{"loopback/middleware", local(), header.KindDev},
		{"loopback/middleware+apple", Middleware(bare, MiddlewareOptions{Verifier: &Verifier{Client: client, Replays: NewMemoryReplayCache()}}), header.KindDeviceCheck},
	} {
		b.Run(tt.name, func(b *testing.B) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			hc := srv.Client()
			defer hc.CloseIdleConnections()
			value := values(b, tt.kind)
			b.ResetTimer()
			for i := range b.N {
				req, _ := http.NewRequest("POST", srv.URL, nil)
				req.Header.Set(HeaderName, value(i))
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("answer %d", resp.StatusCode)
				}
			}
		})
	}
	// The Client's limits on (far above what one benchmark loop asks), so
	// that every call takes its turn in the fair share; with and without
	// naming clients (1,000 of them, in rotation).
	shared, err := NewClient(Config{TeamID: testTeamID, KeyID: testKeyID, Key: key, BaseURL: apple.URL, RateLimit: 1e9, MaxConcurrent: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer shared.CloseIdleConnections()
	var n atomic.Int64
	clientKey := func(*http.Request) string { return strconv.Itoa(int(n.Add(1) % 1000)) }
	for _, tt := range []struct {
		name    string
		handler http.Handler
		kind    string
	}{
		{"in-process/bare", bare, header.KindDev},
		{"in-process/middleware", local(), header.KindDev},
		{"in-process/middleware+apple", Middleware(bare, MiddlewareOptions{Verifier: &Verifier{Client: shared, Replays: NewMemoryReplayCache()}}), header.KindDeviceCheck},
		{"in-process/middleware+apple+clients", Middleware(bare, MiddlewareOptions{Verifier: &Verifier{Client: shared, Replays: NewMemoryReplayCache()}, Client: clientKey}), header.KindDeviceCheck},
	} {
		b.Run(tt.name, func(b *testing.B) {
			value := values(b, tt.kind)
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest("POST", "/", nil)
				req.Header.Set(HeaderName, value(i))
				rec := httptest.NewRecorder()
				tt.handler.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("answer %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkReplayEntryMemory measures the heap one remembered token costs:
// MemoryReplayCache against the map[string]time.Time keyed by hex SHA-256
// that the package used before (the baseline). It reports B/entry after
// 200,000 entries.
//
//	go test -run '^$' -bench ReplayEntryMemory ./verify/
func BenchmarkReplayEntryMemory(b *testing.B) {
	const n = 200_000
	keys := make([]string, n)
	for i := range keys {
		var tok [32]byte
		rand.Read(tok[:])
		keys[i] = ReplayKey(tok[:])
	}
	measure := func(b *testing.B, fill func() any) {
		var perEntry float64
		for range b.N {
			before := heapInUse()
			kept := fill()
			perEntry = float64(heapInUse()-before) / n
			runtime.KeepAlive(kept)
		}
		b.ReportMetric(perEntry, "B/entry")
	}
	b.Run("MemoryReplayCache", func(b *testing.B) {
		measure(b, func() any {
			c := NewMemoryReplayCache()
			for _, k := range keys {
				c.Add(context.Background(), k, "a check's own id", time.Hour)
			}
			return c
		})
	})
	b.Run("baseline-map-string-time", func(b *testing.B) {
		measure(b, func() any {
			m := map[string]time.Time{}
			exp := time.Now().Add(time.Hour)
			for _, k := range keys {
				m[strings.Clone(k)] = exp // a string of its own, as ReplayKey made one per check
			}
			return m
		})
	})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkFairShare measures the Client's limiter alone, taking and
// giving back room for one call from many goroutines at once: one queue
// (no client named, the baseline) against 1,000 named clients.
//
//	go test -run '^$' -bench FairShare ./verify/
func BenchmarkFairShare(b *testing.B) {
	for _, clients := range []int{0, 1000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			f := newFairLimiter(rate.NewLimiter(rate.Inf, 1), 1<<20, 0)
			var n atomic.Int64
			ctx := context.Background()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := ""
					if clients > 0 {
						key = strconv.Itoa(int(n.Add(1) % int64(clients)))
					}
					release, ok := f.acquire(ctx, key)
					if !ok {
						b.Fatal("refused")
					}
					release()
				}
			})
		})
	}
}
