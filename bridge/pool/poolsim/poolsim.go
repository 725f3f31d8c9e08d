// Package poolsim runs the real token pool on a fake clock against a
// provider with DeviceCheck-like latency and a codex-like request pattern,
// hours of it in seconds, and reports how many requests got a token within
// the app-server's budget, what the stdio bridge's hold added at the start
// of each turn, and how many tokens were made for each one served.
// attestd-bench (test/bench) prints its figures; it lives under bridge/
// because the fake clock is internal to bridge.
//
// Time moves only when every goroutine of the pool, the provider and the
// simulated clients is blocked: Run reads their states from runtime.Stack,
// because the pool offers no idle hook outside its package. Every event
// has a fixed place in the order (time, kind, turn, request), so a seed
// gives one result however the goroutines are scheduled.
package poolsim

import (
	"bytes"
	"container/heap"
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
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// Config is the pool configuration, how the client signals demand, and
// the length of one simulation. Zero pool fields take the pool's
// defaults.
type Config struct {
	Size, WarmSize            int
	MaxAge, WarmWindow        time.Duration
	BusyWindow                time.Duration
	RefreshAhead, ReadyMargin time.Duration
	TurnTimeout               time.Duration
	// Turns makes the client signal turns: TurnStarted when the client
	// sends turn/start (the stdio bridge signals it on the app-server's
	// turn/started, once turn/start has gone on), TurnCompleted when the
	// app-server sends turn/completed. Without it the client only sends
	// requests (and a warm-up hint at each turn start when WarmHints).
	Turns     bool
	WarmHints bool
	// Hold is the bridge's bound on holding turn/start until a token is
	// ready (WaitReady); zero forwards it at once.
	Hold time.Duration
	// Hours of turns to simulate; zero means 8.
	Hours int
	Seed  uint64
}

// Result is what one simulation measured.
type Result struct {
	Requests, Turns int
	// Hits counts requests answered with a token within Budget;
	// FirstHits counts those that were the first of their turn.
	Hits, FirstHits int
	// P50 and P99 are the times from a request to its answer, a token or
	// an error.
	P50, P99 time.Duration
	// HoldMean, HoldP99 and HoldMax are the latency the hold added at
	// the start of each turn (zero without a hold); HoldBound counts the
	// holds that ended at the bound, HoldError those that ended on an
	// error.
	HoldMean, HoldP99, HoldMax time.Duration
	HoldBound, HoldError       int
	Generated, Served, Expired uint64
	// OnDemandHits and OnDemandP99 are the baseline: no pool, one
	// generation per request when it arrives, with the same latencies.
	OnDemandHits int
	OnDemandP99  time.Duration
}

// HitRate is the share of all requests answered with a token in time, in
// percent.
func (r Result) HitRate() float64 { return pct(r.Hits, r.Requests) }

// FirstHitRate is HitRate for the first request of each turn.
func (r Result) FirstHitRate() float64 { return pct(r.FirstHits, r.Turns) }

// PerServed is tokens generated per token served.
func (r Result) PerServed() float64 { return float64(r.Generated) / float64(max(r.Served, 1)) }

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
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

// turn is one codex turn: the client's turn/start at start, requests at
// offsets from the moment turn/start reaches the app-server, and the
// app-server's turn/completed complete after the last request.
type turn struct {
	start    time.Time
	offsets  []time.Duration
	complete time.Duration
}

// turns returns a codex-like pattern: turns of 1–4 requests 0.5–8 s apart
// (a model call, a tool run, the next model call), turns 10–120 s apart,
// and after 8% of turns an idle gap of 3–30 minutes. The first request
// comes 5–50 ms after turn/start reaches the app-server, and
// turn/completed 0.5–5 s after the last request (the answer streaming).
func turns(rng, extra *rand.Rand, hours int) []turn {
	var out []turn
	t := simEpoch
	end := simEpoch.Add(time.Duration(hours) * time.Hour)
	between := func(r *rand.Rand, lo, hi time.Duration) time.Duration {
		return lo + time.Duration(r.Float64()*float64(hi-lo))
	}
	for t.Before(end) {
		tu := turn{start: t}
		first := between(extra, 5*time.Millisecond, 50*time.Millisecond)
		off := first
		for i, n := 0, 1+rng.IntN(4); i < n; i++ {
			if i > 0 {
				gap := between(rng, 500*time.Millisecond, 8*time.Second)
				off += gap
				t = t.Add(gap)
			}
			tu.offsets = append(tu.offsets, off)
		}
		tu.complete = between(extra, 500*time.Millisecond, 5*time.Second)
		out = append(out, tu)
		if rng.Float64() < 0.08 {
			t = t.Add(between(rng, 3*time.Minute, 30*time.Minute))
		} else {
			t = t.Add(between(rng, 10*time.Second, 120*time.Second))
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

func (p *simProvider) Name() string { return "dev" }

func (p *simProvider) Generate(ctx context.Context) (provider.Answer, error) {
	p.mu.Lock()
	d := latency(p.rng)
	p.mu.Unlock()
	t := p.clk.NewTimer(d)
	select {
	case <-t.C():
		return provider.Answer{Kind: "dev", Token: []byte("simulated-token-bytes-0123456789")}, nil
	case <-ctx.Done():
		t.Stop()
		return provider.Answer{}, ctx.Err()
	}
}

// Event kinds, in the order they run at one instant.
const (
	evCancel   = iota // a request's deadline or a hold's bound
	evComplete        // turn/completed
	evStart           // turn/start from the client
	evRequest         // attestation/generate from the app-server
)

type event struct {
	at        time.Time
	kind      int
	turn, req int
}

func (a event) less(b event) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.turn != b.turn {
		return a.turn < b.turn
	}
	return a.req < b.req
}

type events []event

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e[i].less(e[j]) }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

type simRequest struct {
	arrival time.Time
	first   bool
	cancel  context.CancelFunc
	done    bool
	token   bool
	took    time.Duration
}

type simTurn struct {
	turn
	forwarded  time.Time // when turn/start reached the app-server
	hold       time.Duration
	holdCancel context.CancelFunc
	holdEnd    int // 0 ready, 1 bound, 2 error
	reqs       []*simRequest
}

// sim is one run's state.
type sim struct {
	cfg   Config
	clk   *clock.Fake
	p     *pool.Pool
	mu    sync.Mutex // guards q and the records below
	q     events
	turns []*simTurn
	wg    sync.WaitGroup
	stack []byte
}

func (s *sim) schedule(e event) {
	s.mu.Lock()
	heap.Push(&s.q, e)
	s.mu.Unlock()
}

// settle waits until every goroutine of the simulation is blocked.
func (s *sim) settle() error {
	limit := time.Now().Add(10 * time.Second)
	for !quiescent(&s.stack) {
		if time.Now().After(limit) {
			return fmt.Errorf("simulation did not settle:\n%s", s.stack)
		}
		runtime.Gosched()
	}
	return nil
}

// Run simulates cfg.Hours of turns against a pool configured by cfg.
func Run(cfg Config) (Result, error) {
	seed := cfg.Seed
	if cfg.Hours == 0 {
		cfg.Hours = 8
	}
	clk := clock.NewFake(simEpoch.Add(-time.Hour))
	rng := rand.New(rand.NewPCG(seed, 1))
	jitter := rand.New(rand.NewPCG(seed, 2))
	pattern := turns(rand.New(rand.NewPCG(seed, 3)), rand.New(rand.NewPCG(seed, 5)), cfg.Hours)
	prov := &simProvider{clk: clk, rng: rng}
	p := pool.New(pool.Config{
		Provider: prov, Size: cfg.Size, WarmSize: cfg.WarmSize, MaxAge: cfg.MaxAge, WarmWindow: cfg.WarmWindow,
		BusyWindow: cfg.BusyWindow, RefreshAhead: cfg.RefreshAhead, ReadyMargin: cfg.ReadyMargin, TurnTimeout: cfg.TurnTimeout,
		GenerateTimeout: time.Hour, // the fake latencies end first; real time must not interfere
		Clock:           clk, Jitter: jitter.Float64,
	})
	defer p.Close()
	s := &sim{cfg: cfg, clk: clk, p: p, stack: make([]byte, 1<<20)}
	for i, tu := range pattern {
		s.turns = append(s.turns, &simTurn{turn: tu})
		heap.Push(&s.q, event{at: tu.start, kind: evStart, turn: i})
	}
	if err := s.run(); err != nil {
		return Result{}, err
	}
	s.wg.Wait()
	return s.result(p.Status(), seed), nil
}

func (s *sim) run() error {
	deadline := protocol.GenerateDeadline // what the daemon gives each request
	for {
		s.mu.Lock()
		var at time.Time
		if len(s.q) > 0 {
			at = s.q[0].at
		}
		s.mu.Unlock()
		if t, ok := s.clk.NextTimer(); ok && (at.IsZero() || t.Before(at)) {
			at = t
		}
		if at.IsZero() {
			return nil
		}
		s.clk.Set(at)
		if err := s.settle(); err != nil {
			return err
		}
		for {
			s.mu.Lock()
			if len(s.q) == 0 || s.q[0].at.After(s.clk.Now()) {
				s.mu.Unlock()
				break
			}
			e := heap.Pop(&s.q).(event)
			s.mu.Unlock()
			s.do(e, deadline)
			if err := s.settle(); err != nil {
				return err
			}
		}
	}
}

// do runs one event.
func (s *sim) do(e event, deadline time.Duration) {
	tu := s.turns[e.turn]
	now := s.clk.Now()
	switch e.kind {
	case evCancel:
		if e.req < 0 {
			tu.holdCancel()
		} else {
			tu.reqs[e.req].cancel()
		}
	case evComplete:
		if s.cfg.Turns {
			s.p.TurnCompleted()
		}
	case evStart:
		if s.cfg.Turns {
			s.p.TurnStarted()
		}
		if s.cfg.Hold <= 0 {
			if s.cfg.WarmHints || s.cfg.Turns {
				s.p.Warm()
			}
			s.forward(e.turn, now)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		tu.holdCancel = cancel
		s.schedule(event{at: now.Add(s.cfg.Hold), kind: evCancel, turn: e.turn, req: -1})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.p.WaitReady(ctx)
			end := s.clk.Now()
			s.mu.Lock()
			switch {
			case err == nil:
			case ctx.Err() != nil:
				tu.holdEnd = 1
			default:
				tu.holdEnd = 2
			}
			s.mu.Unlock()
			s.forward(e.turn, end)
		}()
	case evRequest:
		ctx, cancel := context.WithCancel(context.Background())
		r := &simRequest{arrival: now, first: e.req == 0, cancel: cancel}
		s.mu.Lock()
		tu.reqs[e.req] = r
		s.mu.Unlock()
		s.schedule(event{at: now.Add(deadline), kind: evCancel, turn: e.turn, req: e.req})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_, err := s.p.Token(ctx)
			took := s.clk.Now().Sub(r.arrival)
			s.mu.Lock()
			r.done, r.token, r.took = true, err == nil, took
			s.mu.Unlock()
			cancel()
		}()
	}
}

// forward passes turn/start to the app-server at t: its requests and
// turn/completed follow.
func (s *sim) forward(i int, t time.Time) {
	tu := s.turns[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	tu.forwarded = t
	tu.hold = t.Sub(tu.start)
	tu.reqs = make([]*simRequest, len(tu.offsets))
	for j, off := range tu.offsets {
		heap.Push(&s.q, event{at: t.Add(off), kind: evRequest, turn: i, req: j})
	}
	heap.Push(&s.q, event{at: t.Add(tu.offsets[len(tu.offsets)-1] + tu.complete), kind: evComplete, turn: i})
}

func (s *sim) result(st protocol.PoolStatus, seed uint64) Result {
	res := Result{Turns: len(s.turns)}
	var took, holds []time.Duration
	var holdSum time.Duration
	for _, tu := range s.turns {
		holds = append(holds, tu.hold)
		holdSum += tu.hold
		switch tu.holdEnd {
		case 1:
			res.HoldBound++
		case 2:
			res.HoldError++
		}
		for _, r := range tu.reqs {
			res.Requests++
			took = append(took, r.took)
			if r.token && r.took <= Budget {
				res.Hits++
				if r.first {
					res.FirstHits++
				}
			}
		}
	}
	res.P50, res.P99 = Percentile(took, 0.50), Percentile(took, 0.99)
	res.HoldMean = holdSum / time.Duration(max(len(holds), 1))
	res.HoldP99, res.HoldMax = Percentile(holds, 0.99), Percentile(holds, 1)
	res.Generated, res.Served, res.Expired = st.Counters.Generated, st.Counters.Served, st.Counters.Expired

	// The baseline: no pool, one generation per request on demand.
	brng := rand.New(rand.NewPCG(seed, 4))
	var od []time.Duration
	for range res.Requests {
		l := latency(brng)
		if l <= Budget {
			res.OnDemandHits++
		}
		od = append(od, min(l, protocol.GenerateDeadline))
	}
	res.OnDemandP99 = Percentile(od, 0.99)
	return res
}

// quiescent reports whether every goroutine of the pool, the provider and
// the simulated clients is blocked on a channel: nothing will happen until
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
