package verify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

func TestVerifierRefusesReplays(t *testing.T) {
	h := newHarness(t)
	cache := NewMemoryReplayCache()
	cache.now = h.clock.Now
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
	// Past its MaxAge the entry goes; the token is refused as too old.
	h.clock.Add(2 * time.Minute)
	if _, err := v.Verify(ctx, value); !errors.Is(err, ErrTooOld) {
		t.Errorf("after MaxAge: %v", err)
	}
	fresh := mustEncode(t, header.Value{Kind: "dc", Token: []byte("fresh"), GeneratedAt: h.clock.Now()})
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 1 {
		t.Errorf("cache holds %d tokens after the sweep, want 1", cache.Len())
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
			ok, err := cache.Add(context.Background(), ReplayKey([]byte("tok")), time.Now().Add(time.Minute))
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

type failingCache struct{}

func (failingCache) Add(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("store down")
}

func TestReplayCacheFailureIsNotValid(t *testing.T) {
	v := &Verifier{AllowDev: true, Replays: failingCache{}}
	res, err := v.Verify(context.Background(), mustEncode(t, header.Value{Kind: "dev", Token: []byte{1}}))
	if err == nil || res.Valid || Rejected(err) {
		t.Errorf("Verify = %+v, %v; want a failure to check", res, err)
	}
}
