// Package client talks to attestd's socket. One Client keeps one connection,
// shared by concurrent calls (requests are pipelined and matched by id), and
// redials after the daemon restarts.
//
// Hints (Warm, TurnStarted, TurnCompleted) are notifications sent in the
// order they were given by one goroutine, never blocking the caller; when
// 64 are already waiting to be sent, more are dropped. The daemon ends a
// connection's turns when it closes, so a turn cannot outlive the client.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// maxAnswerLine bounds one answer from the daemon.
const maxAnswerLine = 4 << 20

// DialTimeout bounds connecting to the socket.
const DialTimeout = time.Second

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("client is closed")

// Client calls the daemon. It is safe for concurrent use.
type Client struct {
	path   string
	nextID atomic.Int64

	mu     sync.Mutex
	sess   *session
	closed bool
	notes  chan note      // hints to send, in order; nil until the first
	bg     sync.WaitGroup // the hint sender
}

// maxNotes bounds the hints waiting to be sent.
const maxNotes = 64

// note is a hint to send, or (line nil) a marker whose done is closed
// once every hint before it has been written.
type note struct {
	line []byte
	done chan struct{}
}

// New returns a client for the socket at path. It connects on first use.
func New(path string) *Client { return &Client{path: path} }

// Path returns the socket path.
func (c *Client) Path() string { return c.path }

// Token asks for one header value ("v1.…"). Failures carry a provider
// reason: the daemon's data.reason, or daemon_unreachable when the socket
// does not answer.
func (c *Client) Token(ctx context.Context) (string, error) {
	var res protocol.GenerateResult
	if err := c.Call(ctx, protocol.MethodGenerate, struct{}{}, &res); err != nil {
		return "", err
	}
	if res.Token == "" {
		return "", &provider.Error{Reason: provider.ReasonProviderError, Msg: "daemon answered without a token"}
	}
	return res.Token, nil
}

// Status returns the daemon's attestation/status result.
func (c *Client) Status(ctx context.Context) (protocol.StatusResult, error) {
	var res protocol.StatusResult
	err := c.Call(ctx, protocol.MethodStatus, struct{}{}, &res)
	return res, err
}

// Warm tells the daemon, without waiting, to have tokens ready soon.
// Failures are ignored: the following Token call reports them.
func (c *Client) Warm() { c.hint(protocol.WarmParams{}) }

// TurnStarted tells the daemon, without waiting, that a turn has begun,
// so it keeps more tokens ready until TurnCompleted. Failures are
// ignored.
func (c *Client) TurnStarted() { c.hint(protocol.WarmParams{Turn: protocol.TurnStarted}) }

// TurnCompleted tells the daemon, without waiting, that the oldest turn
// begun by TurnStarted has ended. Failures are ignored.
func (c *Client) TurnCompleted() { c.hint(protocol.WarmParams{Turn: protocol.TurnCompleted}) }

// hint queues an attestation/warm notification for the sender goroutine.
func (c *Client) hint(params protocol.WarmParams) {
	line, err := jsonrpc.EncodeRequest(jsonrpc.ID{}, protocol.MethodWarm, params)
	if err != nil {
		return
	}
	c.queue(note{line: line})
}

// queue hands n to the sender goroutine, starting it on first use; it
// reports whether n was queued.
func (c *Client) queue(n note) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.notes == nil {
		c.notes = make(chan note, maxNotes)
		c.bg.Add(1)
		go c.sendHints(c.notes)
	}
	select {
	case c.notes <- n:
		return true
	default: // the daemon is not keeping up: a hint is not worth blocking for
		return false
	}
}

// sendHints writes queued hints in order until Close.
func (c *Client) sendHints(notes <-chan note) {
	defer c.bg.Done()
	for n := range notes {
		if n.line == nil {
			close(n.done)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
		if s, err := c.session(ctx); err == nil {
			s.write(ctx, n.line)
		}
		cancel()
	}
}

// flushHints returns once every hint given before it has been written (or
// dropped); calls made after it reach the daemon after those hints.
func (c *Client) flushHints() {
	done := make(chan struct{})
	if c.queue(note{done: done}) {
		<-done
	}
}

// WaitReady asks the daemon to have a token ready and returns once one is
// (attestation/warm with "wait"), without taking it. It returns at once
// the daemon's error (with its reason) when no token will come soon —
// the provider failing or backing off, or the daemon unreachable — and
// ctx's error when ctx ends first. Against a daemon that does not know
// the wait (it answers a plain warm-up hint), it returns nil at once.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		timeout := protocol.MaxWaitTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		ms := max(1, (timeout + time.Millisecond - 1).Milliseconds())
		var res protocol.WarmResult
		err := c.Call(ctx, protocol.MethodWarm, protocol.WarmParams{Wait: true, TimeoutMs: &ms}, &res)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return err
		case res.Ready == nil || *res.Ready:
			return nil
		}
		// The daemon's timeout passed just before ctx's: ask again.
	}
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.closed && c.notes != nil {
		close(c.notes)
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.fail(ErrClosed)
		<-s.done
	}
	c.bg.Wait()
	return nil
}

// Call sends a request and decodes its result into result. A JSON-RPC
// error from the daemon is returned as a *provider.Error wrapping the
// *jsonrpc.Error, with the daemon's reason and Apple error code.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	id := c.nextID.Add(1)
	line, err := jsonrpc.EncodeRequest(jsonrpc.IntID(id), method, params)
	if err != nil {
		return err
	}
	ch := s.register(id)
	if ch == nil { // the connection died between session() and now
		return c.unreachable(s.err)
	}
	defer s.unregister(id)
	if err := ctx.Err(); err != nil {
		return errNoAnswer(err)
	}
	if err := s.write(ctx, line); err != nil {
		if errors.Is(err, errNotSent) {
			if _, ok := ctx.Deadline(); ok {
				// The write deadline was ctx's, which may not say
				// so yet: its timer runs apart from the socket's.
				err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
			}
			return errNoAnswer(err)
		}
		return c.unreachable(s.cause())
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return c.unreachable(s.err)
		}
		if resp.Error != nil {
			return remoteError(resp.Error)
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("decode %s result: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return errNoAnswer(ctx.Err())
	}
}

// errNoAnswer is a call's own deadline passing (err says how): the
// daemon may be there, and the connection other calls share is intact.
func errNoAnswer(err error) error {
	return &provider.Error{Reason: provider.ReasonTimeout, Msg: "no answer from the daemon before the deadline", Err: err}
}

func remoteError(e *jsonrpc.Error) error {
	pe := &provider.Error{Reason: provider.ReasonProviderError, Msg: "daemon", Err: e}
	if e.Code != jsonrpc.CodeAttestation {
		pe.Reason = "rpc_error"
	}
	var data protocol.ErrorData
	if len(e.Data) > 0 && json.Unmarshal(e.Data, &data) == nil {
		if data.Reason != "" {
			pe.Reason = data.Reason
		}
		pe.HintText = data.Hint
		if data.DCErrorCode != nil {
			pe.DCCode, pe.HasDCCode = *data.DCErrorCode, true
		}
	}
	return pe
}

func (c *Client) unreachable(err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	var refusal *jsonrpc.Error
	if errors.As(err, &refusal) {
		// The daemon is there and said why it closed the connection
		// (peer_refused, too_many_connections): report that, not "start it".
		return remoteError(refusal)
	}
	return &provider.Error{Reason: provider.ReasonDaemonUnreachable,
		Msg:      "attestd daemon at " + c.path + " is unreachable",
		HintText: "start it with \"attestd serve\" (or register its LaunchAgent), or name it with --agent LABEL or --socket PATH",
		Err:      err}
}

// session returns the live connection, dialling a new one if needed.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.sess != nil && !c.sess.dead() {
		return c.sess, nil
	}
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, c.unreachable(err)
	}
	c.sess = newSession(nc)
	return c.sess, nil
}

// session is one connection with its reader goroutine.
type session struct {
	nc  net.Conn
	wmu sync.Mutex

	mu      sync.Mutex
	pending map[int64]chan *jsonrpc.Response
	err     error // set once the connection is dead
	done    chan struct{}
}

func newSession(nc net.Conn) *session {
	s := &session{nc: nc, pending: map[int64]chan *jsonrpc.Response{}, done: make(chan struct{})}
	go s.read()
	return s
}

func (s *session) read() {
	defer close(s.done)
	lr := jsonrpc.NewLineReader(s.nc, maxAnswerLine)
	for {
		line, err := lr.ReadLine()
		if err != nil {
			s.fail(fmt.Errorf("read answer: %w", err))
			return
		}
		msg, _, err := jsonrpc.Decode(line)
		if err != nil {
			continue // not ours to answer; the call times out
		}
		resp, ok := msg.(*jsonrpc.Response)
		if !ok {
			continue
		}
		id, err := strconv.ParseInt(resp.ID.String(), 10, 64)
		if err != nil {
			if resp.Error != nil && resp.ID.IsZero() {
				// The daemon refused the connection itself.
				s.fail(fmt.Errorf("daemon closed the connection: %w", resp.Error))
				return
			}
			continue
		}
		s.mu.Lock()
		ch := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
}

func (s *session) register(id int64) chan *jsonrpc.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil
	}
	ch := make(chan *jsonrpc.Response, 1)
	s.pending[id] = ch
	return ch
}

func (s *session) unregister(id int64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

func (s *session) dead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// fail marks the session dead, closes it and wakes every pending call.
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		for id, ch := range s.pending {
			close(ch)
			delete(s.pending, id)
		}
	}
	s.mu.Unlock()
	s.nc.Close()
}

func (s *session) write(ctx context.Context, line []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	s.nc.SetWriteDeadline(deadline)
	if n, err := s.nc.Write(line); err != nil {
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// Nothing was sent before the call's deadline (it had passed,
			// or the daemon is not reading now): no line is cut short,
			// so the connection stays for the other calls.
			return fmt.Errorf("%w: %w", errNotSent, err)
		}
		// A daemon that refuses a connection sends one error line and
		// closes, so the write may fail before the reader has seen why:
		// give the reader a moment to record the daemon's reason first.
		t := time.NewTimer(refusalWait)
		select {
		case <-s.done:
		case <-t.C:
		}
		t.Stop()
		s.fail(fmt.Errorf("send request: %w", err))
		return err
	}
	return nil
}

// errNotSent is returned by session.write when the deadline passed before
// any byte of the line was written.
var errNotSent = errors.New("request not sent before the deadline")

// refusalWait bounds how long a failed write waits for the reader to pick
// up the daemon's reason for closing.
const refusalWait = 200 * time.Millisecond

// cause returns why the session died: the daemon's refusal when it sent
// one, else the first read or write error.
func (s *session) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// The stdio bridge holds a cold turn and signals turns through these.
var _ interface {
	WaitReady(context.Context) error
	TurnStarted()
	TurnCompleted()
} = (*Client)(nil)
