// Package poolsim runs the real token pool on a fake clock against a
// provider with DeviceCheck-like latency and a codex-like request pattern,
// hours of it in seconds, and reports how many requests got a token within
// the app-server's budget. attestd-bench (test/bench) prints its figures;
// it lives under bridge/ because the fake clock is internal to bridge.
//
// Time moves only when every goroutine of the pool, the provider and the
// simulated requests is blocked: Run reads their states from
// runtime.Stack, because the pool offers no idle hook outside its package.
package poolsim

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/internal/clock"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/server"
)

// Config is the pool configuration and the length of one simulation. Zero
// pool fields take the pool's defaults.
type Config struct {
	Size               int
	MaxAge, WarmWindow time.Duration
	// Hours of requests to simulate; zero means 8.
	Hours int
	Seed  uint64
}

// Result is what one simulation measured.
type Result struct {
	Requests int
	// FirstOfWindow counts requests that found the pool cold: the first
	// after more than a warm window without requests.
	FirstOfWindow int
	// Hits counts requests answered with a token within Budget;
	// HitsAfterFirst leaves out the first of each warm window.
	Hits, HitsAfterFirst int
	// P50 and P99 are the times to an answer, a token or an error;
	// P99AfterFirst leaves out the first of each warm window.
	P50, P99, P99AfterFirst time.Duration
	Generated, Served       uint64
	Expired                 uint64
	// OnDemandHits and OnDemandP99 are the baseline: no pool, one
	// generation per request when it arrives, with the same latencies.
	OnDemandHits int
	OnDemandP99  time.Duration
}

// Budget is how long the app-server waits for attestation/generate.
const Budget = 100 * time.Millisecond

var simEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// latency draws a DeviceCheck-like generation time: log-normal with a
// 300 ms median (σ 0.5, so p99 ≈ 1 s), and 1% of calls in a long tail of
// 2–8 s.
func latency(rng *rand.Rand) time.Duration {
	if rng.Float64() < 0.01 {
		return 2*time.Second + time.Duration(rng.Float64()*float64(6*time.Second))
	}
	return time.Duration(300 * float64(time.Millisecond) * math.Exp(0.5*rng.NormFloat64()))
}

// arrivals returns a codex-like request pattern: turns of 1–4 requests
// 0.5–8 s apart (a model call, a tool run, the next model call), turns
// 10–120 s apart, and after 8% of turns an idle gap of 3–30 minutes.
func arrivals(rng *rand.Rand, hours int) []time.Time {
	var out []time.Time
	t := simEpoch
	end := simEpoch.Add(time.Duration(hours) * time.Hour)
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Float64()*float64(hi-lo))
	}
	for t.Before(end) {
		for i, n := 0, 1+rng.IntN(4); i < n; i++ {
			if i > 0 {
				t = t.Add(between(500*time.Millisecond, 8*time.Second))
			}
			out = append(out, t)
		}
		if rng.Float64() < 0.08 {
			t = t.Add(between(3*time.Minute, 30*time.Minute))
		} else {
			t = t.Add(between(10*time.Second, 120*time.Second))
		}
	}
	return out
}

// simProvider waits a drawn latency on the fake clock.
type simProvider struct {
	clk *clock.Fake
	mu  sync.Mutex
	rng *rand.Rand
}

func (p *simProvider) Kind() string { return "dev" }

func (p *simProvider) Generate(ctx context.Context) ([]byte, error) {
	p.mu.Lock()
	d := latency(p.rng)
	p.mu.Unlock()
	t := p.clk.NewTimer(d)
	select {
	case <-t.C():
		return []byte("simulated-token-bytes-0123456789"), nil
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	}
}

type simRequest struct {
	arrival time.Time
	first   bool
	cancel  context.CancelFunc
	done    bool
	token   bool
	took    time.Duration
}

// Run simulates cfg.Hours of requests against a pool configured by cfg.
func Run(cfg Config) (Result, error) {
	seed := cfg.Seed
	if cfg.Hours == 0 {
		cfg.Hours = 8
	}
	clk := clock.NewFake(simEpoch.Add(-time.Hour))
	rng := rand.New(rand.NewPCG(seed, 1))
	jitter := rand.New(rand.NewPCG(seed, 2))
	arr := arrivals(rand.New(rand.NewPCG(seed, 3)), cfg.Hours)
	prov := &simProvider{clk: clk, rng: rng}
	p := pool.New(pool.Config{
		Provider: prov, Size: cfg.Size, MaxAge: cfg.MaxAge, WarmWindow: cfg.WarmWindow,
		GenerateTimeout: time.Hour, // the fake latencies end first; real time must not interfere
		Clock:           clk, Jitter: jitter.Float64,
	})
	defer p.Close()

	var mu sync.Mutex
	var reqs []*simRequest
	var wg sync.WaitGroup
	deadline := server.DefaultDeadline // what the daemon gives each request
	stack := make([]byte, 1<<20)
	settle := func() error {
		limit := time.Now().Add(10 * time.Second)
		for !quiescent(&stack) {
			if time.Now().After(limit) {
				return fmt.Errorf("simulation did not settle:\n%s", stack)
			}
			runtime.Gosched()
		}
		return nil
	}
	next := 0
	for next < len(arr) || pending(&mu, reqs) {
		// The next event: an arrival, a request's deadline or a timer.
		at := time.Time{}
		if next < len(arr) {
			at = arr[next]
		}
		mu.Lock()
		for _, r := range reqs {
			if !r.done {
				if d := r.arrival.Add(deadline); at.IsZero() || d.Before(at) {
					at = d
				}
			}
		}
		mu.Unlock()
		if t, ok := clk.NextTimer(); ok && (at.IsZero() || t.Before(at)) {
			at = t
		}
		if at.IsZero() {
			break
		}
		clk.Set(at)
		if err := settle(); err != nil {
			return Result{}, err
		}
		mu.Lock()
		for _, r := range reqs {
			if !r.done && !clk.Now().Before(r.arrival.Add(deadline)) {
				r.cancel()
			}
		}
		mu.Unlock()
		if err := settle(); err != nil {
			return Result{}, err
		}
		for next < len(arr) && !arr[next].After(clk.Now()) {
			ctx, cancel := context.WithCancel(context.Background())
			r := &simRequest{arrival: arr[next], first: !p.Status().Warm, cancel: cancel}
			mu.Lock()
			reqs = append(reqs, r)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := p.Token(ctx)
				took := clk.Now().Sub(r.arrival)
				mu.Lock()
				r.done, r.token, r.took = true, err == nil, took
				mu.Unlock()
			}()
			next++
			if err := settle(); err != nil {
				return Result{}, err
			}
		}
	}
	wg.Wait()
	for _, r := range reqs {
		r.cancel()
	}

	res := Result{Requests: len(reqs)}
	var took, warm []time.Duration
	for _, r := range reqs {
		took = append(took, r.took)
		if !r.first {
			warm = append(warm, r.took)
		}
		if r.first {
			res.FirstOfWindow++
		}
		if r.token && r.took <= Budget {
			res.Hits++
			if !r.first {
				res.HitsAfterFirst++
			}
		}
	}
	res.P50, res.P99, res.P99AfterFirst = Percentile(took, 0.50), Percentile(took, 0.99), Percentile(warm, 0.99)
	st := p.Status()
	res.Generated, res.Served, res.Expired = st.Counters.Generated, st.Counters.Served, st.Counters.Expired

	// The baseline: no pool, one generation per request on demand.
	brng := rand.New(rand.NewPCG(seed, 4))
	var od []time.Duration
	for range reqs {
		l := latency(brng)
		if l <= Budget {
			res.OnDemandHits++
		}
		od = append(od, min(l, deadline))
	}
	res.OnDemandP99 = Percentile(od, 0.99)
	return res, nil
}

func pending(mu *sync.Mutex, reqs []*simRequest) bool {
	mu.Lock()
	defer mu.Unlock()
	for _, r := range reqs {
		if !r.done {
			return true
		}
	}
	return false
}

// quiescent reports whether every goroutine of the pool, the provider and
// the simulated requests is blocked on a channel: nothing will happen until
// the fake clock moves or a request is canceled.
func quiescent(buf *[]byte) bool {
	for {
		n := runtime.Stack(*buf, true)
		if n < len(*buf) {
			*buf = (*buf)[:cap(*buf)]
			return stacksBlocked((*buf)[:n])
		}
		*buf = make([]byte, 2*len(*buf))
	}
}

var (
	ours     = [][]byte{[]byte("attestd/bridge/pool."), []byte("attestd/bridge/pool/poolsim.")}
	blocked  = [][]byte{[]byte("[select"), []byte("[chan receive"), []byte("[chan send")}
	selfMark = []byte("poolsim.quiescent(")
)

func stacksBlocked(all []byte) bool {
	for _, g := range bytes.Split(all, []byte("\n\n")) {
		if bytes.Contains(g, selfMark) {
			continue // the simulation's own goroutine
		}
		mine := false
		for _, o := range ours {
			if bytes.Contains(g, o) {
				mine = true
				break
			}
		}
		if !mine {
			continue
		}
		header, _, _ := bytes.Cut(g, []byte("\n"))
		ok := false
		for _, b := range blocked {
			if bytes.Contains(header, b) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Percentile returns the q-quantile (0 < q ≤ 1) of ds, nearest rank.
func Percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
