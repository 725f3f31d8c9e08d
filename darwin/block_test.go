package darwin

import (
	"sync"
	"testing"
)

func TestBlockRelease(t *testing.T) {
	// Each step is "call" (Apple runs the block) or "ret" (the Apple call
	// returns); want lists who releases at each step.
	tests := []struct {
		name  string
		steps []string
		want  []bool
	}{
		{"completion after the call returned", []string{"ret", "call"}, []bool{false, true}},
		{"completion during the call", []string{"call", "ret"}, []bool{false, true}},
		{"never completed", []string{"ret"}, []bool{false}},
		{"double completion after return", []string{"ret", "call", "call"}, []bool{false, true, false}},
		{"double completion during the call", []string{"call", "call", "ret"}, []bool{false, false, true}},
		{"completion during and after the call", []string{"call", "ret", "call"}, []bool{false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r blockRelease
			for i, step := range tt.steps {
				var got bool
				if step == "call" {
					got = r.called()
				} else {
					got = r.returned()
				}
				if got != tt.want[i] {
					t.Fatalf("step %d (%s) releases = %v, want %v", i, step, got, tt.want[i])
				}
			}
		})
	}
}

func TestBlockReleaseRace(t *testing.T) {
	// Whatever the interleaving, exactly one side releases.
	for range 1000 {
		var (
			r        blockRelease
			wg       sync.WaitGroup
			releases [2]bool
		)
		wg.Add(2)
		go func() { defer wg.Done(); releases[0] = r.called() }()
		go func() { defer wg.Done(); releases[1] = r.returned() }()
		wg.Wait()
		if releases[0] == releases[1] {
			t.Fatalf("releases = %v, want exactly one", releases)
		}
	}
}
