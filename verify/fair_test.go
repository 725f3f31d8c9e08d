package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// floodRTT is the round trip of each of the flood's 400 connections.
const floodRTT = 20 * time.Millisecond

// floodResult is what one client saw during a flood.
type floodResult struct {
	genuine, genuineValid int
	forged                map[int]int // answers to the flood, by code
}

// flood runs, through mw, 400 concurrent requests with random forged
// tokens from client "flood" for as long as client "user" sends 40
// genuine tokens one after the other, and reports what each saw.
func flood(t *testing.T, h *harness, mw http.Handler) floodResult {
	t.Helper()
	res := floodResult{forged: map[int]int{}}
	var mu sync.Mutex
	// The flood's requests end when the test is done with them, like
	// connections the attacker closes, rather than wait out their budget.
	attack, stop := context.WithCancel(context.Background())
	defer stop()
	send := func(client string, token []byte) int {
		req := httptest.NewRequest("POST", "/", nil)
		if client == "flood" {
			req = req.WithContext(attack)
		}
		req.Header.Set("X-Client", client)
		req.Header.Set(HeaderName, mustEncode(t, header.Value{Kind: "dc", Token: token, GeneratedAt: h.clock.Now()}))
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, req)
		return rec.Code
	}
	done, started := make(chan struct{}), make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10_000; j++ { // bounded, stopped by done long before
				select {
				case <-done:
					return
				default:
				}
				code := send("flood", fmt.Appendf(nil, "forged %d %d", i, j))
				mu.Lock()
				res.forged[code]++
				mu.Unlock()
				if sent.Add(1) == 400 {
					close(started)
				}
				// The attacker's round trip before its next request: the
				// flood is 400 requests at a time, as fast as answers come
				// over a network, not a loop that only burns this
				// machine's CPU (which the share does not protect).
				rtt := time.NewTimer(floodRTT)
				select {
				case <-rtt.C:
				case <-done:
					rtt.Stop()
					return
				}
			}
		}()
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the flood did not start")
	}
	for range 40 {
		res.genuine++
		if send("user", h.apple.IssueToken()) == 200 {
			res.genuineValid++
		}
	}
	close(done)
	stop()
	wg.Wait()
	return res
}

// A fair share per client: under 400 concurrent requests with random
// forged tokens from one client, at least 95% of another client's genuine
// tokens still pass, with the Client's default limits. Without naming
// clients the global limit is shared first come, first served, and the
// flood takes nearly all of it (logged, as the baseline).
func TestFairShareUnderFlood(t *testing.T) {
	for _, named := range []bool{true, false} {
		t.Run(map[bool]string{true: "clients named", false: "baseline, one queue"}[named], func(t *testing.T) {
			h := newHarness(t, oneAttempt)
			h.apple.ValidTokens(h.apple.Issued)
			h.apple.SetLatency(10 * time.Millisecond)
			opts := MiddlewareOptions{Verifier: &Verifier{Client: h.client, Replays: NewMemoryReplayCache(), Now: h.clock.Now}}
			if named {
				opts.Client = func(r *http.Request) string { return r.Header.Get("X-Client") }
			}
			res := flood(t, h, Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), opts))
			t.Logf("genuine: %d of %d valid; flood: %v", res.genuineValid, res.genuine, res.forged)
			if res.forged[503] == 0 {
				t.Errorf("the flood was never refused for our limit (%v): it did not load the Client", res.forged)
			}
			if named && res.genuineValid*100 < res.genuine*95 {
				t.Errorf("%d of %d genuine tokens passed under the flood, want at least 95%%", res.genuineValid, res.genuine)
			}
			if n := h.client.fair.known(); n != 0 {
				t.Errorf("the table still holds %d clients with nothing waiting or in flight", n)
			}
		})
	}
}

// The table of clients is bounded: clients beyond MaxClients share one
// turn, and a client is forgotten once it has nothing waiting or in
// flight.
func TestFairLimiterTableBounded(t *testing.T) {
	f := newFairLimiter(nil, 1, 2)
	waited := make(chan struct{}, 3)
	f.onWait = func() { waited <- struct{}{} }
	ctx := context.Background()
	first, ok := f.acquire(ctx, "a") // holds the only slot
	if !ok {
		t.Fatal("no room for the first call")
	}
	released := make(chan func(), 3)
	for _, key := range []string{"b", "c", "d"} {
		go func() {
			release, ok := f.acquire(ctx, key)
			if !ok {
				t.Error("a waiting call was refused")
			}
			released <- release
		}()
	}
	for range 3 {
		<-waited
	}
	if n := f.known(); n != 2 {
		t.Errorf("table of %d clients, want the bound of 2 (the rest share one turn)", n)
	}
	first()
	for range 3 {
		(<-released)()
	}
	if n := f.known(); n != 0 {
		t.Errorf("table of %d clients after every call ended, want 0", n)
	}
}

// The name MiddlewareOptions.Client gives a request reaches the check
// and the next handler; WithClient and ClientFromContext carry it for
// direct callers of Verify.
func TestClientKeyReachesTheCheck(t *testing.T) {
	if got := ClientFromContext(WithClient(context.Background(), "acct-7")); got != "acct-7" {
		t.Errorf("ClientFromContext(WithClient(…, acct-7)) = %q", got)
	}
	if got := ClientFromContext(context.Background()); got != "" {
		t.Errorf("ClientFromContext of a bare context = %q, want the unnamed client", got)
	}
	var seen string
	v := &Verifier{NoClient: true, AllowDev: true, Replays: NewMemoryReplayCache()}
	mw := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = ClientFromContext(r.Context()) }),
		MiddlewareOptions{Verifier: v, Client: func(r *http.Request) string { return r.RemoteAddr }})
	req := httptest.NewRequest("POST", "/", nil)
	req.RemoteAddr = "192.0.2.7:4711"
	req.Header.Set(HeaderName, mustEncode(t, header.Value{Kind: "dev", Token: []byte("tok"), GeneratedAt: time.Now()}))
	mw.ServeHTTP(httptest.NewRecorder(), req)
	if seen != "192.0.2.7:4711" {
		t.Errorf("the next handler saw client %q", seen)
	}
}
