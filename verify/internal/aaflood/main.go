// Command aaflood measures App Attest under the flood that locks real
// DeviceCheck users out (issue 20: 400 concurrent requests with random
// content, needing no secret): verify.Middleware in front of a handler,
// its Verifier accepting both kinds (a Client asking a fake Apple,
// verify/devicechecktest, that answers after -apple-latency, and a
// memory key store holding -users registered App Attest keys).
//
// Each scenario runs for -duration. Real users send -rate requests a
// second in all, each with a genuine App Attest value of its own key;
// the flood is -concurrency workers sending forged App Attest values as
// fast as they are answered:
//
//   - random: a registered key's id, and random bytes for the assertion;
//   - random signature: a registered key's id and a well-formed
//     assertion whose signature is random (a full ECDSA verification
//     each: the most a forged value can cost);
//   - unknown key: a well-formed assertion under a key id nobody
//     registered.
//
// It counts calls to Apple (there should be none), what real users got,
// and the process's CPU time per forged request (everything the process
// did in the scenario, divided by the forged requests). Requests go to
// the middleware in-process. It prints one Markdown table on stdout.
//
//	go run ./verify/internal/aaflood [-concurrency 400] [-users 50] [-rate 50] [-duration 10s]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/devicechecktest"
)

const appID = "TEAMID1234.com.example.app"

func main() {
	concurrency := flag.Int("concurrency", 400, "forged requests in flight at once")
	users := flag.Int("users", 50, "real users, each with a registered key")
	rate := flag.Float64("rate", 50, "real users' requests per second, in all")
	duration := flag.Duration("duration", 10*time.Second, "how long each scenario runs")
	latency := flag.Duration("apple-latency", 50*time.Millisecond, "how long the fake Apple takes to answer")
	flag.Parse()

	fmt.Printf("| scenario | forged in flight | forged sent (/s) | real requests | real: valid | real: p50 / p99 | calls to Apple | forged: 401 / 403 / 503 | CPU per forged request |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range []scenario{
		{name: "baseline (no flood)"},
		{name: "random", forge: forgeRandom},
		{name: "random signature", forge: forgeSignature},
		{name: "unknown key", forge: forgeUnknownKey},
	} {
		fmt.Fprintf(os.Stderr, "aaflood: %s for %v…\n", sc.name, *duration)
		sc.concurrency, sc.users, sc.rate = *concurrency, *users, *rate
		if sc.forge == nil {
			sc.concurrency = 0
		}
		fmt.Println(sc.run(*duration, *latency).row(sc))
	}
}

type scenario struct {
	name        string
	forge       func(dev *devattest.Key) string // one forged value; nil: no flood
	concurrency int
	users       int
	rate        float64
}

// counts are the answers one class of request got, and their latencies.
type counts struct {
	mu        sync.Mutex
	codes     map[int]int
	latencies []time.Duration
}

func (c *counts) add(code int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes[code]++
	c.latencies = append(c.latencies, d)
}

func (c *counts) quantile(q float64) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.latencies) == 0 {
		return 0
	}
	l := slices.Clone(c.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

type result struct {
	real, forged  *counts
	forgedSent    atomic.Int64
	elapsed       time.Duration
	appleRequests int64
	cpu           time.Duration
}

// appleCounter is a verify.Observer counting requests to Apple.
type appleCounter struct{ n atomic.Int64 }

func (a *appleCounter) ObserveCheck(error, time.Duration)              {}
func (a *appleCounter) ObserveAppleRequest(string, int, time.Duration) { a.n.Add(1) }
func (a *appleCounter) ObserveRetry(string, error)                     {}
func (a *appleCounter) ObserveReplayStoreError(error)                  {}
func (a *appleCounter) ObserveCheckKind(string, error, time.Duration)  {}

func (sc scenario) run(d, latency time.Duration) *result {
	mw, devices, apple, closeAll := sc.setup(latency)
	defer closeAll()
	res := &result{real: &counts{codes: map[int]int{}}, forged: &counts{codes: map[int]int{}}}
	send := func(value string, c *counts) {
		req := httptest.NewRequest("POST", "/api", nil)
		req.Header.Set(verify.HeaderName, value)
		rec := httptest.NewRecorder()
		start := time.Now()
		mw.ServeHTTP(rec, req)
		c.add(rec.Code, time.Since(start))
	}
	realValues := sc.realValues(devices, d)
	var pool []string
	for i := 0; sc.forge != nil && i < 4096; i++ {
		pool = append(pool, sc.forge(devices[i%len(devices)]))
	}
	cpuBefore := cpuTime()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range sc.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += sc.concurrency {
				send(pool[i%len(pool)], res.forged)
				res.forgedSent.Add(1)
			}
		}()
	}
	sc.pace(ctx, &wg, realValues, func(v string) { send(v, res.real) })
	wg.Wait()
	res.elapsed, res.cpu = time.Since(began), cpuTime()-cpuBefore
	res.appleRequests = apple.n.Load()
	fmt.Fprintf(os.Stderr, "aaflood: real users %v; forged %v\n", res.real.codes, res.forged.codes)
	return res
}

// setup makes the middleware, registers the real users' keys and returns
// them, with the Apple counter and what closes everything.
func (sc scenario) setup(latency time.Duration) (http.Handler, []*devattest.Key, *appleCounter, func()) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fake := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "ABC123DEFG")
	fake.SetLatency(latency)
	counter := &appleCounter{}
	client, err := verify.NewClient(verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key, BaseURL: fake.URL, Observer: counter})
	if err != nil {
		panic(err)
	}
	keys := &appattest.MemoryKeyStore{}
	devices := make([]*devattest.Key, sc.users)
	for i := range devices {
		if devices[i], err = devattest.NewKey(appID); err != nil {
			panic(err)
		}
		rec := &appattest.Key{ID: devices[i].ID(), PublicKey: &devices[i].PrivateKey.PublicKey, AppID: appID, Environment: appattest.Production, Root: appattest.AppleRootName}
		if _, _, err := keys.Register(context.Background(), rec, time.Now()); err != nil {
			panic(err)
		}
	}
	v := &verify.Verifier{Client: client, Keys: keys, Observer: counter}
	mw := verify.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), verify.MiddlewareOptions{Verifier: v})
	return mw, devices, counter, func() { client.CloseIdleConnections(); fake.Close() }
}

// realValues makes, before the run, every genuine value the real users
// will send: rate a second for d, round robin over the devices.
func (sc scenario) realValues(devices []*devattest.Key, d time.Duration) []string {
	out := make([]string, int(sc.rate*d.Seconds())+1)
	for i := range out {
		out[i] = genuine(devices[i%len(devices)])
	}
	return out
}

// pace sends the real users' values at sc.rate until ctx is done.
func (sc scenario) pace(ctx context.Context, wg *sync.WaitGroup, values []string, send func(string)) {
	start, sent := time.Now(), 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for due := min(len(values), int(now.Sub(start).Seconds()*sc.rate)); sent < due; sent++ {
				wg.Add(1)
				go func(v string) { defer wg.Done(); send(v) }(values[sent])
			}
		}
	}
}

// genuine makes dev's next value.
func genuine(dev *devattest.Key) string {
	v := header.Value{Kind: header.KindAppAttest, KeyID: dev.ID(), Nonce: make([]byte, header.NonceLen), GeneratedAt: time.Now()}
	rand.Read(v.Nonce)
	cdh := header.AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce)
	var err error
	if v.Token, err = dev.Assert(cdh[:]); err != nil {
		panic(err)
	}
	return encode(v)
}

func encode(v header.Value) string {
	s, err := header.Encode(v)
	if err != nil {
		panic(err)
	}
	return s
}

// forgeRandom: a registered key's id, random bytes as the assertion.
func forgeRandom(dev *devattest.Key) string {
	v := header.Value{Kind: header.KindAppAttest, KeyID: dev.ID(), Nonce: make([]byte, header.NonceLen), Token: make([]byte, 180), GeneratedAt: time.Now()}
	rand.Read(v.Nonce)
	rand.Read(v.Token)
	return encode(v)
}

// forgeSignature: a registered key's id, a well-formed assertion whose
// signature is a random, well-formed (r, s).
func forgeSignature(dev *devattest.Key) string {
	return forgeUnder(dev.ID())
}

// forgeUnknownKey: a well-formed assertion under a key id nobody has.
func forgeUnknownKey(*devattest.Key) string {
	id := make([]byte, header.KeyIDLen)
	rand.Read(id)
	return forgeUnder(id)
}

func forgeUnder(keyID []byte) string {
	rpID := sha256.Sum256([]byte(appID))
	authData := appattesttest.Assertion{RPIDHash: rpID[:], Counter: 1 << 20}.AuthData()
	half := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
	r, _ := rand.Int(rand.Reader, half)
	s, _ := rand.Int(rand.Reader, half)
	sig, _ := asn1.Marshal(struct{ R, S *big.Int }{r.Add(r, big.NewInt(1)), s.Add(s, big.NewInt(1))})
	object, err := appattesttest.AssertionObject(sig, authData)
	if err != nil {
		panic(err)
	}
	v := header.Value{Kind: header.KindAppAttest, KeyID: keyID, Nonce: make([]byte, header.NonceLen), Token: object, GeneratedAt: time.Now()}
	rand.Read(v.Nonce)
	return encode(v)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *result) row(sc scenario) string {
	realN := 0
	for _, n := range r.real.codes {
		realN += n
	}
	valid := "–"
	if realN > 0 {
		valid = fmt.Sprintf("%.1f%%", 100*float64(r.real.codes[200])/float64(realN))
	}
	perForged := "–"
	forged := r.forgedSent.Load()
	if forged > 0 {
		perForged = fmt.Sprintf("%.0f µs", float64(r.cpu.Microseconds())/float64(forged))
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("| %s | %d | %d (%.0f) | %d | %s | %s / %s | %d | %d / %d / %d | %s |",
		sc.name, sc.concurrency, forged, float64(forged)/r.elapsed.Seconds(), realN, valid,
		ms(r.real.quantile(0.5)), ms(r.real.quantile(0.99)), r.appleRequests,
		r.forged.codes[401], r.forged.codes[403], r.forged.codes[503], perForged)
}
