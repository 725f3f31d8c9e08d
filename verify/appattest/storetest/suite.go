package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
)

const appID = "TEAMID1234.com.example.app"

// TestKeyStore runs the KeyStore suite on the stores open makes.
func TestKeyStore(t *testing.T, open OpenKeyStores) {
	t.Run("register, get, register again", func(t *testing.T) { testRegister(t, open) })
	t.Run("conflicts", func(t *testing.T) { testConflict(t, open) })
	t.Run("unknown keys", func(t *testing.T) { testUnknown(t, open) })
	t.Run("revoke", func(t *testing.T) { testRevoke(t, open) })
	t.Run("window table", func(t *testing.T) { testWindowTable(t, open) })
	t.Run("window model", func(t *testing.T) { testWindowModel(t, open) })
	t.Run("concurrent accepts", func(t *testing.T) { testConcurrentAccept(t, open) })
	t.Run("release", func(t *testing.T) { testRelease(t, open) })
	t.Run("list", func(t *testing.T) { testList(t, open) })
}

func testRegister(t *testing.T, open OpenKeyStores) {
	a, b := open(t, 0)
	ctx := ctxOf(t)
	key := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
	rec, created, err := a.Register(ctx, key, at(0))
	if err != nil || !created {
		t.Fatalf("Register = %v, %v; want created", created, err)
	}
	checkRecord(t, "Register", rec, key, appattest.KeyActive, at(0), at(0))
	got, err := b.Get(ctx, key.ID)
	if err != nil {
		t.Fatalf("Get from the other instance: %v", err)
	}
	checkRecord(t, "Get", got, key, appattest.KeyActive, at(0), at(0))
	if got.Window != (appattest.Window{}) {
		t.Errorf("a new key's window is %+v, want none", got.Window)
	}

	// Counters accepted before registering again stay accepted: the key
	// and its counter are the same.
	if err := a.Accept(ctx, key.ID, 5, "check", at(10)); err != nil {
		t.Fatalf("Accept(5): %v", err)
	}
	again := *key
	again.Receipt = []byte("receipt 2")
	rec, created, err = b.Register(ctx, &again, at(20))
	if err != nil || created {
		t.Fatalf("Register again = %v, %v; want an existing key", created, err)
	}
	checkRecord(t, "Register again", rec, &again, appattest.KeyActive, at(0), at(20))
	if err := a.Accept(ctx, key.ID, 5, "check", at(30)); !errors.Is(err, appattest.ErrReplay) {
		t.Errorf("Accept(5) after registering again = %v, want a replay: the window is kept", err)
	}
	got, _ = a.Get(ctx, key.ID)
	if got.Window != (appattest.Window{Highest: 5, Seen: 1}) {
		t.Errorf("window %+v, want counter 5 alone", got.Window)
	}

	// A copy handed out is the caller's.
	got.Receipt[0] ^= 0xff
	got.ID[0] ^= 0xff
	if again, _ := a.Get(ctx, key.ID); again == nil || !bytes.Equal(again.Receipt, []byte("receipt 2")) {
		t.Errorf("changing a record handed out changed the store's")
	}
}

// checkRecord compares a record with the key it was made from.
func checkRecord(t *testing.T, op string, r *appattest.KeyRecord, k *appattest.Key, status appattest.KeyStatus, first, last time.Time) {
	t.Helper()
	switch {
	case r == nil:
		t.Fatalf("%s: no record", op)
	case !bytes.Equal(r.ID, k.ID) || !r.PublicKey.Equal(k.PublicKey):
		t.Errorf("%s: id or public key differ from the key's", op)
	case r.AppID != k.AppID || r.Environment != k.Environment || r.Root != k.Root:
		t.Errorf("%s: %q %q %q, want %q %q %q", op, r.AppID, r.Environment, r.Root, k.AppID, k.Environment, k.Root)
	case !bytes.Equal(r.Receipt, k.Receipt) || !bytes.Equal(r.KeyPolicy, k.KeyPolicy):
		t.Errorf("%s: receipt %q or key policy %x differ from the key's (%q, %x)", op, r.Receipt, r.KeyPolicy, k.Receipt, k.KeyPolicy)
	case r.Status != status:
		t.Errorf("%s: status %q, want %q", op, r.Status, status)
	case !r.FirstSeen.Equal(first) || !r.LastSeen.Equal(last):
		t.Errorf("%s: first seen %v, last seen %v; want %v, %v", op, r.FirstSeen, r.LastSeen, first, last)
	}
}

func testConflict(t *testing.T, open OpenKeyStores) {
	a, b := open(t, 0)
	ctx := ctxOf(t)
	key := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
	if _, _, err := a.Register(ctx, key, at(0)); err != nil {
		t.Fatal(err)
	}
	other := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
	for _, tt := range []struct {
		name   string
		change func(k *appattest.Key)
	}{
		{"another public key", func(k *appattest.Key) { k.PublicKey = other.PublicKey }},
		{"another App ID", func(k *appattest.Key) { k.AppID = "TEAMID1234.com.example.other" }},
		{"another environment", func(k *appattest.Key) { k.Environment = appattest.Development }},
		{"another root", func(k *appattest.Key) { k.Root = "development" }},
	} {
		k := *key
		tt.change(&k)
		if _, _, err := b.Register(ctx, &k, at(1)); !errors.Is(err, appattest.ErrKeyConflict) || appattest.Reason(err) != "key_conflict" {
			t.Errorf("%s: Register = %v, want ErrKeyConflict", tt.name, err)
		}
	}
	got, err := a.Get(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, "Get after the conflicts", got, key, appattest.KeyActive, at(0), at(0))
}

func testUnknown(t *testing.T, open OpenKeyStores) {
	a, _ := open(t, 0)
	ctx := ctxOf(t)
	known := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
	if _, _, err := a.Register(ctx, known, at(0)); err != nil {
		t.Fatal(err)
	}
	for _, id := range [][]byte{NewKey(t, appID, appattest.Production, appattest.AppleRootName).ID, nil, known.ID[:31], append(bytes.Clone(known.ID), 0)} {
		name := fmt.Sprintf("a %d-byte id", len(id))
		if _, err := a.Get(ctx, id); !errors.Is(err, appattest.ErrUnknownKey) || appattest.Reason(err) != "unknown_key" {
			t.Errorf("%s: Get = %v, want ErrUnknownKey", name, err)
		}
		if err := a.Accept(ctx, id, 1, "check", at(1)); !errors.Is(err, appattest.ErrUnknownKey) {
			t.Errorf("%s: Accept = %v, want ErrUnknownKey", name, err)
		}
		if err := a.Revoke(ctx, id, at(1)); !errors.Is(err, appattest.ErrUnknownKey) {
			t.Errorf("%s: Revoke = %v, want ErrUnknownKey", name, err)
		}
	}
	// A key that is not what VerifyAttestation returns is the caller's
	// mistake, not a refusal.
	for _, bad := range []*appattest.Key{nil, {ID: known.ID}, {ID: known.ID[:5], PublicKey: known.PublicKey, AppID: appID, Root: "apple", Environment: appattest.Production}} {
		if _, _, err := a.Register(ctx, bad, at(1)); err == nil || appattest.Rejected(err) {
			t.Errorf("Register(%+v) = %v, want a caller's error", bad, err)
		}
	}
}

func testRevoke(t *testing.T, open OpenKeyStores) {
	a, b := open(t, 0)
	ctx := ctxOf(t)
	key := NewKey(t, appID, appattest.Development, "development")
	if _, _, err := a.Register(ctx, key, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := a.Accept(ctx, key.ID, 1, "check", at(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, key.ID, at(2)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := a.Accept(ctx, key.ID, 2, "check", at(3)); !errors.Is(err, appattest.ErrKeyRevoked) || appattest.Reason(err) != "revoked_key" {
		t.Errorf("Accept after Revoke = %v, want ErrKeyRevoked", err)
	}
	if _, _, err := a.Register(ctx, key, at(4)); !errors.Is(err, appattest.ErrKeyRevoked) {
		t.Errorf("Register after Revoke = %v, want ErrKeyRevoked: a revoked key stays revoked", err)
	}
	if err := a.Revoke(ctx, key.ID, at(5)); err != nil {
		t.Errorf("Revoke again: %v", err)
	}
	got, err := b.Get(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, "Get after Revoke", got, key, appattest.KeyRevoked, at(0), at(1))
	if !got.RevokedAt.Equal(at(2)) {
		t.Errorf("RevokedAt %v, want %v (the first revocation)", got.RevokedAt, at(2))
	}
	if !got.Development() {
		t.Errorf("a key from the development root is not Development()")
	}
}

// testWindowTable runs WindowCases through Accept, alternating between
// the two instances, and checks the state left against the table and
// against appattest.Window.
func testWindowTable(t *testing.T, open OpenKeyStores) {
	for _, tt := range WindowCases {
		t.Run(tt.Name, func(t *testing.T) {
			a, b := open(t, tt.Size)
			ctx := ctxOf(t)
			key := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
			if _, _, err := a.Register(ctx, key, at(0)); err != nil {
				t.Fatal(err)
			}
			var model appattest.Window
			for i, s := range tt.Steps {
				store := []appattest.KeyStore{a, b}[i%2]
				err := store.Accept(ctx, key.ID, s.Counter, "check", at(int64(i+1)))
				if merr := model.Accept(s.Counter, tt.Size); (merr == nil) != s.OK {
					t.Fatalf("the table is wrong: step %d: Window.Accept(%d) = %v, table says ok=%v", i, s.Counter, merr, s.OK)
				}
				if (err == nil) != s.OK {
					t.Fatalf("step %d: Accept(%d) = %v, want ok=%v", i, s.Counter, err, s.OK)
				}
				if err != nil && (!errors.Is(err, appattest.ErrReplay) || appattest.Reason(err) != "replay") {
					t.Fatalf("step %d: Accept(%d) = %v (reason %q), want a replay", i, s.Counter, err, appattest.Reason(err))
				}
			}
			got, err := b.Get(ctx, key.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Window != tt.Want || got.Window != model {
				t.Fatalf("window %+v (Seen %b), want %+v (Seen %b)", got.Window, got.Window.Seen, tt.Want, tt.Want.Seen)
			}
		})
	}
}

// testWindowModel: random counters near one another (and jumps),
// accepted exactly when appattest.Window accepts them.
func testWindowModel(t *testing.T, open OpenKeyStores) {
	for _, size := range []int{1, 7, 64} {
		a, b := open(t, size)
		ctx := ctxOf(t)
		key := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
		if _, _, err := a.Register(ctx, key, at(0)); err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(size), 22))
		var model appattest.Window
		for i := range 600 {
			c := uint32(r.IntN(200))
			if i%100 == 99 {
				c += uint32(r.IntN(1000))
			}
			store := []appattest.KeyStore{a, b}[r.IntN(2)]
			err, want := store.Accept(ctx, key.ID, c, "check", at(int64(i))), model.Accept(c, size)
			if (err == nil) != (want == nil) {
				t.Fatalf("size %d, step %d: Accept(%d) = %v; Window.Accept says %v (window %+v)", size, i, c, err, want, model)
			}
		}
		if got, err := a.Get(ctx, key.ID); err != nil || got.Window != model {
			t.Fatalf("size %d: window %+v, %v; Window says %+v", size, got.Window, err, model)
		}
	}
}

// testConcurrentAccept: many goroutines on both instances accept the
// same counters at once; each counter is accepted exactly once.
func testConcurrentAccept(t *testing.T, open OpenKeyStores) {
	a, b := open(t, 0)
	ctx := ctxOf(t)
	key := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
	if _, _, err := a.Register(ctx, key, at(0)); err != nil {
		t.Fatal(err)
	}
	const counters, workers = 40, 8
	var accepted [counters + 1]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		store := []appattest.KeyStore{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := uint32(1); c <= counters; c++ {
				err := store.Accept(ctx, key.ID, c, "check", at(int64(c)))
				switch {
				case err == nil:
					accepted[c].Add(1)
				case !errors.Is(err, appattest.ErrReplay):
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for c := 1; c <= counters; c++ {
		if n := accepted[c].Load(); n != 1 {
			t.Errorf("counter %d accepted %d times by %d concurrent callers, want once", c, n, workers)
		}
	}
}

// testRelease: Release puts the window back as it was before the
// key's latest accept when that accept is the check's, and otherwise
// changes nothing, so no counter accepted by another check is ever
// given back.
func testRelease(t *testing.T, open OpenKeyStores) {
	a, b := open(t, 0)
	ctx := ctxOf(t)
	key := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
	if _, _, err := a.Register(ctx, key, at(0)); err != nil {
		t.Fatal(err)
	}
	accept := func(s appattest.KeyStore, c uint32, check string, ok bool) {
		t.Helper()
		if err := s.Accept(ctx, key.ID, c, check, at(int64(c))); (err == nil) != ok || (err != nil && !errors.Is(err, appattest.ErrReplay)) {
			t.Fatalf("Accept(%d, %q) = %v, want ok=%v", c, check, err, ok)
		}
	}
	release := func(s appattest.KeyStore, id []byte, check string, want bool) {
		t.Helper()
		if got, err := s.Release(ctx, id, check); got != want || err != nil {
			t.Fatalf("Release(%q) = %v, %v; want %v", check, got, err, want)
		}
	}
	window := func(want appattest.Window) {
		t.Helper()
		if rec, err := b.Get(ctx, key.ID); err != nil || rec.Window != want {
			t.Fatalf("window %+v, %v; want %+v", rec.Window, err, want)
		}
	}

	accept(a, 1, "first", true)
	release(b, key.ID, "first", true) // from the other instance
	window(appattest.Window{})
	release(a, key.ID, "first", false) // once
	accept(b, 1, "again", true)        // the counter given back is good once more
	accept(a, 1, "replay", false)

	accept(a, 2, "two", true)
	accept(b, 3, "three", true)
	release(a, key.ID, "two", false) // not the latest: 2 stays spent
	accept(a, 2, "replay", false)
	release(a, key.ID, "replay", false) // a refusal accepted nothing
	release(b, key.ID, "three", true)
	window(appattest.Window{Highest: 2, Seen: 0b11})
	accept(a, 3, "three again", true)

	// An accept that slid the window far is undone whole: the counters
	// that fell out of it are in it again, and still spent.
	accept(a, 1000, "jump", true)
	release(a, key.ID, "jump", true)
	window(appattest.Window{Highest: 3, Seen: 0b111})
	accept(b, 2, "replay", false)
	accept(b, 1000, "jump again", true)

	// Neither an unknown key nor an empty check releases anything, and
	// a revoked key stays revoked.
	release(a, NewKey(t, appID, appattest.Production, appattest.AppleRootName).ID, "jump again", false)
	release(a, key.ID, "", false)
	if err := b.Revoke(ctx, key.ID, at(2000)); err != nil {
		t.Fatal(err)
	}
	release(a, key.ID, "jump again", true)
	if err := a.Accept(ctx, key.ID, 1000, "after revoke", at(2001)); !errors.Is(err, appattest.ErrKeyRevoked) {
		t.Fatalf("Accept after Revoke and Release = %v, want ErrKeyRevoked", err)
	}
}

func testList(t *testing.T, open OpenKeyStores) {
	a, b := open(t, 0)
	ctx := ctxOf(t)
	want := map[string]bool{}
	for i := range 5 {
		k := NewKey(t, appID, appattest.Production, appattest.AppleRootName)
		if _, _, err := a.Register(ctx, k, at(int64(i))); err != nil {
			t.Fatal(err)
		}
		want[string(k.ID)] = true
	}
	got := map[string]bool{}
	if err := b.List(ctx, func(r *appattest.KeyRecord) bool {
		got[string(r.ID)] = r.Status == appattest.KeyActive && r.PublicKey != nil
		return true
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("List gave %d keys, want %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("key %x missing from List, or listed without its status and key", id)
		}
	}
	n := 0
	if err := b.List(ctx, func(*appattest.KeyRecord) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Errorf("List stopped by yield after %d records, %v; want 2", n, err)
	}
}

// TestChallengeStore runs the ChallengeStore suite on the stores open
// makes.
func TestChallengeStore(t *testing.T, open OpenChallengeStores) {
	t.Run("single use", func(t *testing.T) {
		a, b := open(t)
		ctx := ctxOf(t)
		if err := a.Put(ctx, "challenge-1", time.Minute); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if ok, err := b.Take(ctx, "challenge-1"); !ok || err != nil {
			t.Fatalf("Take from the other instance = %v, %v; want true", ok, err)
		}
		for _, s := range []appattest.ChallengeStore{a, b} {
			if ok, err := s.Take(ctx, "challenge-1"); ok || err != nil {
				t.Errorf("Take again = %v, %v; want false: single use", ok, err)
			}
		}
		if ok, err := a.Take(ctx, "never issued"); ok || err != nil {
			t.Errorf("Take of a challenge never issued = %v, %v", ok, err)
		}
		if err := a.Put(ctx, "c", 0); err == nil {
			t.Errorf("Put with a zero ttl succeeded")
		}
	})
	t.Run("concurrent takes", func(t *testing.T) {
		a, b := open(t)
		ctx := ctxOf(t)
		if err := a.Put(ctx, "contested", time.Minute); err != nil {
			t.Fatal(err)
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := []appattest.ChallengeStore{a, b}[i%2].Take(ctx, "contested"); ok && err == nil {
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Errorf("%d of 16 concurrent takes got the challenge, want 1", won.Load())
		}
	})
	t.Run("expiry", func(t *testing.T) { testChallengeExpiry(t, open) })
}

// testChallengeExpiry issues challenges that expire in a millisecond and
// takes them one after another: once the time has passed, an issued
// challenge is no longer taken. The wait is bounded.
func testChallengeExpiry(t *testing.T, open OpenChallengeStores) {
	a, b := open(t)
	ctx := ctxOf(t)
	const n = 200
	for i := range n {
		if err := a.Put(ctx, fmt.Sprint("short-", i), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		if ok, err := b.Take(ctx, fmt.Sprint("short-", i)); err != nil {
			t.Fatal(err)
		} else if !ok {
			return // expired, as it should
		}
		<-tick.C
	}
	t.Fatalf("%d challenges with a 1 ms lifetime were all taken over %v", n, n*5*time.Millisecond)
}
