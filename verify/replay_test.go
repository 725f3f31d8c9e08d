package verify

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// memCache returns a MemoryReplayCache on the harness's clock.
func memCache(clock *fakeClock) *MemoryReplayCache {
	c := NewMemoryReplayCache()
	c.now = clock.Now
	return c
}

func TestVerifierRefusesReplays(t *testing.T) {
	h := newHarness(t)
	cache := memCache(h.clock)
	v := &Verifier{Client: h.client, MaxAge: time.Minute, Replays: cache, Now: h.clock.Now}
	value := envelope(mustEncode(t, header.Value{Kind: "dc", Token: []byte("once"), GeneratedAt: h.clock.Now()}))
	ctx := context.Background()

	if _, err := v.Verify(ctx, value); err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(ctx, value)
	if !errors.Is(err, ErrReplay) || res.Valid || Reason(err) != "replay" || !Rejected(err) {
		t.Fatalf("second use: %v", err)
	}
	if n := len(h.apple.Requests()); n != 1 {
		t.Errorf("Apple asked %d times, want once", n)
	}
	// A token that fails the local checks is not recorded.
	old := mustEncode(t, header.Value{Kind: "dc", Token: []byte("old"), GeneratedAt: h.clock.Now().Add(-time.Hour)})
	v.Verify(ctx, old)
	if cache.Len() != 1 {
		t.Errorf("cache holds %d tokens, want 1", cache.Len())
	}
}

// The replay window runs on the server's clock from when it first saw the
// token. The client's g plays no part: a captured header re-encoded with
// a fresh g is the same token, and refused.
func TestReplayWindowIgnoresClaimedTime(t *testing.T) {
	tests := []struct {
		name      string
		maxAge    time.Duration
		window    time.Duration
		refusedAt []time.Duration // after the first use: still a replay
		freshAt   time.Duration   // after the first use: remembered no more
	}{
		{"default window", time.Minute, 0, []time.Duration{2 * time.Minute, 59 * time.Minute}, time.Hour + time.Second},
		{"window set", time.Minute, 10 * time.Minute, []time.Duration{2 * time.Minute, 9 * time.Minute}, 10*time.Minute + time.Second},
		{"max age longer than the window", 30 * time.Minute, 10 * time.Minute, []time.Duration{25 * time.Minute, 30 * time.Minute}, 31*time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.Now()
			v := &Verifier{AllowDev: true, MaxAge: tt.maxAge, ReplayWindow: tt.window, Replays: memCache(clock), Now: clock.Now}
			token := []byte("captured token")
			reencode := func() string { // what an attacker does with a captured header
				return mustEncode(t, header.Value{Kind: "dev", Token: token, GeneratedAt: clock.Now()})
			}
			if _, err := v.Verify(context.Background(), reencode()); err != nil {
				t.Fatal(err)
			}
			for _, at := range tt.refusedAt {
				clock.Add(start.Add(at).Sub(clock.Now()))
				if _, err := v.Verify(context.Background(), reencode()); !errors.Is(err, ErrReplay) {
					t.Errorf("%v later with a fresh g: %v, want a replay", at, err)
				}
			}
			clock.Add(start.Add(tt.freshAt).Sub(clock.Now()))
			if _, err := v.Verify(context.Background(), reencode()); err != nil {
				t.Errorf("%v later, past the window: %v", tt.freshAt, err)
			}
		})
	}
}

// A Verifier with no fields set refuses replays and old tokens; turning
// either off takes an explicit field.
func TestZeroValueVerifierIsSafe(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	token := []byte("zero-value " + now.String()) // unique: the default cache is per process
	value := mustEncode(t, header.Value{Kind: "dev", Token: token, GeneratedAt: now})

	v := &Verifier{AllowDev: true}
	if _, err := v.Verify(ctx, value); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, value); !errors.Is(err, ErrReplay) {
		t.Errorf("second use with the zero value: %v, want a replay", err)
	}
	if _, err := (&Verifier{AllowDev: true}).Verify(ctx, value); !errors.Is(err, ErrReplay) {
		t.Errorf("second use with another zero-value Verifier: %v, want a replay", err)
	}
	if _, err := (&Verifier{AllowDev: true, AllowReplays: true}).Verify(ctx, value); err != nil {
		t.Errorf("AllowReplays: %v", err)
	}

	old := mustEncode(t, header.Value{Kind: "dev", Token: append(token, 1), GeneratedAt: now.Add(-DefaultMaxAge - time.Second)})
	if _, err := (&Verifier{AllowDev: true}).Verify(ctx, old); !errors.Is(err, ErrTooOld) {
		t.Errorf("a token older than DefaultMaxAge: %v", err)
	}
	if _, err := (&Verifier{AllowDev: true, MaxAge: -1}).Verify(ctx, old); err != nil {
		t.Errorf("MaxAge -1 (no limit): %v", err)
	}
	undated := mustEncode(t, header.Value{Kind: "dev", Token: append(token, 2)})
	if _, err := (&Verifier{AllowDev: true}).Verify(ctx, undated); !errors.Is(err, ErrTooOld) {
		t.Errorf("a token without g: %v", err)
	}
	if (&Verifier{}).replayTTL() != DefaultReplayWindow {
		t.Errorf("default replay TTL %v", (&Verifier{}).replayTTL())
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	cache := NewMemoryReplayCache()
	var added atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := cache.Add(context.Background(), ReplayKey([]byte("tok")), rand.Text(), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				added.Add(1)
			}
		}()
	}
	wg.Wait()
	if added.Load() != 1 {
		t.Errorf("%d concurrent Adds succeeded, want 1", added.Load())
	}
}

// The cache holds at most MaxEntries unexpired tokens. Full, it refuses
// new ones (the check fails closed) instead of forgetting a token early,
// and takes them again once entries expire or are removed.
func TestMemoryReplayCacheBounded(t *testing.T) {
	clock := newFakeClock()
	c := &MemoryReplayCache{MaxEntries: 3, now: clock.Now}
	ctx := context.Background()
	add := func(k string, ttl time.Duration) (bool, error) { return c.Add(ctx, k, "id-"+k, ttl) }
	for _, k := range []string{"a", "b", "c"} {
		if ok, err := add(k, time.Minute); !ok || err != nil {
			t.Fatalf("Add(%q) = %v, %v", k, ok, err)
		}
	}
	if ok, err := add("a", time.Minute); ok || err != nil {
		t.Errorf("Add(a) again = %v, %v; want a replay even when full", ok, err)
	}
	if ok, err := add("d", time.Minute); ok || !errors.Is(err, ErrReplayCacheFull) {
		t.Errorf("Add(d) to a full cache = %v, %v", ok, err)
	}
	c.Remove(ctx, "b", "id-b")
	c.Remove(ctx, "never added", "id")
	if ok, err := add("d", time.Hour); !ok || err != nil || c.Len() != 3 {
		t.Errorf("Add(d) after Remove(b) = %v, %v, Len %d", ok, err, c.Len())
	}
	clock.Add(time.Minute) // a and c expire; d lives an hour
	if ok, err := add("e", time.Minute); !ok || err != nil {
		t.Errorf("Add(e) once two expired = %v, %v", ok, err)
	}
	if c.Len() != 2 {
		t.Errorf("Len %d after the sweep, want 2 (d, e)", c.Len())
	}
	if ok, err := add("a", time.Minute); !ok || err != nil {
		t.Errorf("Add(a) after it expired = %v, %v", ok, err)
	}
	if ok, err := add("d", time.Minute); ok || err != nil {
		t.Errorf("Add(d) within its hour = %v, %v", ok, err)
	}
	if _, err := add("f", 0); err == nil {
		t.Error("Add with ttl 0 succeeded")
	}
}

type failingCache struct{}

func (failingCache) Add(context.Context, string, string, time.Duration) (bool, error) {
	return false, errors.New("store down")
}
func (failingCache) Extend(context.Context, string, string, time.Duration) error {
	return errors.New("store down")
}
func (failingCache) Remove(context.Context, string, string) error { return errors.New("store down") }

// A store that cannot answer makes the check fail closed: not valid, and
// an outage rather than a rejection.
func TestReplayStoreFailureIsNotValid(t *testing.T) {
	var obs recordingObserver
	v := &Verifier{AllowDev: true, Replays: failingCache{}, Observer: &obs}
	res, err := v.Verify(context.Background(), mustEncode(t, header.Value{Kind: "dev", Token: []byte{1}, GeneratedAt: time.Now()}))
	if err == nil || res.Valid || Rejected(err) || AppleDown(err) || !errors.Is(err, ErrReplayStore) || Reason(err) != "replay_store" {
		t.Errorf("Verify = %+v, %v (reason %q); want a failure to check", res, err, Reason(err))
	}
	// Two: the Add, then the Remove of what the Add may have recorded.
	if obs.storeErrors.Load() != 2 || obs.checks.Load() != 1 {
		t.Errorf("observer saw %d store errors and %d checks", obs.storeErrors.Load(), obs.checks.Load())
	}
}

// A token the Client's own limit kept from Apple is forgotten again, so a
// flood refused by the limit takes no room in the store.
func TestLimitedTokenForgotten(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = 1; c.RateBurst = 1; c.Timeout = 200 * time.Millisecond })
	cache := memCache(h.clock)
	v := &Verifier{Client: h.client, Replays: cache, Now: h.clock.Now}
	enc := func(tok string) string {
		return mustEncode(t, header.Value{Kind: "dc", Token: []byte(tok), GeneratedAt: h.clock.Now()})
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, enc("first")); err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(ctx, enc("second"))
	if !errors.Is(err, ErrLimited) || res.Valid || res.AppleChecked || Rejected(err) {
		t.Fatalf("second within the second: %+v, %v", res, err)
	}
	if cache.Len() != 1 {
		t.Errorf("cache holds %d tokens, want 1: the limited one is forgotten", cache.Len())
	}
	if ok, _ := cache.Add(ctx, ReplayKey([]byte("second")), "probe", time.Minute); !ok {
		t.Error("the limited token is still recorded")
	}
}

// recordingObserver counts what it is told.
type recordingObserver struct {
	checks, appleRequests, retries, storeErrors atomic.Int32
	mu                                          sync.Mutex
	reasons                                     []string
}

func (o *recordingObserver) ObserveCheck(err error, _ time.Duration) {
	o.checks.Add(1)
	o.mu.Lock()
	o.reasons = append(o.reasons, Reason(err))
	o.mu.Unlock()
}
func (o *recordingObserver) ObserveAppleRequest(string, int, time.Duration) { o.appleRequests.Add(1) }
func (o *recordingObserver) ObserveRetry(string, error)                     { o.retries.Add(1) }
func (o *recordingObserver) ObserveReplayStoreError(error)                  { o.storeErrors.Add(1) }

// A token whose caller went away before Apple was asked (a client that
// sends a forged token and hangs up at once, while the check waits for
// room under the limits) is forgotten as well. Kept, such tokens would
// fill the cache at the rate of the flood, not of the calls to Apple, and
// a full cache refuses every real user for the whole window.
func TestTokenOfAGoneCallerForgotten(t *testing.T) {
	h := newHarness(t)
	cache := memCache(h.clock)
	v := &Verifier{Client: h.client, Replays: cache, Now: h.clock.Now}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	value := mustEncode(t, header.Value{Kind: "dc", Token: []byte("forged, and gone"), GeneratedAt: h.clock.Now()})
	res, err := v.Verify(ctx, value)
	if !errors.Is(err, context.Canceled) || Reason(err) != "canceled" || res.Valid || res.AppleChecked {
		t.Fatalf("Verify with the caller gone: %+v, %v (reason %q)", res, err, Reason(err))
	}
	if n := len(h.apple.Requests()); n != 0 {
		t.Fatalf("Apple got %d requests", n)
	}
	if cache.Len() != 0 {
		t.Errorf("cache holds %d tokens, want 0: Apple never saw this one", cache.Len())
	}
}

// A replay window or an age limit near the largest duration means
// "forever", never an expiry that overflows into the past (a
// ReplayWindow of 2,190,000 hours used to let a replay through).
func TestReplayWindowNearMaxDuration(t *testing.T) {
	const huge = 2190000 * time.Hour
	for _, tt := range []struct {
		name string
		v    Verifier
	}{
		{"ReplayWindow 2,190,000 h", Verifier{ReplayWindow: huge}},
		{"ReplayWindow max", Verifier{ReplayWindow: math.MaxInt64}},
		{"MaxAge near max", Verifier{MaxAge: math.MaxInt64 - 30*time.Second}},
		{"MaxAge max", Verifier{MaxAge: math.MaxInt64}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			v.AllowDev, v.Replays = true, NewMemoryReplayCache()
			if ttl := v.replayTTL(); ttl < max(v.ReplayWindow, v.MaxAge) || ttl < DefaultReplayWindow {
				t.Errorf("replayTTL() = %v, shorter than what was asked", ttl)
			}
			value := mustEncode(t, header.Value{Kind: "dev", Token: []byte("kept forever"), GeneratedAt: time.Now()})
			if _, err := v.Verify(context.Background(), value); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), value); !errors.Is(err, ErrReplay) {
				t.Errorf("second use: %v, want a replay", err)
			}
		})
	}
	c := NewMemoryReplayCache()
	for _, ttl := range []time.Duration{huge, math.MaxInt64} {
		key := ReplayKey([]byte(ttl.String()))
		if ok, err := c.Add(context.Background(), key, "first", ttl); !ok || err != nil {
			t.Fatalf("Add(%v) = %v, %v", ttl, ok, err)
		}
		if ok, err := c.Add(context.Background(), key, "second", ttl); ok || err != nil {
			t.Errorf("second Add(%v) = %v, %v; want a replay", ttl, ok, err)
		}
	}
}

// A token Apple refused keeps a short record: a repeat within
// RefusedWindow is refused without asking Apple again, and afterwards it
// is asked again. A valid token is spent for the whole window.
func TestRefusedTokenKeptShortly(t *testing.T) {
	h := newHarness(t, oneAttempt)
	h.apple.ValidTokens(h.apple.Issued)
	v := &Verifier{Client: h.client, Replays: memCache(h.clock), Now: h.clock.Now}
	start := h.clock.Now()
	forged := mustEncode(t, header.Value{Kind: "dc", Token: []byte("forged"), GeneratedAt: start})
	genuine := mustEncode(t, header.Value{Kind: "dc", Token: h.apple.IssueToken(), GeneratedAt: start})
	ctx := context.Background()
	if _, err := v.Verify(ctx, genuine); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at           time.Duration
		forged, good string // reasons
		asked        int    // requests Apple has had by then
	}{
		{0, "bad_device_token", "replay", 2},
		{30 * time.Second, "replay", "replay", 2},
		{DefaultRefusedWindow + time.Second, "bad_device_token", "replay", 3},
		{DefaultReplayWindow - time.Second, "bad_device_token", "replay", 4},
	} {
		h.clock.Add(start.Add(tt.at).Sub(h.clock.Now()))
		v.MaxAge = -1 // the age limit is not what this is about
		if _, err := v.Verify(ctx, forged); Reason(err) != tt.forged {
			t.Errorf("forged token at %v: %v, want %s", tt.at, err, tt.forged)
		}
		if _, err := v.Verify(ctx, genuine); Reason(err) != tt.good {
			t.Errorf("genuine token at %v: %v, want %s", tt.at, err, tt.good)
		}
		if n := len(h.apple.Requests()); n != tt.asked {
			t.Errorf("at %v Apple has had %d requests, want %d", tt.at, n, tt.asked)
		}
	}
}

// A flood of distinct forged tokens cannot fill the store: each is kept
// for RefusedWindow, not for the whole replay window. (Before, a cache of
// 20 entries was full after 20 forged tokens for an hour.)
func TestForgedFloodDoesNotFillStore(t *testing.T) {
	h := newHarness(t, oneAttempt)
	h.apple.ValidTokens(h.apple.Issued)
	cache := memCache(h.clock)
	cache.MaxEntries = 20
	v := &Verifier{Client: h.client, Replays: cache, Now: h.clock.Now, MaxAge: -1}
	ctx := context.Background()
	for round := range 3 {
		for i := range 20 {
			forged := mustEncode(t, header.Value{Kind: "dc", Token: fmt.Appendf(nil, "forged %d %d", round, i), GeneratedAt: h.clock.Now()})
			if _, err := v.Verify(ctx, forged); !errors.Is(err, ErrBadDeviceToken) {
				t.Fatalf("round %d, forged token %d: %v, want a bad device token", round, i, err)
			}
		}
		h.clock.Add(DefaultRefusedWindow + time.Second)
	}
	genuine := mustEncode(t, header.Value{Kind: "dc", Token: h.apple.IssueToken(), GeneratedAt: h.clock.Now()})
	if _, err := v.Verify(ctx, genuine); err != nil {
		t.Errorf("a genuine token after the flood: %v", err)
	}
}

// extendFails is a MemoryReplayCache whose Extend fails: a store that
// lost the record (evicted, expired) or failed.
type extendFails struct {
	*MemoryReplayCache
	err error
}

func (c extendFails) Extend(context.Context, string, string, time.Duration) error { return c.err }

// A token Apple said yes to is spent for the whole window before the
// check answers; if that fails, the check fails closed (503), and the
// token is not spent: a retry, once the store works, is checked again.
func TestValidNeedsTheWholeWindow(t *testing.T) {
	for _, storeErr := range []error{ErrRecordLost, errors.New("store down")} {
		h := newHarness(t, oneAttempt)
		cache := memCache(h.clock)
		v := &Verifier{Client: h.client, Replays: extendFails{cache, storeErr}, Now: h.clock.Now}
		value := mustEncode(t, header.Value{Kind: "dc", Token: h.apple.IssueToken(), GeneratedAt: h.clock.Now()})
		res, err := v.Verify(context.Background(), value)
		if res == nil || res.Valid || !errors.Is(err, ErrReplayStore) || !errors.Is(err, storeErr) || Rejected(err) || AppleDown(err) {
			t.Errorf("Extend failing with %v: %+v, %v; want not valid, replay_store", storeErr, res, err)
		}
		mw := Middleware(http.NotFoundHandler(), MiddlewareOptions{Verifier: v, WhenAppleDown: AllowWhenDown})
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set(HeaderName, value)
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, req)
		if rec.Code != 503 {
			t.Errorf("Extend failing with %v: middleware answered %d, want 503", storeErr, rec.Code)
		}
		v.Replays = cache
		if _, err := v.Verify(context.Background(), value); err != nil {
			t.Errorf("retry once the store works: %v, want valid (a 503 does not spend the token)", err)
		}
	}
}
