package server

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/internal/poll"
	"github.com/attestd/attestd/bridge/provider/providertest"
)

// flood pipelines n generate requests on a connection of its own from a
// goroutine, and reads (and drops) whatever comes back. stop closes the
// connection and waits for both goroutines.
func flood(t *testing.T, ts *testServer, n int) (stop func()) {
	t.Helper()
	nc, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		bw := bufio.NewWriterSize(nc, 1<<16)
		for i := range n {
			bw.WriteString(`{"id":` + strconv.Itoa(i) + `,"method":"attestation/generate"}` + "\n")
		}
		bw.Flush() // fails once stop closes the connection
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1<<16)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { nc.Close(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// Issue 14.11: under a flood of 10,000 pipelined requests on one
// connection, another connection's request gets one of the next two
// tokens made (round robin between the two), where first come, first
// served would make it wait behind the flood's 64 requests in flight.
func TestFloodDoesNotStarveOthers(t *testing.T) {
	gate := make(chan struct{})
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Release: gate} }}
	ts := start(t, prov, Config{Deadline: time.Minute})
	defer close(gate) // then every request left gets its token at once
	stop := flood(t, ts, 10000)
	defer stop()
	poll.Until(t, "the flood to fill its requests in flight", func() bool { return ts.pool.Status().Waiting == DefaultMaxInFlight })

	c := ts.dial(t)
	c.send(`{"id":"mine","method":"attestation/generate"}` + "\n")
	poll.Until(t, "the second connection's request to wait", func() bool { return ts.pool.Status().Waiting == DefaultMaxInFlight+1 })
	for made := uint64(1); made <= 2; made++ {
		gate <- struct{}{} // one token
		poll.Until(t, "the token to be handed out", func() bool { return ts.pool.Status().Counters.Served == made })
	}
	m := c.recv()
	res, _ := m["result"].(map[string]any)
	if tok, _ := res["token"].(string); m["id"] != "mine" || !strings.HasPrefix(tok, "v1.") {
		t.Fatalf("answer %v, want a token", m)
	}
}

// The same with real time: a provider taking 10 ms a token, and the
// flood's requests in flight waiting up to the deadline. Every request of
// the second connection gets a token within it; first come, first served
// would make each wait 64 tokens, 640 ms.
func TestFloodDoesNotStarveOthersInTime(t *testing.T) {
	prov := &providertest.Scripted{Script: func(int) providertest.Step { return providertest.Step{Delay: 10 * time.Millisecond} }}
	ts := start(t, prov, Config{Deadline: 500 * time.Millisecond})
	stop := flood(t, ts, 10000)
	defer stop()
	poll.Until(t, "the flood to fill its requests in flight", func() bool { return ts.pool.Status().Waiting >= DefaultMaxInFlight/2 })
	c := ts.dial(t)
	for i := range 20 {
		c.send(`{"id":` + strconv.Itoa(i) + `,"method":"attestation/generate"}` + "\n")
		m := c.recv()
		if res, _ := m["result"].(map[string]any); res["token"] == nil {
			t.Fatalf("request %d: %v, want a token", i, m)
		}
	}
}
