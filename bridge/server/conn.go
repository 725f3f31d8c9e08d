package server

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
)

var (
	errTooManyConns = jsonrpc.NewError(jsonrpc.CodeInternal, "too many connections; try again", protocol.ErrorData{Reason: "too_many_connections"})
	errPeerRefused  = jsonrpc.NewError(jsonrpc.CodeAttestation, "connection refused: peer not allowed", protocol.ErrorData{Reason: "peer_refused"})
)

// conn is one client connection: a reader loop that decodes lines and a
// goroutine per call that answers it.
type conn struct {
	s  *Server
	nc *net.UnixConn

	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc

	acceptedAt int64        // unix nanoseconds
	lastActive atomic.Int64 // unix nanoseconds of the last complete line; 0 until the first
	inFlight   atomic.Int64
	sem        chan struct{}
	handlers   sync.WaitGroup

	rmu       sync.Mutex // guards stopping, lingering and the read deadline
	stopping  bool
	lingering bool // read until the deadline stopReadingAt set, then stop

	q     pool.Queue   // this connection's waiting requests
	turns []*pool.Turn // its running turns, oldest first; reader goroutine only

	wmu       sync.Mutex // one answer at a time, whole lines only
	broken    atomic.Bool
	wbuf      []byte    // the reader's buffer for inline answers
	wdeadline time.Time // the write deadline armed; guarded by wmu
}

func newConn(s *Server, nc *net.UnixConn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{s: s, nc: nc, ctx: ctx, cancel: cancel, sem: make(chan struct{}, s.cfg.MaxInFlight)}
	c.acceptedAt = time.Now().UnixNano()
	return c
}

func (c *conn) serve() {
	defer c.nc.Close()
	defer c.cancel()
	log := c.s.cfg.Logger
	if err := c.checkPeer(); err != nil {
		c.s.stats.refused.Add(1)
		log.Warn("refused a peer", "err", err)
		c.write(jsonrpc.EncodeError(jsonrpc.ID{}, errPeerRefused))
		return
	}
	lr := jsonrpc.NewLineReader(c.nc, c.s.cfg.MaxLine)
	// The idle deadline is armed lazily: IdleTimeout after the line that
	// armed it, and moved on only when it passes, to IdleTimeout after
	// the last line, so the hot path sets no deadline per line.
	keep := c.armReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	for keep {
		line, err := lr.ReadLine()
		if err != nil {
			if errors.Is(err, jsonrpc.ErrLineTooLong) {
				log.Warn("closing a connection: request line too long", "max", c.s.cfg.MaxLine)
				c.write(jsonrpc.EncodeError(jsonrpc.ID{}, err))
				break
			}
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			if timeout && !c.isStopping() {
				now := time.Now()
				if c.inFlight.Load() > 0 {
					keep = c.armReadDeadline(now.Add(c.s.cfg.IdleTimeout)) // still answering: not idle
					continue
				}
				if last := c.lastActive.Load(); last != 0 {
					if until := time.Unix(0, last).Add(c.s.cfg.IdleTimeout); until.After(now) {
						keep = c.armReadDeadline(until)
						continue
					}
				}
			}
			if !errors.Is(err, io.EOF) && !timeout && !c.broken.Load() {
				log.Debug("connection read failed", "err", err)
			}
			break
		}
		now := time.Now()
		c.lastActive.Store(now.UnixNano())
		keep = c.dispatch(line, now)
	}
	c.handlers.Wait()
	c.endTurns()
}

func (c *conn) checkPeer() error {
	if err := socketCheckPeerUID(c.nc, c.s.uid); err != nil {
		return err
	}
	if c.s.cfg.CheckPeer != nil {
		return c.s.cfg.CheckPeer(c.nc)
	}
	return nil
}

// armReadDeadline sets the read deadline to t unless the connection is
// stopping or lingering until a set time; it reports whether to keep
// reading.
func (c *conn) armReadDeadline(t time.Time) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.stopping {
		return false
	}
	if c.lingering {
		return true // keep the deadline stopReadingAt set
	}
	c.nc.SetReadDeadline(t)
	return true
}

// stopReading makes the reader loop finish after the line it is reading;
// requests already read are still answered.
func (c *conn) stopReading() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.stopping = true
	c.nc.SetReadDeadline(time.Now())
}

// stopReadingAt makes the reader stop at until: at once when until is
// not after now (as stopReading), else it goes on reading and answering
// lines until then and stops at the first read that reaches it.
func (c *conn) stopReadingAt(until, now time.Time) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.stopping {
		return
	}
	if !until.After(now) {
		c.stopping = true
		c.nc.SetReadDeadline(now)
		return
	}
	c.lingering = true
	c.nc.SetReadDeadline(until)
}

func (c *conn) isStopping() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.stopping || c.lingering
}

// evict closes an idle connection to make room for a new one.
func (c *conn) evict() {
	c.stopReading()
	c.nc.Close()
}

// refuse answers a connection that will not be served and closes it.
func (c *conn) refuse(err *jsonrpc.Error) {
	defer c.nc.Close()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(jsonrpc.EncodeError(jsonrpc.ID{}, err))
}

// dispatch handles one line, read at now; it reports whether to keep
// reading.
func (c *conn) dispatch(line []byte, now time.Time) bool {
	c.s.stats.requests.Add(1)
	hotID, hot := scanGenerate(line)
	if hot {
		// The hot line, with a token ready: answered here without
		// decoding the line, a goroutine, a context or a timer.
		if tok, ok := c.s.tryToken(); ok {
			c.s.served(hotID, tok, time.Time{})
			c.wbuf = appendTokenAnswer(c.wbuf[:0], hotID, tok)
			return c.writeAt(c.wbuf, now)
		}
	}
	msg, id, err := jsonrpc.Decode(line)
	if err != nil {
		c.s.stats.errors.Add(1)
		c.s.cfg.Logger.Debug("bad request line", "err", err, "id", id.String())
		return c.write(jsonrpc.EncodeError(id, err))
	}
	req, ok := msg.(*jsonrpc.Request)
	if !ok {
		c.s.cfg.Logger.Debug("ignored a response from a client", "id", id.String())
		return true
	}
	if req.Method == protocol.MethodWarm {
		return c.warm(req)
	}
	if !req.IsCall {
		if req.Method == protocol.MethodInitialize {
			c.s.cfg.Tokens.Warm()
		}
		return true // other notifications are ignored
	}
	if !hot { // the hot line found none ready just now
		if line, ok := c.s.answerReady(req); ok {
			// A token was ready: answer on the reader goroutine, with no
			// goroutine, context or timer for the request.
			return c.write(line)
		}
	}
	return c.handle(func(ctx context.Context) []byte { return c.s.answer(ctx, req, &c.q) })
}

// handle runs answer on a goroutine of its own, once one of the
// connection's MaxInFlight places is free, and writes the line it
// returns; it reports whether to keep reading.
func (c *conn) handle(answer func(ctx context.Context) []byte) bool {
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		return false
	}
	c.inFlight.Add(1)
	c.handlers.Add(1)
	go func() {
		defer c.handlers.Done()
		defer func() { <-c.sem; c.inFlight.Add(-1) }()
		c.write(answer(c.ctx))
	}()
	return true
}

// write sends one whole line. On failure it closes the connection, which
// ends the reader loop; it reports whether the connection is still usable.
func (c *conn) write(line []byte) bool { return c.writeAt(line, time.Now()) }

// writeAt is write for a caller that has just read the clock: start is
// now, give or take the microseconds since.
func (c *conn) writeAt(line []byte, start time.Time) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken.Load() {
		return false
	}
	// The write deadline is armed lazily too: only once the last one has
	// passed. A write that meets an earlier deadline goes on until it has
	// itself been blocked for WriteTimeout.
	if !start.Before(c.wdeadline) {
		c.wdeadline = start.Add(c.s.cfg.WriteTimeout)
		c.nc.SetWriteDeadline(c.wdeadline)
	}
	for {
		n, err := c.nc.Write(line)
		if err == nil {
			return true
		}
		line = line[n:]
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if until := start.Add(c.s.cfg.WriteTimeout); time.Now().Before(until) {
				c.wdeadline = until
				c.nc.SetWriteDeadline(until)
				continue
			}
		}
		c.broken.Store(true)
		c.s.cfg.Logger.Debug("closing a connection: write failed", "err", err)
		c.cancel()
		c.nc.Close()
		return false
	}
}
