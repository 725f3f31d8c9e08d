package stdio

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/internal/jsonscan"
	"github.com/attestd/attestd/bridge/provider"
)

// readySource is a fakeSource that is also a ReadyWaiter and a
// TurnTracker: wait decides what WaitReady returns.
type readySource struct {
	fakeSource
	wait      func(ctx context.Context) error
	waits     atomic.Int64
	started   atomic.Int64
	completed atomic.Int64
}

func (s *readySource) WaitReady(ctx context.Context) error {
	s.waits.Add(1)
	return s.wait(ctx)
}

func (s *readySource) TurnStarted()   { s.started.Add(1) }
func (s *readySource) TurnCompleted() { s.completed.Add(1) }

var (
	_ ReadyWaiter = (*readySource)(nil)
	_ TurnTracker = (*readySource)(nil)
)

// gate is a WaitReady that blocks until released, telling when it is
// entered and recording that it returned.
type gate struct {
	entered  chan struct{} // one value per call
	release  chan error    // one value per call
	returned atomic.Int64
	left     chan error // what each call returned
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 16), release: make(chan error, 16), left: make(chan error, 16)}
}

func (g *gate) wait(ctx context.Context) (err error) {
	defer func() {
		g.returned.Add(1)
		g.left <- err
	}()
	g.entered <- struct{}{}
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitEntered waits for the n-th WaitReady call.
func (g *gate) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(patience):
		t.Fatal("the bridge did not wait for a token")
	}
}

const turnStart = `{"id":3,"method":"turn/start","params":{"threadId":"t-1","input":[]}}` + "\n"

// waitDone waits for Serve to return, failing with msg if it does not,
// and fails if it returned an error.
func (p *servePipes) waitDone(t *testing.T, msg string) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(patience):
		t.Fatal(msg)
	}
}

// startGated runs Serve with an hour's hold and a Source whose WaitReady
// waits on the returned gate.
func startGated(t *testing.T) (*gate, *readySource, *servePipes) {
	g := newGate()
	src := &readySource{wait: g.wait}
	return g, src, startServe(t, &Bridge{Source: src, Hold: time.Hour, Deadline: time.Hour})
}

// expectLine reads the next line from lr and fails unless it is want.
func expectLine(t *testing.T, lr *bufio.Reader, want, what string) {
	t.Helper()
	if got := readLine(t, lr, what); got != want {
		t.Fatalf("%s: got %.80q (%d bytes), want %.80q (%d bytes)", what, got, len(got), want, len(want))
	}
}

func TestHoldUntilTheTokenIsReady(t *testing.T) {
	g, src, p := startGated(t)
	go io.WriteString(p.clientIn, turnStart)
	g.waitEntered(t)
	g.release <- nil
	expectLine(t, p.childIn, turnStart, "held turn/start")
	if g.returned.Load() != 1 {
		t.Fatal("turn/start reached the child before the token was ready")
	}
	if w := src.warms.Load(); w != 0 {
		t.Errorf("Warm called %d times besides WaitReady", w)
	}
}

// The lines before a held one are not held: they reach the child while
// the hold lasts, even when they came in the same read as the held line
// (and so were left in the buffer for the held line to flush).
func TestHoldPassesOnTheLinesBeforeIt(t *testing.T) {
	g, _, p := startGated(t)
	init := `{"id":1,"method":"initialize","params":{"capabilities":{"requestAttestation":true}}}` + "\n"
	note := `{"method":"initialized"}` + "\n"
	go io.WriteString(p.clientIn, init+note+turnStart)
	// The gate is not released yet: turn/start is held.
	expectLine(t, p.childIn, init, "initialize, during the hold")
	expectLine(t, p.childIn, note, "initialized, during the hold")
	g.waitEntered(t)
	g.release <- nil
	expectLine(t, p.childIn, turnStart, "turn/start, after the hold")
}

func TestHoldBoundReached(t *testing.T) {
	const bound = 30 * time.Millisecond
	var deadline atomic.Int64
	src := &readySource{}
	src.wait = func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if ok {
			deadline.Store(int64(time.Until(d)))
		}
		<-ctx.Done() // no token comes
		return ctx.Err()
	}
	p := startServe(t, &Bridge{Source: src, Hold: bound})
	go io.WriteString(p.clientIn, turnStart+`{"method":"after"}`+"\n")
	expectLine(t, p.childIn, turnStart, "turn/start once the bound passed")
	if got := readLine(t, p.childIn, "the line behind it"); got != `{"method":"after"}`+"\n" {
		t.Fatalf("child got %q", got)
	}
	if d := time.Duration(deadline.Load()); d <= 0 || d > bound {
		t.Errorf("WaitReady's context had %v left, want at most the bound %v", d, bound)
	}
}

// A source that is failing or backing off says so at once, and the line
// goes on at once: with an hour's bound, waiting for it would time the
// test out.
func TestHoldDoesNotWaitForAFailingSource(t *testing.T) {
	src := &readySource{wait: func(context.Context) error {
		return &provider.Error{Reason: provider.ReasonProviderError, Msg: "backing off"}
	}}
	p := startServe(t, &Bridge{Source: src, Hold: time.Hour})
	go io.WriteString(p.clientIn, turnStart)
	expectLine(t, p.childIn, turnStart, "turn/start")
	if n := src.waits.Load(); n != 1 {
		t.Errorf("WaitReady called %d times, want 1", n)
	}
}

// Held lines and the lines behind them reach the child in order, none
// lost, whatever their length; only the calls in HoldMethods are held.
func TestHoldKeepsOrder(t *testing.T) {
	g, src, p := startGated(t)
	long := `{"method":"note","params":{"pad":"` + strings.Repeat("p", 3*readBufSize) + `"}}` + "\n"
	lines := []string{
		`{"id":1,"method":"initialize","params":{"capabilities":{"requestAttestation":true}}}` + "\n",
		`{"method":"a"}` + "\n",
		turnStart,
		`{"method":"b"}` + "\n",
		long,
		`{"id":4,"method":"thread/start","params":{}}` + "\n",
		`{"id":5,"method":"turn/start","params":{"image":"` + strings.Repeat("I", 2*MaxInspect) + `"}}` + "\n",
		`{"method":"c"}`, // the last, cut short by EOF
	}
	go func() {
		for _, l := range lines {
			io.WriteString(p.clientIn, l)
		}
		p.clientIn.Close()
	}()
	go func() {
		for range 3 { // turn/start, thread/start, the long turn/start
			select {
			case <-g.entered:
				g.release <- nil
			case <-time.After(patience):
				return // the test fails on the missing lines
			}
		}
	}()
	for i, want := range lines {
		expectLine(t, p.childIn, want, fmt.Sprintf("line %d", i))
	}
	if _, err := p.childIn.ReadByte(); err != io.EOF {
		t.Errorf("after the last line: %v, want EOF", err)
	}
	if n := src.waits.Load(); n != 3 {
		t.Errorf("WaitReady called %d times, want 3", n)
	}
	if w := src.warms.Load(); w != 1 {
		t.Errorf("Warm called %d times, want 1 (initialize)", w)
	}
}

// The client's EOF while a line is held: the line still reaches the
// child, and then the EOF.
func TestHoldThenClientEOF(t *testing.T) {
	g, _, p := startGated(t)
	go func() {
		io.WriteString(p.clientIn, turnStart)
		p.clientIn.Close()
	}()
	g.waitEntered(t)
	g.release <- nil
	expectLine(t, p.childIn, turnStart, "turn/start")
	if _, err := p.childIn.ReadByte(); err != io.EOF {
		t.Errorf("after the held line: %v, want EOF", err)
	}
}

// The child's output ending while a line is held ends the hold: Serve
// returns without waiting out the bound.
func TestHoldEndsWithTheChild(t *testing.T) {
	g, _, p := startGated(t)
	go io.WriteString(p.clientIn, turnStart)
	g.waitEntered(t)
	p.childOut.Close()
	p.waitDone(t, "Serve did not return while a line was held")
	// The hold ended with the session (its context), not a release.
	select {
	case err := <-g.left:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WaitReady returned %v, want the session's context canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("WaitReady still waiting after the session ended")
	}
}

// While a line is held, the child's output flows to the client and its
// attestation requests are answered.
func TestChildIsServedWhileALineIsHeld(t *testing.T) {
	g, _, p := startGated(t)
	go io.WriteString(p.clientIn, turnStart)
	g.waitEntered(t)
	go io.WriteString(p.childOut, `{"method":"thread/started","params":{}}`+"\n"+`{"method":"attestation/generate","id":0,"params":{}}`+"\n")
	if got := readLine(t, p.clientOut, "the child's notification"); got != `{"method":"thread/started","params":{}}`+"\n" {
		t.Fatalf("client got %q", got)
	}
	if got := readLine(t, p.childIn, "the answer"); !strings.HasPrefix(got, `{"id":0,"result":{"token":"v1.tok-`) {
		t.Fatalf("child got %q, want the answer to its request", got)
	}
	if g.returned.Load() != 0 {
		t.Fatal("the hold ended before the test released it")
	}
	g.release <- nil
	expectLine(t, p.childIn, turnStart, "turn/start")
}

func TestHoldOff(t *testing.T) {
	src := &readySource{wait: func(context.Context) error { return errors.New("must not be called") }}
	p := startServe(t, &Bridge{Source: src, Hold: -1})
	go io.WriteString(p.clientIn, turnStart)
	expectLine(t, p.childIn, turnStart, "turn/start")
	if n, w := src.waits.Load(), src.warms.Load(); n != 0 || w != 1 {
		t.Errorf("WaitReady called %d times and Warm %d; want 0 and 1", n, w)
	}
}

// The bridge tells a TurnTracker when turns start and complete, once per
// turn id, and completes the open ones when the child's output ends.
func TestTurnTracking(t *testing.T) {
	src := &readySource{wait: func(context.Context) error { return nil }}
	p := startServe(t, &Bridge{Source: src})
	note := func(method, id string) string {
		return `{"method":"` + method + `","params":{"threadId":"t-1","turn":{"id":"` + id + `","items":[],"status":"inProgress"}}}` + "\n"
	}
	huge := `{"method":"turn/completed","params":{"threadId":"t-1","turn":{"id":"u4","items":[{"text":"` +
		strings.Repeat("w", 2*MaxInspect) + `"}],"status":"completed"}}}` + "\n"
	steps := []struct {
		line               string
		started, completed int64
	}{
		{note("turn/started", "u1"), 1, 0},
		{note("turn/started", "u1"), 1, 0},   // repeated
		{note("turn/completed", "u2"), 1, 0}, // never started
		{note("turn/started", "u3"), 2, 0},
		{note("turn/completed", "u1"), 2, 1},
		{note("turn/completed", "u1"), 2, 1}, // repeated
		{`{"method":"turn/started","params":{"threadId":"t-1","turn":{"id":"u4"},"turn":{"id":"u5"}}}` + "\n", 3, 1},
		{note("turn/completed", "u4"), 3, 1}, // the last "turn" counted: u5
		{note("turn/started", "u4"), 4, 1},
		{huge, 4, 2}, // read from its start
		{`{"method":"turn/started","method":"x","params":{"turn":{"id":"u6"}}}` + "\n", 4, 2}, // not a message
		{note("turn/started", "u7"), 5, 2},
	}
	for i, s := range steps {
		go io.WriteString(p.childOut, s.line)
		if got := readLine(t, p.clientOut, fmt.Sprintf("notification %d", i)); got != s.line {
			t.Fatalf("step %d: client got %.80q, want the notification unchanged", i, got)
		}
		if st, co := src.started.Load(), src.completed.Load(); st != s.started || co != s.completed {
			t.Fatalf("step %d: %d started and %d completed, want %d and %d", i, st, co, s.started, s.completed)
		}
	}
	p.childOut.Close()
	p.waitDone(t, "Serve did not return")
	// u3, u5 and u7 were open when the child's output ended.
	if st, co := src.started.Load(), src.completed.Load(); st != 5 || co != 5 {
		t.Errorf("at the end: %d started and %d completed, want 5 and 5", st, co)
	}
}

// An answer made while a long client line is on its way to the child
// follows that line, and the child's exit then does not wait for the rest
// of the line.
func TestAnswerWaitsBehindALongClientLine(t *testing.T) {
	queued := &logSignal{msg: "answer waits behind a client line", ch: make(chan struct{})}
	p := startServe(t, &Bridge{Source: &fakeSource{}, Deadline: time.Hour, Log: slog.New(slog.NewTextHandler(queued, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	first := `{"method":"note","params":{"pad":"` + strings.Repeat("q", 2*readBufSize)
	rest := `"}}` + "\n"
	go io.WriteString(p.clientIn, first)
	// The child sees the line begin before it asks for a token.
	got := make([]byte, readBufSize)
	if _, err := io.ReadFull(p.childIn, got); err != nil || string(got) != first[:readBufSize] {
		t.Fatalf("child got %.40q, %v", got, err)
	}
	go io.WriteString(p.childOut, `{"method":"attestation/generate","id":7,"params":{}}`+"\n")
	select {
	case <-queued.ch:
	case <-time.After(patience):
		t.Fatal("the answer was not queued behind the client's line")
	}
	go io.WriteString(p.clientIn, rest)
	if line := readLine(t, p.childIn, "the rest of the client line"); line != first[readBufSize:]+rest {
		t.Fatalf("child got %.60q..., want the rest of the client line first", line)
	}
	if got := readLine(t, p.childIn, "the answer"); !strings.HasPrefix(got, `{"id":7,"result":{"token":"v1.tok-`) {
		t.Fatalf("child got %q, want the answer", got)
	}
}

func TestChildExitWhileAClientLineIsOnItsWay(t *testing.T) {
	queued := &logSignal{msg: "answer waits behind a client line", ch: make(chan struct{})}
	p := startServe(t, &Bridge{Source: &fakeSource{}, Deadline: time.Hour, Log: slog.New(slog.NewTextHandler(queued, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	go io.WriteString(p.clientIn, `{"method":"note","params":{"pad":"`+strings.Repeat("q", 2*readBufSize))
	if _, err := io.ReadFull(p.childIn, make([]byte, readBufSize)); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.childIn)
	go io.WriteString(p.childOut, `{"method":"attestation/generate","id":7,"params":{}}`+"\n")
	select {
	case <-queued.ch:
	case <-time.After(patience):
		t.Fatal("the answer was not queued behind the client's line")
	}
	p.childOut.Close()
	p.waitDone(t, "Serve waited for the client to finish its line")
}

// FuzzTurnID checks the reading of a turn notification's id: a whole line
// gives params.turn.id as encoding/json reads it when no key repeats, and
// any start of the line gives either nothing or that same id.
func FuzzTurnID(f *testing.F) {
	for _, s := range []string{
		`{"method":"turn/started","params":{"threadId":"t","turn":{"id":"u1","items":[]}}}`,
		`{"method":"turn/completed","params":{"turn":{"items":[{"id":"item"}],"id":"u\u0032"},"threadId":"t"}}`,
		`{"params":{"turn":{"id":"u3"}},"method":"turn/started"}`,
		`{"method":"turn/started","params":{"turn":{"id":1}}}`,
		`{"method":"turn/started","params":{"turn":{"id":"a"},"turn":{"id":"b"}}}`,
		`{"method":"turn/started","params":{"Turn":{"ID":"x"}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		id, ok := turnID([]byte(line), true)
		// The reference reads maps, whose keys encoding/json matches
		// exactly (struct fields it would match without regard to case).
		req := request([]byte(line))
		unique := req != nil && uniqueKeys(req.Params, "turn")
		var want string
		if unique {
			var params, turn map[string]json.RawMessage
			json.Unmarshal(req.Params, &params)
			if raw, ok := params["turn"]; ok {
				json.Unmarshal(raw, &turn)
				unique = turn == nil || uniqueKeys(raw, "id")
				if raw, ok := turn["id"]; ok && unique {
					json.Unmarshal(raw, &want)
				}
			}
		}
		if unique && (want != id || ok != (want != "")) {
			t.Fatalf("turnID(%q) = %q, %v; encoding/json reads %q", line, id, ok, want)
		}
		for n := range min(len(line), 1024) {
			if got, ok := turnID([]byte(line[:n]), false); ok && unique && got != id {
				t.Fatalf("turnID(%q, start) = %q; the whole line's is %q", line[:n], got, id)
			}
		}
	})
}

// uniqueKeys reports whether the JSON object b names key at most once
// (and is an object).
func uniqueKeys(b []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	n := 0
	jsonscan.Object(b, 0, func(b []byte, m jsonscan.Member) bool {
		if m.Key(b, key) {
			n++
		}
		return true
	})
	return n <= 1
}
