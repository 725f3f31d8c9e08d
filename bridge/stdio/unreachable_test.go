package stdio

import (
	"context"
	"testing"

	"github.com/attestd/attestd/bridge/provider"
)

// plainSource is a Source with neither optional part; the types below
// add one or both.
type plainSource struct {
	tokens, warms int
	err           error
}

func (s *plainSource) Token(context.Context) (string, error) {
	s.tokens++
	return "", s.err
}
func (s *plainSource) Warm() { s.warms++ }

type waitingSource struct {
	plainSource
	waits int
}

func (s *waitingSource) WaitReady(context.Context) error {
	s.waits++
	return nil
}

type trackingSource struct {
	plainSource
	turns int
}

func (s *trackingSource) TurnStarted()   { s.turns++ }
func (s *trackingSource) TurnCompleted() { s.turns-- }

type fullSource struct {
	waitingSource
	turns int
}

func (s *fullSource) TurnStarted()   { s.turns++ }
func (s *fullSource) TurnCompleted() { s.turns-- }

// OnUnreachable keeps the source's optional methods, and only those it
// has: the bridge decides by them whether it can hold a turn. It warns
// once however often the daemon is unreachable.
func TestOnUnreachableKeepsTheSourcesMethods(t *testing.T) {
	t.Parallel()
	unreachable := &provider.Error{Reason: provider.ReasonDaemonUnreachable, Msg: "dial: no such file"}
	for _, c := range []struct {
		name          string
		src           Source
		waits, tracks bool
	}{
		{"plain", &plainSource{err: unreachable}, false, false},
		{"waits", &waitingSource{plainSource: plainSource{err: unreachable}}, true, false},
		{"tracks", &trackingSource{plainSource: plainSource{err: unreachable}}, false, true},
		{"both", &fullSource{waitingSource: waitingSource{plainSource: plainSource{err: unreachable}}}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			warned := 0
			h := OnUnreachable(c.src, func() { warned++ })
			rw, waits := h.(ReadyWaiter)
			tt, tracks := h.(TurnTracker)
			if waits != c.waits || tracks != c.tracks {
				t.Fatalf("wrapper is a ReadyWaiter %v and a TurnTracker %v; want %v and %v", waits, tracks, c.waits, c.tracks)
			}
			if waits {
				rw.WaitReady(context.Background())
			}
			if tracks {
				tt.TurnStarted()
			}
			h.Warm()
			h.Token(context.Background())
			h.Token(context.Background())
			switch s := c.src.(type) {
			case *waitingSource:
				if s.waits != 1 {
					t.Errorf("WaitReady reached the source %d times", s.waits)
				}
			case *trackingSource:
				if s.turns != 1 {
					t.Errorf("TurnStarted reached the source %d times", s.turns)
				}
			case *fullSource:
				if s.waits != 1 || s.turns != 1 {
					t.Errorf("WaitReady and TurnStarted reached the source %d and %d times", s.waits, s.turns)
				}
			}
			if warned != 1 {
				t.Errorf("onUnreachable was called %d times, want once", warned)
			}
		})
	}
}
