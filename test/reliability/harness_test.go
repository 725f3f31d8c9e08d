package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
)

// daemon is an in-process attestd: the real pool and server on a real Unix
// socket, with a scripted provider and captured logs.
type daemon struct {
	path string
	dir  string // the socket's directory, created by socket.Listen
	prov *providertest.Scripted
	pool *pool.Pool
	srv  *server.Server
	logs *logBuffer
}

type daemonOpts struct {
	script func(n int) providertest.Step
	pool   pool.Config   // Provider, Logger and zero fields are filled in
	server server.Config // Tokens, Logger and zero fields are filled in
	// listen, when set, replaces socket.Listen (for a permissive socket).
	listen func(path string) (net.Listener, error)
}

// tempDir returns a short directory, so socket paths stay under the
// sun_path limit whatever the test's name.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "attestd-rel-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startDaemon(t testing.TB, o daemonOpts) *daemon {
	t.Helper()
	base := tempDir(t)
	d := &daemon{dir: filepath.Join(base, "run"), logs: &logBuffer{}}
	d.path = filepath.Join(d.dir, "attestd.sock")
	logger := slog.New(teeHandler{
		slog.NewTextHandler(&d.logs.text, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&d.logs.json, &slog.HandlerOptions{Level: slog.LevelDebug}),
	})
	d.prov = &providertest.Scripted{Script: o.script}
	pc := o.pool
	pc.Provider, pc.Logger = d.prov, logger
	if pc.BackoffMin == 0 {
		pc.BackoffMin, pc.BackoffMax = time.Millisecond, 4*time.Millisecond
	}
	d.pool = pool.New(pc)
	sc := o.server
	sc.Tokens, sc.Logger = d.pool, logger
	d.srv = server.New(sc)

	var l net.Listener
	var err error
	if o.listen != nil {
		l, err = o.listen(d.path)
	} else {
		l, err = socket.Listen(d.path)
	}
	if err != nil {
		d.pool.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		d.pool.Close()
	})
	return d
}

// logBuffer captures the daemon's logs in both slog formats.
type logBuffer struct{ text, json lockedBuffer }

// all returns every captured log byte.
func (b *logBuffer) all() []byte {
	return append(b.text.bytes(), b.json.bytes()...)
}

func (b *logBuffer) reset() { b.text.reset(); b.json.reset() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// grew, when set, gets a signal (buffered 1) after each write.
	grew chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.grew != nil {
		select {
		case b.grew <- struct{}{}:
		default:
		}
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *lockedBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = bytes.Buffer{}
}

// teeHandler sends every record to each of its handlers.
type teeHandler []slog.Handler

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, x := range h {
		if x.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, x := range h {
		if x.Enabled(ctx, r.Level) {
			errs = append(errs, x.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithAttrs(as)
	}
	return out
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithGroup(name)
	}
	return out
}

// answer is one line the daemon sent, checked to be a well-formed answer.
type answer struct {
	ID     string // the id's JSON text, "null" when absent
	Result json.RawMessage
	Err    *wireError
	Line   []byte
}

type wireError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// reason returns the error's data.reason, or "".
func (e *wireError) reason() string {
	var d struct{ Reason string }
	json.Unmarshal(e.Data, &d)
	return d.Reason
}

// parseAnswer checks that line is one JSON object with an id and exactly
// one of result and error.
func parseAnswer(line []byte) (answer, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return answer{}, fmt.Errorf("answer is not a JSON object: %v: %.200q", err, line)
	}
	a := answer{Line: bytes.Clone(line)}
	id, ok := m["id"]
	if !ok {
		return a, fmt.Errorf("answer has no id: %.200q", line)
	}
	a.ID = string(id)
	res, hasRes := m["result"]
	e, hasErr := m["error"]
	if hasRes == hasErr {
		return a, fmt.Errorf("answer must have exactly one of result and error: %.200q", line)
	}
	if hasRes {
		a.Result = res
		return a, nil
	}
	a.Err = &wireError{}
	if err := json.Unmarshal(e, a.Err); err != nil || a.Err.Code == 0 || a.Err.Message == "" {
		return a, fmt.Errorf("answer has a malformed error: %.200q", line)
	}
	return a, nil
}

// token returns the result's token, or "".
func (a answer) token() string {
	var r struct{ Token string }
	json.Unmarshal(a.Result, &r)
	return r.Token
}

// rawConn is a client connection that writes bytes as told and collects
// answer lines on a channel.
type rawConn struct {
	nc    *net.UnixConn
	lines chan []byte
	done  chan struct{} // closed when the reader stops
	err   error         // why the reader stopped; read after done
}

func dialRaw(t testing.TB, path string, read bool) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &rawConn{nc: nc.(*net.UnixConn), lines: make(chan []byte, 1024), done: make(chan struct{})}
	t.Cleanup(func() { c.nc.Close(); <-c.done })
	if read {
		go c.read()
	} else {
		close(c.done)
		close(c.lines)
	}
	return c
}

func (c *rawConn) read() {
	defer close(c.done)
	defer close(c.lines)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			c.lines <- line
		}
		if err != nil {
			c.err = err
			return
		}
	}
}

// next returns the next answer line, or nil and the reason the stream
// ended (io.EOF for a clean close), failing the test at the deadline.
func (c *rawConn) next(t testing.TB, deadline time.Time) ([]byte, error) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			<-c.done
			if c.err == nil {
				return nil, io.EOF
			}
			return nil, c.err
		}
		return line, nil
	case <-timer.C:
		t.Fatalf("no answer and no close before the deadline")
		return nil, nil
	}
}

// isCleanClose reports whether a read error ends a connection the way a
// close by the peer does.
func isCleanClose(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}
