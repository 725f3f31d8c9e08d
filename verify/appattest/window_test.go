package appattest_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/attestd/attestd/verify/appattest"
)

// TestWindow: sequences of counters, each accepted (true) or refused as
// a replay (false), and the state they leave.
func TestWindow(t *testing.T) {
	t.Parallel()
	const max = ^uint32(0)
	type step struct {
		counter uint32
		ok      bool
	}
	for _, tt := range []struct {
		name  string
		size  int
		steps []step
		want  appattest.Window
	}{
		{"in order", 0, []step{{1, true}, {2, true}, {3, true}}, appattest.Window{Highest: 3, Seen: 0b111}},
		{"out of order", 0, []step{{3, true}, {1, true}, {2, true}}, appattest.Window{Highest: 3, Seen: 0b111}},
		{"a gap, filled later", 0, []step{{1, true}, {5, true}, {3, true}}, appattest.Window{Highest: 5, Seen: 0b10101}},
		{"replay of the highest", 0, []step{{1, true}, {2, true}, {2, false}}, appattest.Window{Highest: 2, Seen: 0b11}},
		{"replay below the highest", 0, []step{{1, true}, {5, true}, {1, false}}, appattest.Window{Highest: 5, Seen: 0b10001}},
		{"the bottom of the window", 0, []step{{100, true}, {37, true}, {37, false}}, appattest.Window{Highest: 100, Seen: 1<<63 | 1}},
		{"just below the window", 0, []step{{100, true}, {36, false}}, appattest.Window{Highest: 100, Seen: 1}},
		{"far below the window", 0, []step{{100, true}, {1, false}}, appattest.Window{Highest: 100, Seen: 1}},
		{"a jump of exactly 64", 0, []step{{1, true}, {65, true}, {1, false}, {2, true}}, appattest.Window{Highest: 65, Seen: 1<<63 | 1}},
		{"a jump larger than the window", 0, []step{{1, true}, {2, true}, {1000, true}, {2, false}, {999, true}}, appattest.Window{Highest: 1000, Seen: 0b11}},
		{"a jump larger than 2^32 / 2", 0, []step{{1, true}, {max, true}, {1, false}, {max - 63, true}}, appattest.Window{Highest: max, Seen: 1<<63 | 1}},
		{"counter 0 once (a new key)", 0, []step{{0, true}, {0, false}, {1, true}}, appattest.Window{Highest: 1, Seen: 0b11}},
		{"counter 0 after others", 0, []step{{5, true}, {0, true}, {0, false}}, appattest.Window{Highest: 5, Seen: 0b100001}},
		{"counter max, then max again", 0, []step{{max, true}, {max, false}, {max - 1, true}}, appattest.Window{Highest: max, Seen: 0b11}},
		{"counter 0 after max", 0, []step{{max, true}, {0, false}}, appattest.Window{Highest: max, Seen: 1}},
		{"a window of 4", 4, []step{{10, true}, {7, true}, {6, false}, {8, true}, {7, false}}, appattest.Window{Highest: 10, Seen: 0b1101}},
		{"a window of 4 slides", 4, []step{{10, true}, {9, true}, {12, true}, {9, false}, {11, true}, {8, false}}, appattest.Window{Highest: 12, Seen: 0b1111}},
		{"a window of 1: strictly growing", 1, []step{{1, true}, {3, true}, {2, false}, {3, false}, {4, true}}, appattest.Window{Highest: 4, Seen: 1}},
		{"a window over 64 is 64", 1000, []step{{100, true}, {37, true}, {36, false}}, appattest.Window{Highest: 100, Seen: 1<<63 | 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var w appattest.Window
			for i, s := range tt.steps {
				before := w
				err := w.Accept(s.counter, tt.size)
				if (err == nil) != s.ok {
					t.Fatalf("step %d: Accept(%d) = %v, want ok=%v", i, s.counter, err, s.ok)
				}
				if err != nil && (!errors.Is(err, appattest.ErrReplay) || appattest.Reason(err) != "replay" || w != before) {
					t.Fatalf("step %d: err %v (reason %q), state %+v → %+v", i, err, appattest.Reason(err), before, w)
				}
			}
			if w != tt.want {
				t.Fatalf("state %+v (Seen %b), want %+v (Seen %b)", w, w.Seen, tt.want, tt.want.Seen)
			}
		})
	}
}

// TestWindowModel: random counters near one another, accepted exactly
// when a plain set of every counter seen says they are new and within
// size-1 of the highest.
func TestWindowModel(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 2, 7, 63, 64} {
		var w appattest.Window
		seen := map[uint32]bool{}
		var highest uint32
		for i := range 20000 {
			c := uint32(r.IntN(300))
			if i%1000 == 999 {
				c += uint32(r.IntN(1000)) // a jump now and then
			}
			want := !seen[c] && (len(seen) == 0 || c > highest || highest-c < uint32(size))
			err := w.Accept(c, size)
			if (err == nil) != want {
				t.Fatalf("size %d, step %d: Accept(%d) = %v, want ok=%v (highest %d)", size, i, c, err, want, highest)
			}
			if err == nil {
				seen[c] = true
				highest = max(highest, c)
			}
		}
	}
}
