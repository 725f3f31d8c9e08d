package appattest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/storetest"
)

// The memory stores pass the suite every store passes; "two instances"
// are the same store twice.
func TestMemoryKeyStore(t *testing.T) {
	t.Parallel()
	storetest.TestKeyStore(t, func(t *testing.T, size int) (a, b appattest.KeyStore) {
		s := &appattest.MemoryKeyStore{WindowSize: size}
		return s, s
	})
}

func TestMemoryChallengeStore(t *testing.T) {
	t.Parallel()
	storetest.TestChallengeStore(t, func(t *testing.T) (a, b appattest.ChallengeStore) {
		s := &appattest.MemoryChallengeStore{}
		return s, s
	})
}

// TestMemoryStoresBounded: a full store fails (503, not a refusal)
// rather than forget; expired challenges make room again.
func TestMemoryStoresBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys := &appattest.MemoryKeyStore{MaxKeys: 2}
	for i := range 3 {
		k := storetest.NewKey(t, "T.app", appattest.Production, appattest.AppleRootName)
		_, _, err := keys.Register(ctx, k, time.Now())
		if full := errors.Is(err, appattest.ErrStoreFull); full != (i == 2) || (err != nil && appattest.Rejected(err)) {
			t.Errorf("key %d: Register = %v", i, err)
		}
	}
	now := time.Unix(1000, 0)
	ch := &appattest.MemoryChallengeStore{MaxEntries: 2, Now: func() time.Time { return now }}
	for i, c := range []string{"a", "b", "c"} {
		err := ch.Put(ctx, c, time.Minute)
		if full := errors.Is(err, appattest.ErrStoreFull); full != (i == 2) {
			t.Errorf("challenge %q: Put = %v", c, err)
		}
	}
	now = now.Add(2 * time.Minute)
	if err := ch.Put(ctx, "d", time.Minute); err != nil {
		t.Errorf("Put once the others expired: %v", err)
	}
	if ok, _ := ch.Take(ctx, "a"); ok {
		t.Errorf("an expired challenge was taken")
	}
	if ok, _ := ch.Take(ctx, "d"); !ok {
		t.Errorf("the new challenge was not taken")
	}
}
