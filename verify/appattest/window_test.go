package appattest_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/storetest"
)

// TestWindow: the table every KeyStore's Accept also runs
// (storetest.WindowCases): sequences of counters, each accepted or
// refused as a replay, and the state they leave.
func TestWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range storetest.WindowCases {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			var w appattest.Window
			for i, s := range tt.Steps {
				before := w
				err := w.Accept(s.Counter, tt.Size)
				if (err == nil) != s.OK {
					t.Fatalf("step %d: Accept(%d) = %v, want ok=%v", i, s.Counter, err, s.OK)
				}
				if err != nil && (!errors.Is(err, appattest.ErrReplay) || appattest.Reason(err) != "replay" || w != before) {
					t.Fatalf("step %d: err %v (reason %q), state %+v → %+v", i, err, appattest.Reason(err), before, w)
				}
			}
			if w != tt.Want {
				t.Fatalf("state %+v (Seen %b), want %+v (Seen %b)", w, w.Seen, tt.Want, tt.Want.Seen)
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
