package appattestsim_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/appattest"
	"github.com/attestd/attestd/internal/appattestsim"
	"github.com/attestd/attestd/internal/appattestsim/regtest"
	vappattest "github.com/attestd/attestd/verify/appattest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const appID = "ABCDE12345.dev.attestd.sim"

// The log lines the tests wait for: the provider's events.
const (
	logRegistered = "App Attest: key registered"
	logRevoked    = "App Attest: the server revoked the key"
	logUnknown    = "App Attest: the server does not know the key"
	logFailed     = "App Attest: background work failed"
)

// fast makes the provider's background work quick for tests, and its
// bounds on each call generous: a loaded machine must not turn an
// assertion into a fallback the test did not ask for.
func fast(c *appattest.Config) {
	c.BackoffMin, c.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	c.CallTimeout, c.AssertTimeout = 20*time.Second, 20*time.Second
}

// newSim returns a simulated provider registering with srv, and the
// watch on its log.
func newSim(t *testing.T, srv *regtest.Server, change func(c *appattestsim.Config)) (*appattestsim.Sim, regtest.Events) {
	t.Helper()
	w := regtest.NewEvents()
	cfg := appattestsim.Config{AppID: appID, Server: srv.URL, Logger: slog.New(w), Provider: fast}
	if change != nil {
		change(&cfg)
	}
	s, err := appattestsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, w
}

func generate(t *testing.T, p provider.Provider) provider.Answer {
	t.Helper()
	a, err := p.Generate(context.Background())
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return a
}

// encode is the header value the pool would make of a.
func encode(t *testing.T, a provider.Answer) string {
	t.Helper()
	v, err := a.Encode("dev.attestd.sim", "ABCDE12345")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSimRegistersWithARealCheck: the simulator's key is attested by the
// development root and registered with a server that verifies it; every
// assertion then verifies against the registered key, in any order, and
// once only.
func TestSimRegistersWithARealCheck(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	s, w := newSim(t, srv, nil)
	s.Start()
	key := srv.Expect(t, "register", "")
	w.Wait(t, logRegistered, 20*time.Second)
	var values []string
	for range 6 {
		a := generate(t, s)
		if a.Kind != header.KindAppAttest {
			t.Fatalf("answer of kind %q after registration", a.Kind)
		}
		values = append(values, encode(t, a))
	}
	slices.Reverse(values) // out of order
	for i, v := range values {
		id, err := srv.Check(v)
		if err != nil || id != key {
			t.Fatalf("value %d: key %s, %v; want %s", i, id, err, key)
		}
	}
	if _, err := srv.Check(values[2]); !errors.Is(err, vappattest.ErrReplay) {
		t.Fatalf("a value checked twice: %v, want a replay", err)
	}
	st := s.AppAttestStatus()
	if !st.Registered || st.KeyID != key || st.Environment != "development" || st.Fallback != "dev" {
		t.Fatalf("status %+v", st)
	}
	if stored, _ := s.Keys.Get(context.Background()); stored != key {
		t.Fatalf("stored key id %q, want %q", stored, key)
	}
}

// TestSimServerDownMeansDevTokens: while the registration server is down,
// answers are development tokens; once it is up, App Attest.
func TestSimServerDownMeansDevTokens(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	srv.SetDown(true)
	s, w := newSim(t, srv, nil)
	<-s.Start()
	w.Wait(t, logFailed, 20*time.Second)
	for range 3 {
		if a := generate(t, s); a.Kind != header.KindDev {
			t.Fatalf("while the server is down: kind %q", a.Kind)
		}
	}
	if st := s.AppAttestStatus(); st.Registered || st.LastError == nil || st.LastError.Message == "" {
		t.Fatalf("status while down: %+v", st)
	}
	srv.SetDown(false)
	w.Wait(t, logRegistered, 20*time.Second)
	if _, err := srv.Check(encode(t, generate(t, s))); err != nil {
		t.Fatal(err)
	}
}

// TestSimRevokedKey: a key the server revokes is replaced by a new one,
// registered again; the old key's assertions are refused, the new one's
// accepted.
func TestSimRevokedKey(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	s, w := newSim(t, srv, func(c *appattestsim.Config) {
		c.Provider = func(c *appattest.Config) { fast(c); c.CheckEvery = 30 * time.Millisecond }
	})
	s.Start()
	old := srv.Expect(t, "register", "")
	w.Wait(t, logRegistered, 20*time.Second)
	oldValue := encode(t, generate(t, s))
	srv.Revoke(old)
	w.Wait(t, logRevoked, 20*time.Second)
	w.Wait(t, logRegistered, 20*time.Second)
	if _, err := srv.Check(oldValue); err == nil {
		t.Fatal("the revoked key's assertion was accepted")
	}
	id, err := srv.Check(encode(t, generate(t, s)))
	if err != nil || id == old {
		t.Fatalf("after the revocation: key %s, %v", id, err)
	}
	if n := len(s.Service.KeyIDs()); n != 2 {
		t.Fatalf("%d keys made, want 2", n)
	}
}

// TestSimUnknownKey: a server that lost its store gets the same key
// registered again.
func TestSimUnknownKey(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	s, w := newSim(t, srv, func(c *appattestsim.Config) {
		c.Provider = func(c *appattest.Config) { fast(c); c.CheckEvery = 30 * time.Millisecond }
	})
	s.Start()
	key := srv.Expect(t, "register", "")
	w.Wait(t, logRegistered, 20*time.Second)
	srv.Forget()
	w.Wait(t, logUnknown, 20*time.Second)
	if again := srv.Expect(t, "register", ""); again != key {
		t.Fatalf("registered %s again, want the same key %s", again, key)
	}
	w.Wait(t, logRegistered, 20*time.Second)
	if id, err := srv.Check(encode(t, generate(t, s))); err != nil || id != key {
		t.Fatalf("key %s, %v", id, err)
	}
}

// TestSimInvalidKey: App Attest's invalidKey (a restore) answers that
// request with a development token and makes a new key.
func TestSimInvalidKey(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	s, w := newSim(t, srv, nil)
	s.Start()
	old := srv.Expect(t, "register", "")
	w.Wait(t, logRegistered, 20*time.Second)
	s.Service.Invalidate(old)
	if a := generate(t, s); a.Kind != header.KindDev {
		t.Fatalf("with an invalid key: kind %q", a.Kind)
	}
	// The old key's registration may be seen again (a first attempt whose
	// answer came too late on a loaded machine); the new key's must come.
	for i := 0; srv.Expect(t, "register", "") == old; i++ {
		if i == 10 {
			t.Fatal("the invalid key was registered again and again, no new key")
		}
	}
	w.Wait(t, logRegistered, 20*time.Second)
	if _, err := srv.Check(encode(t, generate(t, s))); err != nil {
		t.Fatal(err)
	}
}

// TestSimAssertionTimeout: an assertion slower than the provider's
// assertion timeout is answered by the fallback, and counted.
func TestSimAssertionTimeout(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, appID)
	s, w := newSim(t, srv, func(c *appattestsim.Config) {
		c.Latency = 100 * time.Millisecond
		c.Fallback = provider.Dev{}
		c.Provider = func(c *appattest.Config) { fast(c); c.AssertTimeout = 10 * time.Millisecond }
	})
	s.Start()
	w.Wait(t, logRegistered, 20*time.Second)
	if a := generate(t, s); a.Kind != header.KindDev {
		t.Fatalf("after an assertion timeout: kind %q", a.Kind)
	}
	if st := s.AppAttestStatus(); st.Counters.AssertionFailures != 1 || st.LastError == nil || st.LastError.Reason != provider.ReasonTimeout {
		t.Fatalf("status %+v", st)
	}
}

func TestSimConfigRefused(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]appattestsim.Config{
		"no app id":        {Server: "http://127.0.0.1:1"},
		"no server":        {AppID: appID},
		"negative latency": {AppID: appID, Server: "http://127.0.0.1:1", Latency: -1},
	} {
		if _, err := appattestsim.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
