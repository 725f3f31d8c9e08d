// Package storetest is the conformance suite every appattest.KeyStore
// and appattest.ChallengeStore passes: the memory stores and the Redis
// ones run the same tests, and the counter window runs the same table as
// appattest.Window itself (WindowCases), so that no implementation can
// drift from it.
//
// Each test opens two views of one fresh store: two instances sharing
// it (two clients of one Redis), or the same store twice (memory), and
// spreads its calls over both.
package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
)

// OpenKeyStores returns two views of one fresh, empty key store whose
// counter window is windowSize wide (0: the default).
type OpenKeyStores func(t *testing.T, windowSize int) (a, b appattest.KeyStore)

// OpenChallengeStores returns two views of one fresh, empty challenge
// store.
type OpenChallengeStores func(t *testing.T) (a, b appattest.ChallengeStore)

// Step is one counter of a WindowCase and whether it is accepted.
type Step struct {
	Counter uint32
	OK      bool
}

// WindowCase is a sequence of counters for one key, each accepted or
// refused as a replay, and the Window they leave.
type WindowCase struct {
	Name  string
	Size  int // the window's width; 0: appattest.DefaultWindowSize
	Steps []Step
	Want  appattest.Window
}

const maxCounter = ^uint32(0)

// WindowCases is the table appattest.Window and every KeyStore's Accept
// are tested with: in order, out of order, replays, the window's edges,
// jumps, the extremes of the counter, and windows narrower and wider
// than the default.
var WindowCases = []WindowCase{
	{"in order", 0, []Step{{1, true}, {2, true}, {3, true}}, appattest.Window{Highest: 3, Seen: 0b111}},
	{"out of order", 0, []Step{{3, true}, {1, true}, {2, true}}, appattest.Window{Highest: 3, Seen: 0b111}},
	{"a gap, filled later", 0, []Step{{1, true}, {5, true}, {3, true}}, appattest.Window{Highest: 5, Seen: 0b10101}},
	{"replay of the highest", 0, []Step{{1, true}, {2, true}, {2, false}}, appattest.Window{Highest: 2, Seen: 0b11}},
	{"replay below the highest", 0, []Step{{1, true}, {5, true}, {1, false}}, appattest.Window{Highest: 5, Seen: 0b10001}},
	{"the bottom of the window", 0, []Step{{100, true}, {37, true}, {37, false}}, appattest.Window{Highest: 100, Seen: 1<<63 | 1}},
	{"just below the window", 0, []Step{{100, true}, {36, false}}, appattest.Window{Highest: 100, Seen: 1}},
	{"far below the window", 0, []Step{{100, true}, {1, false}}, appattest.Window{Highest: 100, Seen: 1}},
	{"a jump of exactly 64", 0, []Step{{1, true}, {65, true}, {1, false}, {2, true}}, appattest.Window{Highest: 65, Seen: 1<<63 | 1}},
	{"a jump of 63: the first stays in the window", 0, []Step{{1, true}, {64, true}, {1, false}, {2, true}}, appattest.Window{Highest: 64, Seen: 1<<63 | 1<<62 | 1}},
	{"a jump larger than the window", 0, []Step{{1, true}, {2, true}, {1000, true}, {2, false}, {999, true}}, appattest.Window{Highest: 1000, Seen: 0b11}},
	{"a jump larger than 2^32 / 2", 0, []Step{{1, true}, {maxCounter, true}, {1, false}, {maxCounter - 63, true}}, appattest.Window{Highest: maxCounter, Seen: 1<<63 | 1}},
	{"counter 0 once (a new key)", 0, []Step{{0, true}, {0, false}, {1, true}}, appattest.Window{Highest: 1, Seen: 0b11}},
	{"counter 0 after others", 0, []Step{{5, true}, {0, true}, {0, false}}, appattest.Window{Highest: 5, Seen: 0b100001}},
	{"counter max, then max again", 0, []Step{{maxCounter, true}, {maxCounter, false}, {maxCounter - 1, true}}, appattest.Window{Highest: maxCounter, Seen: 0b11}},
	{"counter 0 after max", 0, []Step{{maxCounter, true}, {0, false}}, appattest.Window{Highest: maxCounter, Seen: 1}},
	{"every counter of a full window, then below it", 0, fullWindow(), appattest.Window{Highest: 64, Seen: ^uint64(0)}},
	{"a window of 4", 4, []Step{{10, true}, {7, true}, {6, false}, {8, true}, {7, false}}, appattest.Window{Highest: 10, Seen: 0b1101}},
	{"a window of 4 slides", 4, []Step{{10, true}, {9, true}, {12, true}, {9, false}, {11, true}, {8, false}}, appattest.Window{Highest: 12, Seen: 0b1111}},
	{"a window of 1: strictly growing", 1, []Step{{1, true}, {3, true}, {2, false}, {3, false}, {4, true}}, appattest.Window{Highest: 4, Seen: 1}},
	{"a window over 64 is 64", 1000, []Step{{100, true}, {37, true}, {36, false}}, appattest.Window{Highest: 100, Seen: 1<<63 | 1}},
}

// fullWindow accepts 1…64 in reverse, refuses each again, then 0 (below).
func fullWindow() []Step {
	var s []Step
	for c := uint32(64); c >= 1; c-- {
		s = append(s, Step{c, true})
	}
	for c := uint32(1); c <= 64; c += 9 {
		s = append(s, Step{c, false})
	}
	return append(s, Step{0, false})
}

// NewKey returns a key as VerifyAttestation would: a fresh P-256 key,
// its id, the App ID, the environment and the root given, and a receipt.
func NewKey(t testing.TB, appID string, env appattest.Environment, root string) *appattest.Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(point)
	return &appattest.Key{ID: id[:], PublicKey: &priv.PublicKey, AppID: appID, Environment: env, Root: root,
		Receipt: []byte("receipt 1"), KeyPolicy: []byte{0x30, 0x00}}
}

// at returns a time of the test's clock, whole milliseconds (what a
// shared store keeps), UTC.
func at(ms int64) time.Time { return time.UnixMilli(1_800_000_000_000 + ms).UTC() }

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
