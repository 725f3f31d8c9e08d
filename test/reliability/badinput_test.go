package reliability

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
)

// badCase is one file of testdata/badinput: what a client sends, how, and
// what the daemon must answer on that connection.
type badCase struct {
	Name string `json:"-"`
	// Doc says what the case proves.
	Doc   string `json:"doc"`
	Input []part `json:"input"`
	// Mode is how the input is sent:
	//	""          all at once, answers read as they come
	//	"slow"      one byte every IntervalMS, until written or refused
	//	"halfclose" all at once, then the write side is shut
	//	"noread"    again and again without reading, until the daemon
	//	            closes the connection
	//	"idle"      nothing, on Conns connections at once
	Mode       string `json:"mode"`
	IntervalMS int    `json:"intervalMs"`
	Conns      int    `json:"conns"`
	// Answers are the answers expected, in any order; no other may come.
	Answers []want `json:"answers"`
	// After is "open" (a probe call is then answered on the same
	// connection) or "close" (the daemon closes the connection).
	After string `json:"after"`
	// Exclusive cases run alone, after the others: they disturb every
	// connection (evictions) or measure the whole process.
	Exclusive bool `json:"exclusive"`
	// MaxAllocMiB, when set, bounds what the process (daemon and client
	// together) may allocate while the case runs; it makes the case
	// exclusive.
	MaxAllocMiB uint64 `json:"maxAllocMiB"`
}

// part is a piece of input: text, a byte string repeated Count times, or
// hex for bytes JSON cannot hold.
type part struct {
	Text   string `json:"text"`
	Repeat string `json:"repeat"`
	Count  int    `json:"count"`
	Hex    string `json:"hex"`
}

// want is an expected answer: its id's JSON text and its error code, 0
// for a result. Times repeats it.
type want struct {
	ID    string `json:"id"`
	Code  int64  `json:"code"`
	Times int    `json:"times"`
}

func loadCases(t *testing.T) []badCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "badinput", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []badCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c badCase
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.Name = strings.TrimSuffix(filepath.Base(f), ".json")
		c.Exclusive = c.Exclusive || c.MaxAllocMiB > 0
		if c.After != "open" && c.After != "close" {
			t.Fatalf("%s: after must be open or close", f)
		}
		cases = append(cases, c)
	}
	return cases
}

// writeInput writes the case's input to w, streaming repeats in chunks,
// and stops at the first error.
func writeInput(w io.Writer, parts []part) error {
	for _, p := range parts {
		switch {
		case p.Hex != "":
			b, err := hex.DecodeString(strings.ReplaceAll(p.Hex, " ", ""))
			if err != nil {
				return fmt.Errorf("bad hex in case: %v", err)
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		case p.Repeat != "":
			unit := []byte(p.Repeat)
			per := max(1, (64<<10)/len(unit))
			chunk := bytes.Repeat(unit, min(per, p.Count))
			for left := p.Count; left > 0; {
				n := min(left, len(chunk)/len(unit))
				if _, err := w.Write(chunk[:n*len(unit)]); err != nil {
					return err
				}
				left -= n
			}
		default:
			if _, err := w.Write([]byte(p.Text)); err != nil {
				return err
			}
		}
	}
	return nil
}

// corpusIdle is the daemon's idle timeout in the corpus run: long enough
// for the slow writer's line, short enough to bound the slowloris case.
const corpusIdle = 4 * time.Second

func TestBadInputCorpus(t *testing.T) {
	cases := loadCases(t)
	if len(cases) < 30 {
		t.Fatalf("the corpus has %d cases; it must keep at least 30", len(cases))
	}
	d := startDaemon(t, daemonOpts{
		pool:   pool.Config{Size: 4},
		server: server.Config{IdleTimeout: corpusIdle, WriteTimeout: time.Second},
	})
	can := startCanary(t, d.path)

	t.Run("concurrent", func(t *testing.T) {
		for _, c := range cases {
			if c.Exclusive {
				continue
			}
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				runCase(t, d, c)
			})
		}
	})
	for _, c := range cases {
		if c.Exclusive {
			t.Run(c.Name, func(t *testing.T) { runCase(t, d, c) })
		}
	}
	can.stop(t)
}

func runCase(t *testing.T, d *daemon, c badCase) {
	if c.MaxAllocMiB > 0 {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		defer func() {
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if got := (after.TotalAlloc - before.TotalAlloc) >> 20; got > c.MaxAllocMiB {
				t.Errorf("allocated %d MiB during the case, want at most %d", got, c.MaxAllocMiB)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	switch c.Mode {
	case "idle":
		runIdle(t, d, c, deadline)
		return
	case "noread":
		runNoRead(t, d, c, deadline)
		return
	}
	rc := dialRaw(t, d.path, true)
	// For a connection that must stay open, a probe call follows the input
	// at once: waiting for the case's answers first gave a loaded machine
	// time to pass the idle timeout between them, and the daemon rightly
	// closed the idle connection.
	probe := c.After == "open"
	werr := make(chan error, 1)
	go func() {
		var err error
		switch c.Mode {
		case "slow":
			err = writeInput(&slowWriter{w: rc.nc, every: time.Duration(c.IntervalMS) * time.Millisecond, until: deadline}, c.Input)
		default:
			err = writeInput(rc.nc, c.Input)
		}
		if probe && err == nil {
			if _, err = io.WriteString(rc.nc, `{"id":"probe","method":"attestation/status"}`+"\n"); err != nil {
				err = fmt.Errorf("connection unusable after the case: %w", err)
			}
		}
		if c.Mode == "halfclose" && err == nil {
			err = rc.nc.CloseWrite()
		}
		werr <- err
	}()
	wants := c.Answers
	if probe {
		// Answers come as they are ready, so the probe's may come first.
		wants = append(slices.Clone(wants), want{ID: `"probe"`})
	}
	expectAnswers(t, rc, wants, deadline)
	switch c.After {
	case "open":
		if err := <-werr; err != nil {
			t.Fatalf("sending the input: %v", err)
		}
	case "close":
		line, err := rc.next(t, deadline)
		if line != nil {
			t.Fatalf("want a close, got another answer: %.300q", line)
		}
		if !isCleanClose(err) {
			t.Fatalf("want a clean close, got %v", err)
		}
		// The writer ends too: done, or refused by the closed socket.
		if err := <-werr; err != nil && !isReset(err) && !errors.Is(err, net.ErrClosed) {
			t.Fatalf("sending the input: %v", err)
		}
	}
}

// expectAnswers reads until every wanted answer has come, failing on any
// answer not wanted.
func expectAnswers(t *testing.T, rc *rawConn, wants []want, deadline time.Time) {
	t.Helper()
	left := map[[2]string]int{}
	n := 0
	for _, w := range wants {
		left[[2]string{w.ID, fmt.Sprint(w.Code)}] += max(w.Times, 1)
		n += max(w.Times, 1)
	}
	for n > 0 {
		line, err := rc.next(t, deadline)
		if line == nil {
			t.Fatalf("connection ended with %d answers missing (%v): %v", n, err, left)
		}
		a, err := parseAnswer(line)
		if err != nil {
			t.Fatal(err)
		}
		code := int64(0)
		if a.Err != nil {
			code = a.Err.Code
		}
		k := [2]string{a.ID, fmt.Sprint(code)}
		if left[k] == 0 {
			t.Fatalf("unexpected answer (id %.100s, code %d): %.300q", a.ID, code, line)
		}
		if code == 0 && strings.Contains(string(a.Result), `"token"`) && !strings.HasPrefix(a.token(), "v1.") {
			t.Fatalf("a result without a v1. token: %.300q", line)
		}
		left[k]--
		n--
	}
}

// slowWriter writes one byte at a time, every so often: the slow client's
// pacing is the input under test.
type slowWriter struct {
	w     io.Writer
	every time.Duration
	until time.Time
}

func (s *slowWriter) Write(p []byte) (int, error) {
	for i := range p {
		if time.Now().After(s.until) {
			return i, errors.New("slow writer ran out of time")
		}
		if _, err := s.w.Write(p[i : i+1]); err != nil {
			return i, err
		}
		time.Sleep(s.every)
	}
	return len(p), nil
}

// runNoRead sends the input again and again without reading a byte, until
// the daemon gives up on the connection.
func runNoRead(t *testing.T, d *daemon, c badCase, deadline time.Time) {
	rc := dialRaw(t, d.path, false)
	var buf bytes.Buffer
	if err := writeInput(&buf, c.Input); err != nil {
		t.Fatal(err)
	}
	batch := bytes.Repeat(buf.Bytes(), 64)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the daemon kept a connection whose client never reads")
		}
		rc.nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := rc.nc.Write(batch)
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if !isReset(err) {
			t.Fatalf("write: %v", err)
		}
		break
	}
	// Whatever was answered before the close is whole answers, then EOF.
	rc.nc.SetReadDeadline(deadline)
	data, err := io.ReadAll(rc.nc)
	if err != nil && !isReset(err) {
		t.Fatalf("read after the close: %v", err)
	}
	lines := bytes.Split(data, []byte("\n"))
	for _, l := range lines[:len(lines)-1] {
		if _, err := parseAnswer(l); err != nil {
			t.Fatal(err)
		}
	}
}

// runIdle opens many connections that send nothing and waits until the
// daemon has closed every one.
func runIdle(t *testing.T, d *daemon, c badCase, deadline time.Time) {
	conns := make([]*net.UnixConn, 0, c.Conns)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range c.Conns {
		nc, err := net.DialTimeout("unix", d.path, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, nc.(*net.UnixConn))
	}
	var wg sync.WaitGroup
	var unclean atomic.Int64
	var firstErr atomic.Value
	for _, nc := range conns {
		wg.Go(func() {
			nc.SetReadDeadline(deadline)
			data, err := io.ReadAll(nc)
			if (err != nil && !isReset(err)) || len(data) > 0 && !bytes.Contains(data, []byte("too_many_connections")) {
				unclean.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%v %.200q", err, data))
			}
		})
	}
	wg.Wait()
	if n := unclean.Load(); n > 0 {
		t.Fatalf("%d of %d idle connections did not end in a clean close: first %v", n, c.Conns, firstErr.Load())
	}
}

// canary is a well-behaved client asking for a token every 10 ms while
// the corpus runs. It retries a call only when its connection was closed
// under it (evicted as the longest idle at the connection cap), and counts
// that.
type canary struct {
	stopc   chan struct{}
	done    chan struct{}
	calls   int
	evicted int
	fails   []string
}

func startCanary(t *testing.T, path string) *canary {
	if _, err := getToken(path, 10*time.Second); err != nil {
		t.Fatalf("canary: %v", err)
	}
	c := &canary{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		cl := client.New(path)
		defer cl.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.stopc:
				return
			case <-tick.C:
			}
			c.calls++
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := cl.Token(ctx)
				cancel()
				if err == nil {
					break
				}
				if provider.ReasonOf(err) == provider.ReasonDaemonUnreachable && attempt == 0 {
					c.evicted++
					continue
				}
				c.fails = append(c.fails, err.Error())
				break
			}
		}
	}()
	return c
}

func (c *canary) stop(t *testing.T) {
	close(c.stopc)
	<-c.done
	t.Logf("well-behaved client: %d calls, %d after its connection was evicted, %d failed", c.calls, c.evicted, len(c.fails))
	if len(c.fails) > 0 {
		sort.Strings(c.fails)
		t.Fatalf("the daemon failed a well-behaved client %d times during the corpus, e.g. %s", len(c.fails), c.fails[0])
	}
	if c.calls == 0 {
		t.Fatal("the well-behaved client never ran")
	}
}
