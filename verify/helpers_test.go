package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/attestd/attestd/verify/devicechecktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testTeamID = "TEAMID1234"
	testKeyID  = "ABC123DEFG"
)

// fakeClock is a settable clock shared by the client and the fake Apple.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// harness is a Client wired to a fake Apple, with its seams observed: the
// number of JWT signatures and the backoff waits (which return at once).
type harness struct {
	key    *ecdsa.PrivateKey
	clock  *fakeClock
	apple  *devicechecktest.Server
	client *Client
	signs  atomic.Int32
	// appleSkew is how far the fake Apple's clock runs ahead of ours.
	appleSkew atomic.Int64

	mu     sync.Mutex
	sleeps []time.Duration
}

// oneAttempt configures a Client that asks Apple once per check.
func oneAttempt(c *Config) { c.MaxAttempts = 1 }

// downAtOnce configures a Client whose breaker counts Apple as down after
// one failed attempt, for tests of what an outage lets through.
func downAtOnce(c *Config) { c.Breaker.MinFailures = 1 }

// newHarness starts a fake Apple and a Client for it, configured by each
// non-nil function of configure in turn.
func newHarness(t *testing.T, configure ...func(*Config)) *harness {
	t.Helper()
	h := &harness{key: newKey(t), clock: newFakeClock()}
	h.apple = devicechecktest.NewServer(&h.key.PublicKey, testTeamID, testKeyID)
	h.apple.Now = func() time.Time { return h.clock.Now().Add(time.Duration(h.appleSkew.Load())) }
	t.Cleanup(h.apple.Close)
	cfg := Config{TeamID: testTeamID, KeyID: testKeyID, Key: h.key, BaseURL: h.apple.URL}
	for _, f := range configure {
		if f != nil {
			f(&cfg)
		}
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	c.now = h.clock.Now
	c.sleep = func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.sleeps = append(h.sleeps, d)
		h.mu.Unlock()
		return ctx.Err()
	}
	sign := c.jwt.sign
	c.jwt.sign = func(tok *jwt.Token, k *ecdsa.PrivateKey) (string, error) {
		h.signs.Add(1)
		return sign(tok, k)
	}
	h.client = c
	return h
}

func (h *harness) waits() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}
