// Command floodbench measures what real users of a backend see while
// forged DeviceCheck tokens flood it: verify.Middleware in front of a
// handler, its Client asking a fake Apple (verify/devicechecktest) on
// loopback that knows which tokens it issued, answers after a latency and
// may rate-limit the team like Apple.
//
// Each scenario runs for -duration with real users sending -users
// requests a second, each with a token the fake Apple issued:
//
//   - baseline: real users alone;
//   - flood: plus -forged forged tokens a second, with the Client's
//     default limits on calls to Apple;
//   - flood, clients named: the same, with MiddlewareOptions.Client
//     naming each request's client (50 real users, one flood), so calls
//     to Apple are shared in turn between clients;
//   - flood, no limits: the same flood with the Client's limits off (how
//     verify behaved before), against a fake Apple that rate-limits the
//     team at -apple-quota requests a second.
//
// Requests go to the middleware in-process (the flood's own HTTP cost is
// not what is measured); calls to the fake Apple are real HTTP on
// loopback. It prints one Markdown table on stdout.
//
//	go run ./verify/internal/floodbench [-forged 10000] [-users 50] [-duration 10s]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

func main() {
	forged := flag.Float64("forged", 10000, "forged tokens per second during a flood")
	users := flag.Float64("users", 50, "real users' requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long each scenario runs")
	latency := flag.Duration("apple-latency", 20*time.Millisecond, "how long the fake Apple takes to answer")
	quota := flag.Int("apple-quota", 1000, "the fake Apple's rate limit on the team, per second, in the no-limits scenario (0: none)")
	flag.Parse()

	fmt.Printf("| scenario | forged sent/s | real requests | real: valid | real: 503 | real: p50 / p99 | real valid: p50 / p99 | Apple requests/s | of them unanswered / 429 | forged: 403 / 503 | replay entries | heap growth |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range []scenario{
		{name: "baseline (no flood)", users: *users},
		{name: "flood, default limits", users: *users, forged: *forged},
		{name: "flood, default limits, clients named", users: *users, forged: *forged, named: true},
		{name: "flood, no limits (Apple quota " + fmt.Sprint(*quota) + "/s)", users: *users, forged: *forged, noLimits: true, quota: *quota},
	} {
		fmt.Fprintf(os.Stderr, "floodbench: %s for %v…\n", sc.name, *duration)
		r := sc.run(*duration, *latency)
		fmt.Println(r.row(sc.name))
	}
}

type scenario struct {
	name          string
	users, forged float64
	noLimits      bool
	quota         int
	named         bool // MiddlewareOptions.Client names each request's client
}

// stats is what one class of request saw.
type stats struct {
	mu        sync.Mutex
	codes     map[int]int
	latencies map[int][]time.Duration // by status code
}

func newStats() *stats { return &stats{codes: map[int]int{}, latencies: map[int][]time.Duration{}} }

func (s *stats) add(code int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code]++
	s.latencies[code] = append(s.latencies[code], d)
}

// quantile returns the q-quantile of the latencies of answers with one of
// codes, or of all answers when codes is empty.
func (s *stats) quantile(q float64, codes ...int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []time.Duration
	for code, ds := range s.latencies {
		if len(codes) == 0 || slices.Contains(codes, code) {
			l = append(l, ds...)
		}
	}
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

type result struct {
	real, forged    *stats
	forgedRate      float64
	appleRequests   int64
	appleNoAnswer   int64
	apple429        int64
	elapsed         time.Duration // from the first request until the last was answered
	replayEntries   int
	heapGrowthBytes int64
}

// appleCounter is a verify.Observer that counts Apple's answers.
type appleCounter struct {
	all, tooMany atomic.Int64
	mu           sync.Mutex
	statuses     map[int]int
}

func (a *appleCounter) ObserveCheck(error, time.Duration) {}
func (a *appleCounter) ObserveAppleRequest(_ string, status int, _ time.Duration) {
	a.all.Add(1)
	if status == http.StatusTooManyRequests {
		a.tooMany.Add(1)
	}
	a.mu.Lock()
	a.statuses[status]++
	a.mu.Unlock()
}
func (a *appleCounter) ObserveRetry(string, error)    {}
func (a *appleCounter) ObserveReplayStoreError(error) {}

func (sc scenario) run(d, latency time.Duration) result {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	apple := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "ABC123DEFG")
	defer apple.Close()
	apple.ValidTokens(apple.Issued)
	apple.SetLatency(latency)
	apple.SetRateLimit(sc.quota)
	counter := &appleCounter{statuses: map[int]int{}}
	mw, cache, closeClient := sc.middleware(key, apple.URL, counter)
	defer closeClient()

	res := result{real: newStats(), forged: newStats()}
	send := func(value, client string, s *stats) {
		req := httptest.NewRequest("POST", "/api", nil)
		req.Header.Set(verify.HeaderName, value)
		req.Header.Set("X-Client", client)
		rec := httptest.NewRecorder()
		start := time.Now()
		mw.ServeHTTP(rec, req)
		s.add(rec.Code, time.Since(start))
	}
	encode := func(tok []byte) string {
		v, err := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: tok, GeneratedAt: time.Now()})
		if err != nil {
			panic(err)
		}
		return v
	}

	heapBefore := heap()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg, pacers sync.WaitGroup
	var forgedSent atomic.Int64
	pace := func(rate float64, fire func()) {
		defer pacers.Done()
		if rate <= 0 {
			return
		}
		start, sent := time.Now(), 0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				for due := int(now.Sub(start).Seconds() * rate); sent < due; sent++ {
					wg.Add(1)
					go func() { defer wg.Done(); fire() }()
				}
			}
		}
	}
	pacers.Add(2)
	var realSent atomic.Int64
	go pace(sc.users, func() {
		// Real users are 50 clients; the flood is one.
		send(encode(apple.IssueToken()), fmt.Sprint("user-", realSent.Add(1)%50), res.real)
	})
	// Forged tokens are as long as real ones, each different: random
	// bytes with a counter in front, so making them costs the flood
	// little CPU on this shared machine.
	base := make([]byte, 2500)
	rand.Read(base)
	go pace(sc.forged, func() {
		tok := slices.Clone(base)
		n := forgedSent.Add(1)
		binary.BigEndian.PutUint64(tok, uint64(n))
		send(encode(tok), "flood", res.forged)
	})
	pacers.Wait()
	res.forgedRate = float64(forgedSent.Load()) / d.Seconds()
	wg.Wait()
	res.elapsed = time.Since(began)
	res.replayEntries = cache.Len()
	res.heapGrowthBytes = int64(heap()) - int64(heapBefore)
	res.appleRequests, res.apple429 = counter.all.Load(), counter.tooMany.Load()
	res.appleNoAnswer = int64(counter.statuses[0])
	fmt.Fprintf(os.Stderr, "floodbench: Apple's answers by status (0: none): %v; real users %v; forged %v\n", counter.statuses, res.real.codes, res.forged.codes)
	return res
}

// middleware returns the scenario's middleware, its Client asking the
// fake Apple at baseURL with key, its replay cache, and what closes the
// Client's connections.
func (sc scenario) middleware(key *ecdsa.PrivateKey, baseURL string, counter *appleCounter) (http.Handler, *verify.MemoryReplayCache, func()) {
	cfg := verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key, BaseURL: baseURL, Observer: counter}
	if sc.noLimits {
		cfg.RateLimit, cfg.MaxConcurrent = -1, -1
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	}
	client, err := verify.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	cache := verify.NewMemoryReplayCache()
	opts := verify.MiddlewareOptions{Verifier: &verify.Verifier{Client: client, Replays: cache}}
	if sc.named {
		opts.Client = func(r *http.Request) string { return r.Header.Get("X-Client") }
	}
	mw := verify.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), opts)
	return mw, cache, client.CloseIdleConnections
}

func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (r result) row(name string) string {
	realN := 0
	for _, n := range r.real.codes {
		realN += n
	}
	pct := func(n, of int) string {
		if of == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
	}
	ms := func(d time.Duration) string {
		if d < time.Millisecond {
			return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
		}
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("| %s | %.0f | %d | %s | %s | %s / %s | %s / %s | %.0f | %d / %d | %d / %d | %d | %.1f MiB |",
		name, r.forgedRate, realN, pct(r.real.codes[200], realN), pct(r.real.codes[503], realN),
		ms(r.real.quantile(0.5)), ms(r.real.quantile(0.99)), ms(r.real.quantile(0.5, 200)), ms(r.real.quantile(0.99, 200)),
		float64(r.appleRequests)/r.elapsed.Seconds(), r.appleNoAnswer, r.apple429,
		r.forged.codes[403], r.forged.codes[503], r.replayEntries, float64(r.heapGrowthBytes)/(1<<20))
}
