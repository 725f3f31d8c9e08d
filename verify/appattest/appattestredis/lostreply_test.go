package appattestredis_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// device is an app's key (a devattest software key), registered in a
// store as if Apple had attested it.
type device struct{ key *devattest.Key }

func newDevice(t *testing.T, keys appattest.KeyStore) *device {
	t.Helper()
	k, err := devattest.NewKey("TEAMID1234.com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	rec := &appattest.Key{ID: k.ID(), PublicKey: &k.PrivateKey.PublicKey, AppID: k.AppID, Environment: appattest.Production, Root: appattest.AppleRootName}
	if _, _, err := keys.Register(context.Background(), rec, time.Now()); err != nil {
		t.Fatal(err)
	}
	return &device{key: k}
}

// value makes the device's next header value, as the helper does.
func (d *device) value(t *testing.T) string {
	t.Helper()
	v := header.Value{Kind: header.KindAppAttest, KeyID: d.key.ID(), Nonce: make([]byte, header.NonceLen), GeneratedAt: time.Now()}
	rand.Read(v.Nonce)
	cdh := header.AppAttestClientDataHash(v.KeyID, v.GeneratedAt, v.Nonce)
	var err error
	if v.Token, err = d.key.Assert(cdh[:]); err != nil {
		t.Fatal(err)
	}
	s, err := header.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeBehind opens a Store whose connection goes through p.
func storeBehind(t *testing.T, p *redistest.LossyProxy) *appattestredis.Store {
	t.Helper()
	replay, err := redisreplay.Open(p.URL(), redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replay.Close() })
	return appattestredis.New(replay, appattestredis.Options{})
}

// When Redis ran the counter script but its reply was lost, the check
// answers 503 (key_store), and a 503 spends nothing: the counter it may
// have accepted is given back before the answer, so the client's retry
// of the same header is valid, once. Before, the retry was refused as a
// replay: a network that drops a reply (or a Redis slow enough for the
// check's deadline) burned a genuine assertion.
func TestLostReplyDoesNotBurnCounter(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartLossyProxy(t, srv)
	keys := storeBehind(t, proxy)
	d := newDevice(t, keys)
	v := &verify.Verifier{NoClient: true, Keys: keys, Kinds: []string{header.KindAppAttest}}
	ctx := context.Background()
	if _, err := v.Verify(ctx, d.value(t)); err != nil { // the scripts are loaded: EVALSHA runs them
		t.Fatal(err)
	}
	value := d.value(t)
	proxy.LoseReplyTo("evalsha")
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrKeyStore) || proxy.Armed() {
		t.Fatalf("the counter script's reply lost: %v (proxy still armed: %v), want key_store", err, proxy.Armed())
	}
	if res, err := v.Verify(ctx, value); err != nil {
		t.Fatalf("the retry after a 503: %v, want valid", err)
	} else if res.Counter != 2 {
		t.Fatalf("the retry: counter %d, want 2", res.Counter)
	}
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrReplay) {
		t.Fatalf("a third use: %v, want a replay", err)
	}
}
