package pool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// genCtx behaves as context.WithTimeout(parent, d) with its cancel called
// when the call returns, whether or not Done was asked for.
func TestGenCtx(t *testing.T) {
	for _, asksDone := range []bool{false, true} {
		t.Run("timeout", func(t *testing.T) {
			c := newGenCtx(context.Background(), 20*time.Millisecond)
			if asksDone {
				<-c.Done() // the timer closes it
			} else {
				for c.Err() == nil { // the deadline is the input here
					time.Sleep(time.Millisecond)
				}
			}
			if !errors.Is(c.Err(), context.DeadlineExceeded) {
				t.Fatalf("err = %v", c.Err())
			}
			c.cancel()
			if !errors.Is(c.Err(), context.DeadlineExceeded) {
				t.Fatalf("after cancel err = %v, want the first reason kept", c.Err())
			}
		})
		t.Run("parent", func(t *testing.T) {
			parent, stop := context.WithCancel(context.Background())
			c := newGenCtx(parent, time.Hour)
			var done <-chan struct{}
			if asksDone {
				done = c.Done()
			}
			if c.Err() != nil {
				t.Fatalf("err before anything = %v", c.Err())
			}
			stop()
			if done != nil {
				<-done
			}
			if !errors.Is(c.Err(), context.Canceled) {
				t.Fatalf("err = %v", c.Err())
			}
			c.cancel()
		})
		t.Run("cancel", func(t *testing.T) {
			c := newGenCtx(context.Background(), time.Hour)
			if asksDone {
				c.Done()
			}
			c.cancel()
			<-c.Done()
			if !errors.Is(c.Err(), context.Canceled) {
				t.Fatalf("err = %v", c.Err())
			}
			if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
				t.Fatalf("deadline %v, %v", d, ok)
			}
		})
	}
}
