package appattest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRegistersThenAsserts: the first round makes a key, stores its id,
// registers it; from then on every request gets an assertion of it, each
// with its own nonce.
func TestRegistersThenAsserts(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	if d := r.start(); d < 54*time.Minute || d > 66*time.Minute {
		t.Fatalf("after registering, the next check is in %v; want an hour ±10%%", d)
	}
	keys := r.svc.keysMade()
	if len(keys) != 1 || r.keys.stored() != keys[0] {
		t.Fatalf("keys made %v, stored %q", keys, r.keys.stored())
	}
	a, b := r.answer(), r.answer()
	checkAssertion(t, a, keys[0])
	checkAssertion(t, b, keys[0])
	if string(a.Nonce) == string(b.Nonce) {
		t.Fatal("two assertions with one nonce")
	}
	st := r.p.AppAttestStatus()
	if st.State != protocol.AppAttestRegistered || !st.Registered || st.KeyID != keys[0] || st.Environment != "development" ||
		st.Fallback != "dev" || st.Counters.KeysMade != 1 || st.Counters.Registrations != 1 || st.Counters.Assertions < 2 {
		t.Fatalf("status %+v", st)
	}
	if regs, checks := r.srv.counts(); regs != 1 || checks != 0 {
		t.Fatalf("a fresh key: %d registrations, %d checks; want 1 and none", regs, checks)
	}
}

// TestServerDownMeansFallbackThenAppAttest: while the registration server
// is down, requests get the fallback's tokens and the rounds back off,
// doubling, jittered, capped; once it is up, the key is registered.
func TestServerDownMeansFallbackThenAppAttest(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.srv.set(func(s *fakeServer) { s.down = http.StatusServiceUnavailable })
	// Jitter 0.5: each wait is 3/4 of its step: 1s 2s 4s … capped at 1m.
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second,
		12 * time.Second, 24 * time.Second, 45 * time.Second, 45 * time.Second}
	d := r.start()
	for i, w := range want {
		if d != w {
			t.Fatalf("wait %d = %v, want %v", i, d, w)
		}
		if a := r.answer(); a.Kind != header.KindDev {
			t.Fatalf("while the server is down: answer of kind %q", a.Kind)
		}
		if st := r.p.AppAttestStatus(); st.State != protocol.AppAttestFailing || st.LastError == nil {
			t.Fatalf("status while failing: %+v", st)
		}
		if i < len(want)-1 {
			d = r.after(d)
		}
	}
	r.srv.set(func(s *fakeServer) { s.down = 0 })
	if d := r.after(d); d < 54*time.Minute {
		t.Fatalf("after the server came back: next wait %v", d)
	}
	checkAssertion(t, r.answer(), r.svc.keysMade()[0])
	if n := len(r.svc.keysMade()); n != 1 {
		t.Fatalf("%d keys made; a server that is down is no reason for a new key", n)
	}
}

// TestRetryAfterIsHonoured: a 429's Retry-After longer than the backoff
// is waited.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.srv.set(func(s *fakeServer) { s.down, s.retryAfter = http.StatusTooManyRequests, "120" })
	if d := r.start(); d != 2*time.Minute {
		t.Fatalf("wait = %v, want the server's 2m", d)
	}
}

// TestJitterSpreadsTheBackoff: the wait lies between half and all of the
// step, as Jitter says.
func TestJitterSpreadsTheBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		jitter float64
		want   time.Duration
	}{{0, 500 * time.Millisecond}, {0.999, 999500 * time.Microsecond}} {
		r := newRig(t, func(c *Config, _ *rig) { c.Jitter = func() float64 { return tc.jitter } })
		r.srv.set(func(s *fakeServer) { s.down = http.StatusServiceUnavailable })
		if d := r.start(); d != tc.want {
			t.Fatalf("jitter %v: wait %v, want %v", tc.jitter, d, tc.want)
		}
	}
}

// TestRevokedKeyIsReplaced: the periodic check finds the key revoked: a
// new key is made, stored and registered, and assertions use it.
func TestRevokedKeyIsReplaced(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	d := r.start()
	first := r.svc.keysMade()[0]
	r.srv.set(func(s *fakeServer) { s.keys[first] = KeyRevoked })
	r.after(d)
	keys := r.svc.keysMade()
	if len(keys) != 2 || r.keys.stored() != keys[1] {
		t.Fatalf("keys %v, stored %q; want a second key stored", keys, r.keys.stored())
	}
	checkAssertion(t, r.answer(), keys[1])
	if regs, checks := r.srv.counts(); regs != 2 || checks != 1 {
		t.Fatalf("%d registrations, %d checks; want 2 and 1", regs, checks)
	}
}

// TestUnknownKeyIsRegisteredAgain: a server that lost its store does not
// know the key: the same key is registered again.
func TestUnknownKeyIsRegisteredAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	d := r.start()
	r.srv.set(func(s *fakeServer) { clear(s.keys) })
	r.after(d)
	keys := r.svc.keysMade()
	if len(keys) != 1 {
		t.Fatalf("%d keys made; the known key should be registered again", len(keys))
	}
	if regs, checks := r.srv.counts(); regs != 2 || checks != 1 {
		t.Fatalf("%d registrations, %d checks; want 2 and 1", regs, checks)
	}
	checkAssertion(t, r.answer(), keys[0])
}

// TestStoredKeyIsCheckedAtStart: a key id in the store is asked about,
// not replaced; the server's "active" makes it usable without a
// registration.
func TestStoredKeyIsCheckedAtStart(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	known, _ := r.svc.GenerateKey(context.Background())
	r.keys.set(func(m *memKeys) { m.id = known })
	r.srv.set(func(s *fakeServer) { s.keys[known] = KeyActive })
	r.start()
	if regs, checks := r.srv.counts(); regs != 0 || checks != 1 {
		t.Fatalf("%d registrations, %d checks; want a check only", regs, checks)
	}
	checkAssertion(t, r.answer(), known)
	if st := r.p.AppAttestStatus(); st.Counters.KeysMade != 0 || st.LastCheck == nil {
		t.Fatalf("status %+v", st)
	}
}

// TestBadStoredKeyIDMakesANewKey: a stored value that is not a key id is
// replaced with a new key's.
func TestBadStoredKeyIDMakesANewKey(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.keys.set(func(m *memKeys) { m.id = "not a key id" })
	r.start()
	if keys := r.svc.keysMade(); len(keys) != 1 || r.keys.stored() != keys[0] {
		t.Fatalf("keys %v, stored %q", keys, r.keys.stored())
	}
}

// TestKeyStoreFailures: a store that cannot be read is retried, without a
// new key; one that cannot be written leaves the key working, and is
// tried again each round.
func TestKeyStoreFailures(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.keys.set(func(m *memKeys) { m.getErr = errLocked })
	d := r.start()
	if len(r.svc.keysMade()) != 0 || r.answer().Kind != header.KindDev {
		t.Fatal("a locked store must not make a new key")
	}
	r.keys.set(func(m *memKeys) { m.getErr, m.setErr = nil, errLocked })
	d = r.after(d)
	if d < 54*time.Minute {
		t.Fatalf("a store that refuses the id fails the round? wait %v", d)
	}
	checkAssertion(t, r.answer(), r.svc.keysMade()[0])
	if err := r.lastErr(); !errors.Is(err, errLocked) {
		t.Fatalf("the last error does not say the id was not stored: %v", err)
	}
	r.keys.set(func(m *memKeys) { m.setErr = nil })
	r.after(d)
	if r.keys.stored() != r.svc.keysMade()[0] {
		t.Fatal("the key id was not stored on the next round")
	}
}

// TestInvalidKeyOnAssertion: App Attest's invalidKey answers the request
// with the fallback's token and makes (and registers) a new key.
func TestInvalidKeyOnAssertion(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.start()
	old := r.svc.keysMade()[0]
	r.svc.invalidate(old)
	if a := r.answer(); a.Kind != header.KindDev {
		t.Fatalf("answer with an invalid key: kind %q, want the fallback's", a.Kind)
	}
	r.wait() // the round the failure woke
	keys := r.svc.keysMade()
	if len(keys) != 2 || r.keys.stored() != keys[1] {
		t.Fatalf("keys %v, stored %q", keys, r.keys.stored())
	}
	checkAssertion(t, r.answer(), keys[1])
}

// TestInvalidKeyOnAttestation: attestKey's invalidKey makes a new key in
// the same round.
func TestInvalidKeyOnAttestation(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(_ *Config, r *rig) {
		r.svc.attestErr = func(n int) error {
			if n == 0 {
				return dcError(dcErrorInvalidKey)
			}
			return nil
		}
	})
	if d := r.start(); d < 54*time.Minute {
		t.Fatalf("wait %v; the round should have ended registered", d)
	}
	keys := r.svc.keysMade()
	if len(keys) != 2 {
		t.Fatalf("%d keys; want a second after invalidKey", len(keys))
	}
	checkAssertion(t, r.answer(), keys[1])
}

// TestAttestationFailures: serverUnavailable keeps the key for the next
// try; another refusal replaces it.
func TestAttestationFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		keys int
	}{
		{"server unavailable", dcError(dcErrorServerUnavailable), 1},
		{"timeout", &provider.Error{Reason: provider.ReasonTimeout, Err: context.DeadlineExceeded}, 1},
		{"invalid input", dcError(2), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(_ *Config, r *rig) {
				r.svc.attestErr = func(n int) error {
					if n == 0 {
						return tc.err
					}
					return nil
				}
			})
			d := r.start()
			if r.answer().Kind != header.KindDev {
				t.Fatal("a failed attestation registered the key")
			}
			r.after(d)
			if keys := r.svc.keysMade(); len(keys) != tc.keys {
				t.Fatalf("%d keys, want %d", len(keys), tc.keys)
			}
			checkAssertion(t, r.answer(), r.svc.keysMade()[tc.keys-1])
		})
	}
}

// TestRefusedRegistration: a 403 keeps the fallback answering and backs
// off; the reason is in the status.
func TestRefusedRegistration(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.srv.set(func(s *fakeServer) { s.refuse = "dev_not_allowed" })
	r.start()
	st := r.p.AppAttestStatus()
	if st.Registered || st.LastError == nil || !errors.Is(r.lastErr(), ErrRefused) {
		t.Fatalf("status %+v", st)
	}
	if r.answer().Kind != header.KindDev {
		t.Fatal("a refused key answers")
	}
}

// TestAssertionTimeout: an assertion that hangs past AssertTimeout is
// answered by the fallback; the next requests use the fallback without
// asking App Attest until the backoff has passed, and the key is checked.
func TestAssertionTimeout(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *Config, _ *rig) { c.AssertTimeout = 20 * time.Millisecond })
	r.start()
	r.svc.mu.Lock()
	r.svc.assertHang = true
	r.svc.mu.Unlock()
	if a := r.answer(); a.Kind != header.KindDev {
		t.Fatalf("after a hung assertion: kind %q", a.Kind)
	}
	r.wait() // the check the failure asked for
	if _, checks := r.srv.counts(); checks != 1 {
		t.Fatalf("%d checks after the failure, want 1", checks)
	}
	r.svc.mu.Lock()
	r.svc.assertHang = false
	before := r.svc.asserted
	r.svc.mu.Unlock()
	a := r.answer()
	r.svc.mu.Lock()
	after := r.svc.asserted
	r.svc.mu.Unlock()
	if a.Kind != header.KindDev || after != before {
		t.Fatal("during the assertions' backoff App Attest was asked")
	}
	if r.p.Ahead(2) != 2 {
		t.Fatal("during the backoff the fallback's tokens should be made ahead")
	}
	r.clk.Advance(time.Second)
	checkAssertion(t, r.answer(), r.svc.keysMade()[0])
}

// TestAheadFollowsTheKey: assertions are made on demand (or Ready ahead)
// only while the key answers; the fallback's tokens as many as wanted.
func TestAheadFollowsTheKey(t *testing.T) {
	t.Parallel()
	for _, ready := range []int{0, 1, 3} {
		r := newRig(t, func(c *Config, _ *rig) { c.Ready = ready })
		r.srv.set(func(s *fakeServer) { s.down = http.StatusServiceUnavailable })
		d := r.start()
		if got := r.p.Ahead(2); got != 2 {
			t.Fatalf("ready %d, unregistered: Ahead(2) = %d", ready, got)
		}
		r.srv.set(func(s *fakeServer) { s.down = 0 })
		r.after(d)
		if got := r.p.Ahead(2); got != min(ready, 2) {
			t.Fatalf("ready %d, registered: Ahead(2) = %d", ready, got)
		}
	}
}

// TestUnsupportedIsFinal: a start refused as unsupported stops the
// background work; the fallback answers for good.
func TestUnsupportedIsFinal(t *testing.T) {
	t.Parallel()
	starts := 0
	r := newRig(t, func(c *Config, _ *rig) {
		c.Start = func() (Service, error) {
			starts++
			return nil, &provider.Error{Reason: provider.ReasonUnsupported, Msg: "isSupported is false"}
		}
	})
	<-r.p.Start()
	<-r.p.done
	if r.answer().Kind != header.KindDev || starts != 1 {
		t.Fatalf("starts %d", starts)
	}
	if st := r.p.AppAttestStatus(); st.State != protocol.AppAttestUnsupported || st.LastError.Reason != provider.ReasonUnsupported {
		t.Fatalf("status %+v", st)
	}
}

// TestStartRetried: a start that fails for another reason (no GUI
// session yet) is tried again after a backoff.
func TestStartRetried(t *testing.T) {
	t.Parallel()
	fail := true
	r := newRig(t, func(c *Config, r *rig) {
		c.Start = func() (Service, error) {
			if fail {
				fail = false
				return nil, provider.ErrNoGUISession
			}
			return r.svc, nil
		}
	})
	d := r.start()
	if r.p.AppAttestStatus().LastError.Reason != provider.ReasonNoGUISession {
		t.Fatal("status does not say why")
	}
	r.after(d)
	checkAssertion(t, r.answer(), r.svc.keysMade()[0])
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	ok := Config{Start: func() (Service, error) { return nil, nil }, Keys: &memKeys{}, Server: "http://127.0.0.1:1", Fallback: provider.Dev{}}
	for name, change := range map[string]func(c *Config){
		"no start":    func(c *Config) { c.Start = nil },
		"no keys":     func(c *Config) { c.Keys = nil },
		"no server":   func(c *Config) { c.Server = "" },
		"no fallback": func(c *Config) { c.Fallback = nil },
		"ready < 0":   func(c *Config) { c.Ready = -1 },
	} {
		c := ok
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	p, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	p.Close() // never started
}

// TestStartThatHangs: a start that does not return fails the round after
// CallTimeout, is not begun twice, and counts once it returns.
func TestStartThatHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	starts := 0
	r := newRig(t, func(c *Config, r *rig) {
		c.CallTimeout = 20 * time.Millisecond
		c.Start = func() (Service, error) {
			starts++
			<-release
			return r.svc, nil
		}
	})
	d := r.start()
	if err := r.lastErr(); provider.ReasonOf(err) != provider.ReasonProviderError || r.answer().Kind != header.KindDev {
		t.Fatalf("after a hung start: %v", err)
	}
	close(release)
	r.after(d)
	checkAssertion(t, r.answer(), r.svc.keysMade()[0])
	if starts != 1 {
		t.Fatalf("Start ran %d times", starts)
	}
}

// TestCloseDuringAHungStart: Close returns while the start hangs.
func TestCloseDuringAHungStart(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	p, err := New(Config{Start: func() (Service, error) { close(started); <-release; return nil, errors.New("late") },
		Keys: &memKeys{}, Server: "http://127.0.0.1:1", Fallback: provider.Dev{}})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	<-started
	p.Close() // does not wait for Start
}
