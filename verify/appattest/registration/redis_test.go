package registration_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/registration"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// instance is one instance of a service: its own connection to the
// shared Redis, a registration Handler and a Verifier on it.
type instance struct {
	*server
	verifier *verify.Verifier
}

func newInstance(t *testing.T, srv *redistest.Server) *instance {
	t.Helper()
	replay, err := redisreplay.Open(srv.URL(), redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replay.Close() })
	store := appattestredis.New(replay, appattestredis.Options{})
	return &instance{
		server:   newServer(t, registration.Config{Keys: store, Challenges: store, Burst: 100}),
		verifier: &verify.Verifier{NoClient: true, Keys: store, Replays: replay, AllowDev: true, Kinds: []string{header.KindAppAttest}},
	}
}

// TestTwoInstancesOnRedis: a challenge issued by one instance is taken by
// the other; a key registered on one is known to both; assertions are
// accepted once across both, in any order; a revocation made through one
// holds on both.
func TestTwoInstancesOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newInstance(t, srv), newInstance(t, srv)
	key := newDevKey(t, appattest.Development)
	c := a.challenge(t)
	code, body, _ := b.do(t, "POST", "/appattest/register", registerBody(key.ID(), attestFor(t, key, c), c))
	want := fmt.Sprintf(`{"keyId":"%s","environment":"development","status":"active"}`, base64.StdEncoding.EncodeToString(key.ID()))
	expect(t, "register on b with a's challenge", code, body, 201, want)
	code, body, _ = a.do(t, "POST", "/appattest/register", registerBody(key.ID(), attestFor(t, key, c), c))
	expect(t, "the challenge again, on a", code, body, 403, `{"error":"registration_refused","reason":"unknown_challenge"}`)
	code, body, _ = a.do(t, "GET", "/appattest/keys/"+base64.RawURLEncoding.EncodeToString(key.ID()), "")
	expect(t, "status on a", code, body, 200, want)

	ctx := context.Background()
	values := make([]string, 5)
	for i := range values {
		v := header.Value{Kind: header.KindAppAttest, KeyID: key.ID(), Nonce: make([]byte, 16), GeneratedAt: time.Now()}
		rand.Read(v.Nonce)
		cdh := header.AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce)
		v.Token, _ = key.Assert(cdh[:])
		values[i], _ = header.Encode(v)
	}
	for i, n := range []int{2, 0, 4, 1, 3} { // out of order, alternating instances
		inst := []*instance{a, b}[i%2]
		res, err := inst.verifier.Verify(ctx, values[n])
		if err != nil || res.Environment != "development" || res.Counter != uint32(n+1) {
			t.Fatalf("value %d on instance %d: %v, %v", n, i%2, res, err)
		}
	}
	for i, n := range []int{0, 4} {
		if _, err := []*instance{b, a}[i].verifier.Verify(ctx, values[n]); !errors.Is(err, verify.ErrReplay) {
			t.Errorf("value %d again: %v, want a replay", n, err)
		}
	}
	if err := a.keys.Revoke(ctx, key.ID(), time.Now()); err != nil {
		t.Fatal(err)
	}
	next := header.Value{Kind: header.KindAppAttest, KeyID: key.ID(), Nonce: make([]byte, 16), GeneratedAt: time.Now()}
	cdh := header.AppAttestClientDataHash(next.KeyID, next.GeneratedAt, next.Nonce)
	next.Token, _ = key.Assert(cdh[:])
	s, _ := header.Encode(next)
	if _, err := b.verifier.Verify(ctx, s); !errors.Is(err, verify.ErrRevokedKey) {
		t.Errorf("after revocation on a, b: %v, want revoked_key", err)
	}
}
