package redisreplay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

func newVerifier(t *testing.T, store *Store) (*verify.Verifier, *devicechecktest.Server) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	apple := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "ABC123DEFG")
	t.Cleanup(apple.Close)
	client, err := verify.NewClient(verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key, BaseURL: apple.URL, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	return &verify.Verifier{Client: client, Replays: store}, apple
}

// When Redis ran the SET NX but its reply was lost, the check answers
// 503; the record it may have made is removed before that (it is this
// check's, by its value), so the client's retry of the same header is
// checked, not refused as a replay, as a 503 promises.
func TestLostReplyDoesNotSpendToken(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartLossyProxy(t, srv)
	store := open(t, &redistest.Server{Socket: proxy.Socket}, Options{})
	v, apple := newVerifier(t, store)
	value, err := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: apple.IssueToken(), GeneratedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	proxy.LoseReplyTo("\r\nSET\r\n")
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrReplayStore) {
		t.Fatalf("SET's reply lost: %v, want replay_store", err)
	}
	if _, err := v.Verify(ctx, value); err != nil {
		t.Fatalf("the retry: %v, want valid", err)
	}
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrReplay) {
		t.Fatalf("a third use: %v, want a replay", err)
	}
}

// Two requests for one token in one process: A has recorded it and waits
// for Apple; B's SET NX finds A's record but its reply is lost, so B
// removes what it may have recorded. That must not be A's record (one id
// per Store made it so), or the token, once A is let through, would pass
// a third time.
func TestLostReplyLeavesAnotherRequestsRecord(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartLossyProxy(t, srv)
	store := open(t, &redistest.Server{Socket: proxy.Socket}, Options{})
	v, apple := newVerifier(t, store)
	token := apple.IssueToken()
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	apple.Respond(func(r devicechecktest.Request) *devicechecktest.Response {
		once.Do(func() { close(arrived); <-release })
		return nil
	})
	value, err := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: token, GeneratedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := v.Verify(ctx, value); first <- err }()
	<-arrived // A's record is made; A waits for Apple
	proxy.LoseReplyTo("\r\nSET\r\n")
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrReplayStore) {
		t.Errorf("B, its reply lost: %v, want replay_store", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("A: %v, want valid", err)
	}
	if _, err := v.Verify(ctx, value); !errors.Is(err, verify.ErrReplay) {
		t.Fatalf("a third use after A was let through: %v, want a replay", err)
	}
}
