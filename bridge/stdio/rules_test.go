package stdio

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The bridge reads a line as codex app-server does: a line that names
// method (or id, or params) twice is no message, so it is neither
// rewritten, warmed on nor answered, but passed on unchanged; inside
// params the last of repeated keys counts.
func TestBridgeRepeatedKeys(t *testing.T) {
	src := &fakeSource{}
	p := startServe(t, &Bridge{Source: src})
	client := []struct{ in, want string }{
		{ // the matcher read the first method, the decoder the last
			`{"id":1,"method":"initialize","method":"turn/start","params":{}}`,
			`{"id":1,"method":"initialize","method":"turn/start","params":{}}`,
		},
		{ // the rewrite changed the last params
			`{"id":2,"method":"initialize","params":{"capabilities":{}},"params":{}}`,
			`{"id":2,"method":"initialize","params":{"capabilities":{}},"params":{}}`,
		},
		{ // inside params, the last capabilities is the one the app-server keeps
			`{"id":3,"method":"initialize","params":{"capabilities":{"requestAttestation":false},"capabilities":{}}}`,
			`{"id":3,"method":"initialize","params":{"capabilities":{"requestAttestation":false},"capabilities":{"requestAttestation":true}}}`,
		},
	}
	for i, c := range client {
		go io.WriteString(p.clientIn, c.in+"\n")
		if got := readLine(t, p.childIn, fmt.Sprint("client line ", i)); got != c.want+"\n" {
			t.Errorf("client line %d: child got\n%s\nwant\n%s", i, got, c.want)
		}
	}
	if w := src.warms.Load(); w != 1 {
		t.Errorf("Warm called %d times, want 1 (the one well-formed initialize)", w)
	}
	for i, line := range []string{
		`{"method":"attestation/generate","id":0,"method":"x"}`,
		`{"method":"x","id":0,"method":"attestation/generate"}`,
		`{"method":"attestation/generate","id":0,"id":1}`,
	} {
		go io.WriteString(p.childOut, line+"\n")
		if got := readLine(t, p.clientOut, fmt.Sprint("child line ", i)); got != line+"\n" {
			t.Errorf("child line %d: client got %q, want it unchanged (no request, so not answered)", i, got)
		}
	}
}

// Strings are compared decoded: escapes spell the same names and values.
func TestBridgeExactStrings(t *testing.T) {
	p := startServe(t, &Bridge{Source: &fakeSource{}, Deadline: time.Hour})
	for i, c := range []struct{ req, id string }{
		{`{"jsonrpc":"2\u002e0","method":"attestation/generate","id":0}`, `0`},
		{`{"id":"a","m\u0065thod":"attestation\/generate"}`, `"a"`},
	} {
		go io.WriteString(p.childOut, c.req+"\n")
		if got := readLine(t, p.childIn, fmt.Sprint("answer ", i)); !strings.HasPrefix(got, `{"id":`+c.id+`,"result":{"token":"v1.tok-`) {
			t.Errorf("request %s: child got %q, want an answer", c.req, got)
		}
	}
	in := `{"jsonrpc":"2\u002e0","id":1,"m\u0065thod":"initi\u0061lize","params":{}}`
	go io.WriteString(p.clientIn, in+"\n")
	want := `{"jsonrpc":"2\u002e0","id":1,"m\u0065thod":"initi\u0061lize","params":{"capabilities":{"requestAttestation":true}}}` + "\n"
	if got := readLine(t, p.childIn, "initialize"); got != want {
		t.Errorf("child got %s, want %s", got, want)
	}
}

// lineSource produces one line of n filler bytes between a prefix and a
// suffix without holding it: the test's own memory stays small too.
type lineSource struct {
	prefix, suffix string
	n              int
	off            int
}

func (r *lineSource) Read(p []byte) (int, error) {
	total := len(r.prefix) + r.n + len(r.suffix)
	if r.off >= total {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.off < total {
		switch {
		case r.off < len(r.prefix):
			c := copy(p[k:], r.prefix[r.off:])
			k += c
			r.off += c
		case r.off < len(r.prefix)+r.n:
			c := min(len(p)-k, len(r.prefix)+r.n-r.off)
			for j := range c {
				p[k+j] = 'x'
			}
			k += c
			r.off += c
		default:
			c := copy(p[k:], r.suffix[r.off-len(r.prefix)-r.n:])
			k += c
			r.off += c
		}
	}
	return k, nil
}

// countWriter counts bytes and keeps the first and last few, without
// allocating.
type countWriter struct {
	n    int
	head []byte
	tail [64]byte
}

func (w *countWriter) Write(p []byte) (int, error) {
	if w.head == nil {
		w.head = make([]byte, 0, 64)
	}
	if len(w.head) < 64 {
		w.head = append(w.head, p[:min(len(p), 64-len(w.head))]...)
	}
	if len(p) >= len(w.tail) {
		copy(w.tail[:], p[len(p)-len(w.tail):])
	} else {
		copy(w.tail[:], w.tail[len(p):])
		copy(w.tail[len(w.tail)-len(p):], p)
	}
	w.n += len(p)
	return len(p), nil
}

func (w *countWriter) Close() error { return nil }

// blockedReader blocks until closed, as a client or child that says
// nothing.
type blockedReader struct{ done chan struct{} }

func (r blockedReader) Read([]byte) (int, error) {
	<-r.done
	return 0, io.EOF
}

// relayLongLine passes one line of size bytes through Serve in one
// direction and returns the bytes allocated meanwhile.
func relayLongLine(t testing.TB, toChild bool, prefix string, size int) uint64 {
	src := &lineSource{prefix: prefix, suffix: `"}}` + "\n", n: size}
	out := &countWriter{}
	quiet := blockedReader{done: make(chan struct{})}
	b := &Bridge{Source: &fakeSource{}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var err error
	if toChild {
		// The child's output ends once its input has.
		childOut, childOutW := io.Pipe()
		child := &closeNotifier{Writer: out, closed: make(chan struct{})}
		go func() {
			<-child.closed
			childOutW.Close()
		}()
		err = b.Serve(src, io.Discard, child, childOut)
	} else {
		err = b.Serve(quiet, out, &countWriter{}, src)
	}
	runtime.ReadMemStats(&after)
	close(quiet.done)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := len(prefix) + size + 4
	if out.n != want || string(out.head[:len(prefix)]) != prefix[:min(len(prefix), 64)] || string(out.tail[len(out.tail)-4:]) != `"}}`+"\n" {
		t.Fatalf("relayed %d bytes (%.20q…%q), want %d", out.n, out.head, out.tail, want)
	}
	return after.TotalAlloc - before.TotalAlloc
}

// longLines are the shapes of a long line: a method the bridge does not
// act on, one it holds (read up to MaxInspect), and a method that comes
// after the long part (read up to MaxInspect, then streamed).
var longLines = []struct{ name, prefix string }{
	{"passthrough", `{"method":"item/agentMessage/delta","params":{"delta":"`},
	{"turn-start", `{"id":3,"method":"turn/start","params":{"threadId":"t","image":"`},
	{"method-last", `{"id":4,"params":{"p":1},"x":{"image":"`},
}

// A long line, either way, costs the bridge about MaxInspect of memory,
// not the line's size: a 32 MiB line (twice the limit) allocated 128 MiB
// when the bridge gathered whole lines. BenchmarkLongLine and the
// process test in cmd/attestd use 100 MiB.
func TestLongLinesUseBoundedMemory(t *testing.T) {
	const size = 32 << 20
	const limit = 16 << 20
	for _, l := range longLines {
		for _, toChild := range []bool{true, false} {
			name := l.name + "/child-to-client"
			if toChild {
				name = l.name + "/client-to-child"
			}
			t.Run(name, func(t *testing.T) {
				if alloc := relayLongLine(t, toChild, l.prefix, size); alloc > limit {
					t.Errorf("relaying a %d MiB line allocated %.1f MiB, want at most %d MiB", size>>20, float64(alloc)/(1<<20), limit>>20)
				} else {
					t.Logf("relaying a %d MiB line allocated %.2f MiB", size>>20, float64(alloc)/(1<<20))
				}
			})
		}
	}
}
