// Package stdio is the stdio bridge: it runs codex app-server (or anything
// speaking its newline-delimited JSON-RPC) as a child, passes every line
// between its client and the child unchanged, opts the client's initialize
// into attestation and answers the child's attestation/generate requests
// from a token Source within the app-server's deadline.
//
// Decisions the design leaves open, made here:
//
//   - Holding a cold turn. A client call in HoldMethods (the model
//     requests, realtime, and the thread calls that open a Responses
//     websocket when the app-server has them on) waits, with every line
//     behind it, until the Source has a token ready, says none will come
//     soon, or Bridge.Hold (DefaultHold) passes; only a Source that is a
//     ReadyWaiter can be waited for. The child's output and its token
//     requests are served meanwhile.
//   - Turns. The app-server's turn/started and turn/completed
//     notifications are passed on and told to a TurnTracker Source once
//     per turn id; turns still open when the child's output ends are
//     completed then.
//   - Memory. A line the bridge does not act on streams through a 64 KiB
//     buffer, whatever its length: only its start is read, up to its
//     top-level method. A line it acts on is read whole up to MaxInspect
//     (1 MiB): longer, an initialize passes unchanged (with a warning), an
//     attestation/generate request passes to the client, and a call to
//     warm or hold on, or a turn notification, is judged by its first
//     MiB. A line whose method is not within its first MiB is not one the
//     bridge acts on.
//   - Repeated names and escapes. A line is read as codex app-server reads
//     it (serde's derived Deserialize, and a serde_json Value for params):
//     one that names method, id or params twice is no message, so the
//     bridge neither rewrites, warms on, holds nor answers it (nor any
//     other line jsonrpc.Decode refuses); inside
//     params the last of repeated keys counts, and that is the one the
//     initialize rewrite sets. Names and strings are compared decoded,
//     never as raw bytes. (jsonrpc.Decode applies the same rule.)
package stdio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// DefaultDeadline bounds the wait for a token when Bridge.Deadline is
// zero: protocol.GenerateDeadline, under the app-server's own bound.
const DefaultDeadline = protocol.GenerateDeadline

// DefaultExitGrace is how long Run waits, once the child has exited, when
// Bridge.ExitGrace is zero: for more output from a grandchild that kept
// the child's stdout open, or for a client that has stopped reading.
const DefaultExitGrace = 2 * time.Second

// Source supplies header values. Both the in-process token pool and the
// daemon's socket client satisfy it.
type Source interface {
	// Token returns one fresh "v1." header value. It must return promptly
	// once ctx is done.
	Token(ctx context.Context) (string, error)
	// Warm hints that Token will be called soon, so that a token can be
	// made ahead. It must not block.
	Warm()
}

// Bridge holds the bridge's settings. The zero value is not usable: Source
// is required.
type Bridge struct {
	Source Source
	// Deadline bounds each attestation/generate answer; zero means
	// DefaultDeadline.
	Deadline time.Duration
	// Hold bounds how long a line that makes the app-server ask for a
	// token (see HoldMethods) is held while the Source has none ready;
	// zero means DefaultHold and a negative value turns holding off.
	// Holding needs a Source that is a ReadyWaiter.
	Hold time.Duration
	// ExitGrace bounds each wait once the child has exited: Run stops
	// reading the child's output when none comes for this long (a
	// grandchild holds it open), and returns without passing on the rest
	// when the client reads none of it for this long. A client that is
	// slow but keeps reading gets all of it. Zero means DefaultExitGrace.
	ExitGrace time.Duration
	// Log receives diagnostics; nil discards them. Tokens are logged only
	// by fingerprint.
	Log *slog.Logger
}

var (
	clientMatcher = newMatcher(WarmMethods...) // initialize is among them
	childMatcher  = newMatcher(protocol.MethodGenerate, methodTurnStarted, methodTurnCompleted)
)

// Run starts cmd with its stdin and stdout connected to the bridge and
// relays between them and clientIn and clientOut until the child exits.
// cmd.Stdin and cmd.Stdout must be nil; cmd.Stderr passes through as set.
// Every signal received on signals is forwarded to the child.
//
// Run returns the child's exit status, 128+N when it was killed by signal
// N. It does not wait for clientIn: a read from it still blocked when the
// child exits is left behind, since a client that keeps its end open must
// not keep the bridge alive.
func (b *Bridge) Run(cmd *exec.Cmd, clientIn io.Reader, clientOut io.Writer, signals <-chan os.Signal) (int, error) {
	if b.Source == nil {
		return 0, errors.New("bridge: no token source")
	}
	if cmd.Stdin != nil || cmd.Stdout != nil {
		return 0, errors.New("bridge: cmd.Stdin and cmd.Stdout must be nil")
	}
	childInR, childInW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("bridge: %w", err)
	}
	childOutR, childOutW, err := os.Pipe()
	if err != nil {
		childInR.Close()
		childInW.Close()
		return 0, fmt.Errorf("bridge: %w", err)
	}
	cmd.Stdin, cmd.Stdout = childInR, childOutW
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = b.exitGrace()
	}
	err = cmd.Start()
	// The child has its own copies now (or never will).
	childInR.Close()
	childOutW.Close()
	if err != nil {
		childInW.Close()
		childOutR.Close()
		return 0, fmt.Errorf("bridge: start %s: %w", cmd.Path, err)
	}
	log := b.log().With("pid", cmd.Process.Pid)
	log.Debug("child started", "path", cmd.Path)

	d := &drain{grace: b.exitGrace(), childOut: childOutR, client: clientOut}
	served := make(chan error, 1)
	go func() { served <- b.serve(log, clientIn, clientWriter{d}, childInW, childReader{d}) }()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var waitErr error
forward:
	for {
		select {
		case sig := <-signals:
			log.Debug("forwarding signal", "signal", sig)
			if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
				log.Warn("cannot forward signal", "signal", sig, "err", err)
			}
		case waitErr = <-exited:
			break forward
		}
	}

	// The child is gone: its stdin is of no more use, and its output ends
	// as soon as no grandchild holds it. What it wrote is still passed on
	// to the end, however slowly the client reads, as long as it reads.
	childInW.Close()
	d.start()
	tick := time.NewTicker(b.exitGrace())
	defer tick.Stop()
	var serveErr error
	moved := d.moved.Load()
drain:
	for {
		select {
		case serveErr = <-served:
			break drain
		case <-tick.C:
			var stalled bool
			if stalled, moved = d.stalled(moved); stalled {
				// The rest of the output is left to the write in
				// progress.
				log.Warn("client is not reading; leaving the rest of the child's output behind", "grace", b.exitGrace())
				break drain
			}
		}
	}
	childOutR.Close()
	if errors.Is(serveErr, os.ErrDeadlineExceeded) {
		log.Warn("child exited but its output did not end (a process it started holds it); stopped reading it", "grace", b.exitGrace())
	}

	code, err := exitStatus(cmd, waitErr)
	if err != nil {
		return code, err
	}
	log.Debug("child exited", "status", code, "serve", serveErr)
	return code, nil
}

// exitStatus turns the result of cmd.Wait into a shell-style exit status.
func exitStatus(cmd *exec.Cmd, waitErr error) (int, error) {
	st := cmd.ProcessState
	if st == nil {
		return 0, fmt.Errorf("bridge: wait: %w", waitErr)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}

// Serve relays between a client and a child already running: lines from
// clientIn go to childIn, lines from childOut go to clientOut, except as
// described in the package documentation. It returns when childOut ends,
// closing childIn, once every attestation answer has been sent or has
// failed. When clientIn ends first, childIn is closed so the child sees
// the client's EOF. Like Run, Serve does not wait for a read from clientIn.
func (b *Bridge) Serve(clientIn io.Reader, clientOut io.Writer, childIn io.WriteCloser, childOut io.Reader) error {
	return b.serve(b.log(), clientIn, clientOut, childIn, childOut)
}

func (b *Bridge) serve(log *slog.Logger, clientIn io.Reader, clientOut io.Writer, childIn io.WriteCloser, childOut io.Reader) error {
	if b.Source == nil {
		return errors.New("bridge: no token source")
	}
	s := &session{
		b:       b,
		log:     log,
		childIn: childIn,
		toChild: bufio.NewWriterSize(childIn, readBufSize),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.fromClient(clientIn)
	err := s.fromChild(clientOut, childOut)
	s.cancel() // ends a hold in progress
	s.completeTurns()
	s.closeChildIn()
	s.answers.Wait()
	return err
}

// session is one run of the bridge.
type session struct {
	b   *Bridge
	log *slog.Logger
	// ctx ends when the child's output has: a line held for a token is
	// then let go at once.
	ctx    context.Context
	cancel context.CancelFunc

	// mu serializes writes to the child's stdin so that a line from the
	// client and an answer from the bridge never interleave.
	mu       sync.Mutex
	toChild  *bufio.Writer
	childIn  io.WriteCloser
	inClosed bool
	// midLine is set while a client line longer than the read buffer is
	// on its way in pieces: answers made meanwhile wait in pending and
	// follow the line, so that mu is never held while the client is read.
	midLine   bool
	pending   [][]byte
	closeOnce sync.Once

	answers sync.WaitGroup

	// turns holds the turns the child has started and not yet completed,
	// by id. Only fromChild touches it, and serve once fromChild is done.
	turns map[string]bool
}

// maxPending bounds the answers waiting behind one long client line; past
// it an answer is dropped (it would be late anyway, and the app-server
// records a timeout).
const maxPending = 256

// maxOpenTurns bounds the turns tracked at once.
const maxOpenTurns = 1024

// writeClient writes a piece of a client line to the child: the whole
// line, or a piece of one when end is false. flush asks for the child to
// get what is buffered once the line has ended. A line that ends without
// a newline (the client's last, cut short by its EOF, or an empty piece
// that ends a line already on its way) ends the child's input then and
// there: nothing may be written after it, which would join it.
func (s *session) writeClient(p []byte, end, flush bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inClosed {
		return os.ErrClosed
	}
	if _, err := s.toChild.Write(p); err != nil {
		return err
	}
	if !end {
		s.midLine = true
		return nil
	}
	s.midLine = false
	if len(p) == 0 || p[len(p)-1] != '\n' {
		s.inClosed = true
		s.dropPendingLocked()
		return s.toChild.Flush()
	}
	if len(s.pending) > 0 {
		for _, a := range s.pending {
			if _, err := s.toChild.Write(a); err != nil {
				return err
			}
		}
		s.pending = nil
		flush = true
	}
	if flush {
		return s.toChild.Flush()
	}
	return nil
}

// writeAnswer writes an answer line to the child, or queues it behind a
// client line on its way.
func (s *session) writeAnswer(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inClosed {
		return os.ErrClosed
	}
	if s.midLine {
		if len(s.pending) >= maxPending {
			return errors.New("too many answers waiting behind a long client line")
		}
		s.pending = append(s.pending, line)
		s.log.Debug("answer waits behind a client line on its way to the child", "waiting", len(s.pending))
		return nil
	}
	if _, err := s.toChild.Write(line); err != nil {
		return err
	}
	return s.toChild.Flush()
}

func (s *session) dropPendingLocked() {
	if len(s.pending) > 0 {
		s.log.Debug("child stdin closed; dropping answers", "answers", len(s.pending))
		s.pending = nil
	}
}

// closeChildIn closes the child's stdin. It does not take mu: a write
// blocked on a child that no longer reads must fail rather than hold it.
func (s *session) closeChildIn() {
	s.closeOnce.Do(func() { s.childIn.Close() })
}

// fromClient copies the client's lines to the child until the client's
// EOF, which it passes on by closing the child's stdin. A line that
// starts model requests may be held first (see hold); the lines behind it
// wait unread, in order.
func (s *session) fromClient(clientIn io.Reader) {
	lr := newLineReader(clientIn)
	for {
		head, end, err := lr.head(clientMatcher.enough)
		if len(head) > 0 {
			werr := s.writeClient(s.clientLine(head, end), end, end && !lr.lineBuffered())
			for werr == nil && !end {
				var p []byte
				p, end, err = lr.next()
				werr = s.writeClient(p, end, end && !lr.lineBuffered())
			}
			if werr != nil {
				s.log.Debug("child stdin closed; dropping client input", "err", werr)
				break
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Warn("read from client", "err", err)
			}
			break
		}
	}
	s.mu.Lock()
	if !s.inClosed {
		if err := s.toChild.Flush(); err != nil {
			s.log.Debug("flush to child", "err", err)
		}
		s.inClosed = true
		s.dropPendingLocked()
	}
	s.mu.Unlock()
	s.closeChildIn()
}

// clientLine returns what to send to the child for the start of a client
// line (the whole line when whole is set): initialize opted into
// attestation, everything else unchanged. It warms the Source ahead of
// calls that lead to token requests, and holds those that lead to one at
// once until a token is ready (see hold).
func (s *session) clientLine(line []byte, whole bool) []byte {
	method, _ := clientMatcher.method(line, whole)
	if method == "" {
		return line
	}
	if whole {
		if req := request(line); req == nil || req.Method != method {
			s.log.Debug("not acting on a client line that is not a well-formed request", "method", method)
			return line
		}
	}
	if method != methodInitialize {
		s.hold(method)
		return line
	}
	s.b.Source.Warm()
	if !whole {
		s.log.Warn("initialize passed on unchanged: longer than the bridge reads whole", "limit", MaxInspect)
		return line
	}
	out, err := optIn(line)
	if err != nil {
		s.log.Warn("initialize passed on unchanged: cannot opt it into attestation", "err", err)
		return line
	}
	s.log.Debug("initialize opted into attestation")
	return out
}

// fromChild copies the child's lines to the client until the child's
// output ends, answering attestation/generate requests instead of passing
// them on, and telling the Source when turns start and complete. Once
// writing to the client has failed (it hung up), the rest is read and
// dropped, so the child never blocks on a full pipe and its token
// requests are still answered. A client that is merely slow to read slows
// the child, as it would without the bridge.
func (s *session) fromChild(clientOut io.Writer, childOut io.Reader) error {
	lr := newLineReader(childOut)
	w := bufio.NewWriterSize(clientOut, readBufSize)
	var werr error
	// pass writes p to the client and, at the end of a line, flushes
	// unless another whole line follows (also after an intercepted
	// request: lines written before it must not wait for more output,
	// which may come only after the client has answered).
	pass := func(p []byte, end bool) {
		if werr != nil {
			return
		}
		if len(p) > 0 {
			_, werr = w.Write(p)
		}
		if werr == nil && end && w.Buffered() > 0 && !lr.lineBuffered() {
			werr = w.Flush()
		}
		if werr != nil {
			s.log.Warn("write to client failed; discarding the child's output from now on", "err", werr)
		}
	}
	for {
		head, end, err := lr.head(childMatcher.enough)
		if len(head) > 0 {
			if s.childLine(head, end) {
				pass(nil, true)
			} else {
				pass(head, end)
			}
			for !end {
				var p []byte
				p, end, err = lr.next()
				pass(p, end)
			}
		}
		if err != nil {
			if werr == nil {
				werr = w.Flush()
			}
			if errors.Is(err, io.EOF) {
				return werr
			}
			return fmt.Errorf("read from child: %w", err)
		}
	}
}

// childLine acts on the start of a line from the child (the whole line
// when whole is set) and reports whether it was an attestation/generate
// request, which the bridge answers instead of passing on.
func (s *session) childLine(line []byte, whole bool) bool {
	method, _ := childMatcher.method(line, whole)
	switch method {
	case protocol.MethodGenerate:
		if !whole {
			s.log.Warn("attestation/generate request passed on to the client: longer than the bridge reads whole", "limit", MaxInspect)
			return false
		}
		return s.intercept(line)
	case methodTurnStarted, methodTurnCompleted:
		s.trackTurn(method, line, whole)
	}
	return false
}

// intercept reports whether line is an attestation/generate request from
// the child, starting its answer if it is a call.
func (s *session) intercept(line []byte) bool {
	req := request(line)
	if req == nil || req.Method != protocol.MethodGenerate {
		return false // not a well-formed request: the client may make sense of it
	}
	if !req.IsCall {
		s.log.Debug("dropped attestation/generate notification")
		return true
	}
	s.answers.Add(1)
	go s.answer(req.ID)
	return true
}

// answer sends the child a token, or a JSON-RPC error when none can be had
// before the deadline. An answer is always sent, so that the app-server
// records a client error rather than waiting out its own timeout.
func (s *session) answer(id jsonrpc.ID) {
	defer s.answers.Done()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.b.deadline())
	defer cancel()
	type result struct {
		token string
		err   error
	}
	got := make(chan result, 1)
	go func() {
		tok, err := s.b.Source.Token(ctx)
		got <- result{tok, err}
	}()
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		// A Source that overruns its deadline still gets answered for.
		r.err = fmt.Errorf("token source: %w", ctx.Err())
	}
	if r.err == nil && r.token == "" {
		r.err = errors.New("token source returned an empty token")
	}

	var line []byte
	if r.err == nil {
		var err error
		line, err = jsonrpc.EncodeResult(id, protocol.GenerateResult{Token: r.token})
		if err != nil {
			r.err = err
		}
	}
	if r.err != nil {
		line = jsonrpc.EncodeError(id, attestationError(r.err))
		s.log.Warn("attestation/generate answered with an error", "id", id.String(),
			"reason", provider.ReasonOf(r.err), "err", r.err, "elapsed", time.Since(start))
	} else {
		s.log.Debug("attestation/generate answered", "id", id.String(),
			"token", header.Fingerprint(r.token), "elapsed", time.Since(start))
	}
	if err := s.writeAnswer(line); err != nil {
		s.log.Debug("cannot answer attestation/generate", "id", id.String(), "err", err)
	}
}

// attestationError is the wire error for a failure to get a token, with
// the reason and Apple's error code when there is one.
func attestationError(err error) *jsonrpc.Error {
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) && rpcErr.Code == jsonrpc.CodeAttestation {
		// Already a wire error, as the socket client returns the daemon's.
		return rpcErr
	}
	data := map[string]any{"reason": provider.ReasonOf(err)}
	if code, ok := provider.DCErrorCodeOf(err); ok {
		data["dcErrorCode"] = code
	}
	return jsonrpc.NewError(jsonrpc.CodeAttestation, "attestation failed: "+err.Error(), data)
}

func (b *Bridge) deadline() time.Duration {
	if b.Deadline > 0 {
		return b.Deadline
	}
	return DefaultDeadline
}

func (b *Bridge) hold() time.Duration {
	if b.Hold == 0 {
		return DefaultHold
	}
	return b.Hold
}

func (b *Bridge) exitGrace() time.Duration {
	if b.ExitGrace > 0 {
		return b.ExitGrace
	}
	return DefaultExitGrace
}

func (b *Bridge) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.New(slog.DiscardHandler)
}
