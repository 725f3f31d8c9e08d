package stdio

import (
	"io"
	"os"
	"sync/atomic"
	"time"
)

// clientChunk is the largest single write to the client, so that a client
// that reads slowly is seen to make progress (see drain). Writes of this
// size cost no measurable throughput against whole 64 KiB flushes.
const clientChunk = 16 << 10

// drain tracks the relay of the child's output once the child has
// exited. The output then ends only when no grandchild holds it, and the
// client may read it slowly: Run gives up on a grandchild that holds the
// output without writing to it for ExitGrace, and on a client that reads
// nothing for ExitGrace, but not on one that is merely slow.
type drain struct {
	exited   atomic.Bool
	grace    time.Duration
	moved    atomic.Int64 // bytes read from the child or written to the client
	inWrite  atomic.Bool  // a write to the client is in progress
	childOut *os.File
	client   io.Writer
}

// start marks the child as exited: from now on a read from its output
// that waits grace for data fails with os.ErrDeadlineExceeded.
func (d *drain) start() {
	d.exited.Store(true)
	d.childOut.SetReadDeadline(time.Now().Add(d.grace))
}

// stalled reports whether the relay is stuck on the client: a write to it
// is in progress and no byte has moved since the last call, which
// returned last. (A read from the child times out by itself.)
func (d *drain) stalled(last int64) (bool, int64) {
	n := d.moved.Load()
	return n == last && d.inWrite.Load(), n
}

// childReader reads the child's output for the relay.
type childReader struct{ *drain }

func (r childReader) Read(p []byte) (int, error) {
	if r.exited.Load() {
		r.childOut.SetReadDeadline(time.Now().Add(r.grace))
	}
	n, err := r.childOut.Read(p)
	r.moved.Add(int64(n))
	return n, err
}

// clientWriter writes the relay's output to the client.
type clientWriter struct{ *drain }

func (w clientWriter) Write(p []byte) (int, error) {
	w.inWrite.Store(true)
	defer w.inWrite.Store(false)
	done := 0
	for done < len(p) {
		n, err := w.client.Write(p[done:min(len(p), done+clientChunk)])
		done += n
		w.moved.Add(int64(n))
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
