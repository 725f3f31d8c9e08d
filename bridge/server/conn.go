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
)

var (
	errTooManyConns = jsonrpc.NewError(jsonrpc.CodeInternal, "too many connections; try again", map[string]string{"reason": "too_many_connections"})
	errPeerRefused  = jsonrpc.NewError(jsonrpc.CodeAttestation, "connection refused: peer not allowed", map[string]string{"reason": "peer_refused"})
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

	rmu      sync.Mutex // guards stopping and the read deadline
	stopping bool

	wmu    sync.Mutex // one answer at a time, whole lines only
	broken atomic.Bool
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
	for {
		if !c.armReadDeadline() {
			break
		}
		line, err := lr.ReadLine()
		if err != nil {
			if errors.Is(err, jsonrpc.ErrLineTooLong) {
				log.Warn("closing a connection: request line too long", "max", c.s.cfg.MaxLine)
				c.write(jsonrpc.EncodeError(jsonrpc.ID{}, err))
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.inFlight.Load() > 0 && !c.isStopping() {
				continue // still answering: not idle
			}
			if !errors.Is(err, io.EOF) && !(errors.As(err, &ne) && ne.Timeout()) && !c.broken.Load() {
				log.Debug("connection read failed", "err", err)
			}
			break
		}
		c.lastActive.Store(time.Now().UnixNano())
		if !c.dispatch(line) {
			break
		}
	}
	c.handlers.Wait()
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

// armReadDeadline sets the idle deadline unless the connection is
// stopping; it reports whether to keep reading.
func (c *conn) armReadDeadline() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.stopping {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
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

func (c *conn) isStopping() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.stopping
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

// dispatch handles one line; it reports whether to keep reading.
func (c *conn) dispatch(line []byte) bool {
	c.s.stats.requests.Add(1)
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
	if !req.IsCall {
		c.s.notify(req)
		return true
	}
	if line, ok := c.s.answerReady(req); ok {
		// A token was ready: answer on the reader goroutine, with no
		// goroutine, context or timer for the request.
		return c.write(line)
	}
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
		c.write(c.s.answer(c.ctx, req))
	}()
	return true
}

// write sends one whole line. On failure it closes the connection, which
// ends the reader loop; it reports whether the connection is still usable.
func (c *conn) write(line []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken.Load() {
		return false
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	if _, err := c.nc.Write(line); err != nil {
		c.broken.Store(true)
		c.s.cfg.Logger.Debug("closing a connection: write failed", "err", err)
		c.cancel()
		c.nc.Close()
		return false
	}
	return true
}
