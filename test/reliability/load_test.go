package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
	"go.uber.org/goleak"
)

// faultyScript fails 10% of generations, hangs 1% until the generation
// timeout, and panics once every 500.
func faultyScript(n int) providertest.Step {
	switch {
	case n%500 == 251:
		return providertest.Step{Panic: fmt.Sprintf("scripted panic in call %d", n)}
	case n%100 == 57:
		return providertest.Step{Hang: true}
	case n%10 == 3:
		return providertest.Step{Err: &provider.Error{Reason: provider.ReasonProviderError, Msg: fmt.Sprintf("scripted failure %d", n)}}
	}
	return providertest.Step{}
}

// loadSize is 64 connections × 1,000 pipelined requests, scaled down under
// -short, and to 250 per connection under the race detector: with 64 in
// flight per connection, 4,096 requests contend for the pool's lock, and
// the race detector's slower lock handoffs make that convoy take ~100 s
// for the full count on 2 cores (~10 s for 250).
func loadSize() (conns, perConn int) {
	switch {
	case testing.Short():
		return 16, 100
	case raceEnabled:
		return 64, 250
	}
	return 64, 1000
}

func TestLoadWithFaults(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after the daemon stops
	conns, perConn := loadSize()
	d := startDaemon(t, daemonOpts{
		script: faultyScript,
		pool:   pool.Config{Size: 8, GenerateTimeout: 20 * time.Millisecond},
	})

	// A well-behaved client warms the pool and proves the daemon works.
	mustToken(t, d.path)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	results := make([][]answer, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() { results[c], errs[c] = pipeline(d.path, c, perConn) })
	}
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			t.Errorf("connection %d: %v", c, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Exactly one answer per request, with its own id; each token once.
	seen := map[string]int{} // header value → connection
	raw := map[string]bool{}
	var tokens []string
	var served, failed int
	reasons := map[string]int{}
	for c, as := range results {
		ids := map[string]bool{}
		for _, a := range as {
			if ids[a.ID] {
				t.Fatalf("connection %d: two answers for id %s", c, a.ID)
			}
			ids[a.ID] = true
			if a.Err != nil {
				if a.Err.Code != jsonrpc.CodeAttestation {
					t.Fatalf("connection %d: unexpected error answer %s", c, a.Line)
				}
				failed++
				reasons[a.Err.reason()]++
				continue
			}
			tok := a.token()
			v, err := header.Decode(tok)
			if err != nil {
				t.Fatalf("connection %d: answer %s has a bad token: %v", c, a.ID, err)
			}
			if prev, dup := seen[tok]; dup {
				t.Fatalf("token handed out twice: to connections %d and %d", prev, c)
			}
			if raw[string(v.Token)] {
				t.Fatalf("raw token bytes handed out twice (connection %d)", c)
			}
			seen[tok], raw[string(v.Token)] = c, true
			tokens = append(tokens, tok)
			served++
		}
		for i := range perConn {
			if !ids[loadID(c, i)] {
				t.Fatalf("connection %d: no answer for id %s", c, loadID(c, i))
			}
		}
	}
	st := d.pool.Status()
	t.Logf("%d requests: %d tokens, %d errors %v; pool %+v", conns*perConn, served, failed, reasons, st.Counters)
	if served == 0 {
		t.Fatal("no request got a token")
	}
	if st.Counters.GenerateFailures == 0 {
		t.Fatal("the faulty provider never failed: the test proves nothing")
	}

	// The daemon is still answering.
	mustToken(t, d.path)

	// No token in the logs, in any form, at any level.
	assertNoTokensIn(t, d.logs.all(), tokens)
	d.logs.reset()
	results, seen, raw, tokens = nil, nil, nil, nil

	// Goroutines and memory return to where they started.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutinesBefore {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before the load, %d after", goroutinesBefore, runtime.NumGoroutine())
		}
		time.Sleep(10 * time.Millisecond) // polling an observable count; there is no event for it
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	const slack = 8 << 20
	if after.HeapAlloc > before.HeapAlloc+slack {
		t.Fatalf("heap: %d bytes before the load, %d after (more than %d over)", before.HeapAlloc, after.HeapAlloc, slack)
	}
	t.Logf("heap: %d KiB before, %d KiB after; goroutines %d before, %d after",
		before.HeapAlloc>>10, after.HeapAlloc>>10, goroutinesBefore, runtime.NumGoroutine())
}

// loadID is the id of request i on connection c: integers on even
// connections, strings on odd ones.
func loadID(c, i int) string {
	if c%2 == 0 {
		return fmt.Sprint(c*1_000_000 + i)
	}
	return fmt.Sprintf(`"c%d-%d"`, c, i)
}

// pipeline sends n attestation/generate calls on one connection without
// waiting, then reads until each has been answered.
func pipeline(path string, c, n int) ([]answer, error) {
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	werr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriter(nc)
		for i := range n {
			fmt.Fprintf(bw, `{"id":%s,"method":"attestation/generate","params":{}}`+"\n", loadID(c, i))
		}
		werr <- bw.Flush()
	}()
	out := make([]answer, 0, n)
	br := bufio.NewReader(nc)
	for len(out) < n {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return out, fmt.Errorf("after %d answers: %w", len(out), err)
		}
		a, err := parseAnswer(line)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, <-werr
}

// mustToken gets a token as a well-behaved client would, retrying while
// the pool makes its first one.
func mustToken(t testing.TB, path string) string {
	t.Helper()
	tok, err := getToken(path, 10*time.Second)
	if err != nil {
		t.Fatalf("well-behaved client: %v", err)
	}
	return tok
}

func getToken(path string, within time.Duration) (string, error) {
	cl := client.New(path)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		tok, err := cl.Token(ctx)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			return "", err
		}
		// timeout, backoff or a scripted failure: the next one may work
	}
}

// assertNoTokensIn fails if any token appears in logs as its header value,
// its raw bytes, or the standard or URL base64 or hex of either. It looks
// up every 12-byte window of the logs among 12-byte pieces of each form
// taken from inside the token bytes, which no log field can contain by
// chance.
func assertNoTokensIn(t testing.TB, logs []byte, tokens []string) {
	t.Helper()
	const w = 12
	keys := map[string]string{}
	add := func(form, s string, at int) {
		if at+w <= len(s) {
			keys[s[at:at+w]] = form
		}
	}
	for _, tok := range tokens {
		v, err := header.Decode(tok)
		if err != nil {
			t.Fatal(err)
		}
		r := string(v.Token)
		add("header value", tok, 24) // chars 17…59 encode the token bytes
		add("raw token", r, 8)
		add("base64 token", base64.StdEncoding.EncodeToString(v.Token), 8)
		add("base64url token", base64.RawURLEncoding.EncodeToString(v.Token), 8)
		add("hex token", hex.EncodeToString(v.Token), 8)
		add("base64 header value", base64.StdEncoding.EncodeToString([]byte(tok)), 24)
		add("base64url header value", base64.RawURLEncoding.EncodeToString([]byte(tok)), 24)
	}
	if len(logs) == 0 {
		t.Fatal("no logs captured: the check proves nothing")
	}
	for i := 0; i+w <= len(logs); i++ {
		if form, ok := keys[string(logs[i:i+w])]; ok {
			start := bytes.LastIndexByte(logs[:i], '\n') + 1
			end := i + bytes.IndexByte(logs[i:], '\n')
			if end < i {
				end = len(logs)
			}
			t.Fatalf("a %s appears in the logs:\n%s", form, logs[start:end])
		}
	}
	if !strings.Contains(string(logs), "fingerprint") {
		t.Fatal("no token fingerprint in the debug logs: were tokens logged at all?")
	}
}
