package stdio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ndjson returns about size bytes of app-server-like traffic: many small
// streaming deltas, command output with escapes, and a few large lines.
func ndjson(size int) []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < size; i++ {
		switch {
		case i%500 == 499:
			fmt.Fprintf(&buf, `{"method":"item/completed","params":{"threadId":"t-1","item":{"type":"agentMessage","id":"i-%d","text":"%s"}}}`+"\n", i, strings.Repeat("lorem ipsum ", 20<<10))
		case i%10 == 9:
			fmt.Fprintf(&buf, `{"method":"item/commandExecution/outputDelta","params":{"threadId":"t-1","itemId":"i-%d","delta":"%s"}}`+"\n", i, strings.Repeat(`\u001b[32mok\u001b[0m  github.com/x/y\t0.01s\n`, 40))
		case i%7 == 6:
			fmt.Fprintf(&buf, `{"id":%d,"result":{"thread":{"id":"t-1","preview":"%s"}}}`+"\n", i, strings.Repeat("x", 300))
		default:
			fmt.Fprintf(&buf, `{"method":"item/agentMessage/delta","params":{"threadId":"t-1","turnId":"u-1","itemId":"i-%d","delta":"some words of the answer "}}`+"\n", i)
		}
	}
	return buf.Bytes()
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// pump sends data through relay from one OS pipe to another and returns
// how long it took until the reader had it all.
func pump(b *testing.B, data []byte, relay func(dst io.Writer, src io.Reader)) time.Duration {
	srcR, srcW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	dstR, dstW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer srcR.Close()
	defer dstR.Close()
	read := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, dstR)
		read <- n
	}()
	start := time.Now()
	go func() {
		srcW.Write(data)
		srcW.Close()
	}()
	relay(dstW, srcR)
	dstW.Close()
	if n := <-read; n != int64(len(data)) {
		b.Fatalf("relayed %d bytes, want %d", n, len(data))
	}
	return time.Since(start)
}

// BenchmarkPassthrough compares the bridge's relay with io.Copy through the
// same kind of pipes, in each direction, and reports the bridge's
// throughput as a fraction of io.Copy's ("x-of-io.Copy", 1 = as fast).
func BenchmarkPassthrough(b *testing.B) {
	data := ndjson(32 << 20)
	directions := []struct {
		name  string
		relay func(dst io.Writer, src io.Reader)
	}{
		{"child-to-client", func(dst io.Writer, src io.Reader) {
			clientIn, clientInW := io.Pipe()
			defer clientInW.Close()
			br := &Bridge{Source: &fakeSource{}}
			if err := br.Serve(clientIn, dst, nopWriteCloser{io.Discard}, src); err != nil {
				b.Error(err)
			}
		}},
		{"client-to-child", func(dst io.Writer, src io.Reader) {
			childOut, childOutW := io.Pipe()
			done := make(chan struct{})
			br := &Bridge{Source: &fakeSource{}}
			child := &closeNotifier{Writer: dst, closed: done}
			go func() {
				// The child's output ends once its input has: client EOF
				// closes the child's stdin, here our notifier.
				<-done
				childOutW.Close()
			}()
			if err := br.Serve(src, io.Discard, child, childOut); err != nil {
				b.Error(err)
			}
		}},
	}
	for _, d := range directions {
		b.Run(d.name, func(b *testing.B) {
			var copyTime, bridgeTime time.Duration
			for b.Loop() {
				copyTime += pump(b, data, func(dst io.Writer, src io.Reader) { io.Copy(dst, src) })
				bridgeTime += pump(b, data, d.relay)
			}
			mb := float64(len(data)) * float64(b.N) / (1 << 20)
			b.ReportMetric(mb/copyTime.Seconds(), "io.Copy-MiB/s")
			b.ReportMetric(mb/bridgeTime.Seconds(), "bridge-MiB/s")
			b.ReportMetric(copyTime.Seconds()/bridgeTime.Seconds(), "x-of-io.Copy")
		})
	}
}

// closeNotifier is a WriteCloser whose Close closes a channel.
type closeNotifier struct {
	io.Writer
	closed chan struct{}
}

func (c *closeNotifier) Close() error {
	close(c.closed)
	return nil
}

// BenchmarkLongLine relays one 100 MiB line through the bridge in each
// direction and reports the bytes allocated meanwhile, an upper bound on
// the memory the line costs ("MiB-alloc"), beside io.Copy through the
// same kind of reader and writer as a baseline ("io.Copy-MiB-alloc").
// Before the bridge streamed long lines it allocated 356 MiB here.
func BenchmarkLongLine(b *testing.B) {
	const size = 100 << 20
	for _, l := range longLines {
		for _, toChild := range []bool{false, true} {
			name := l.name + "/child-to-client"
			if toChild {
				name = l.name + "/client-to-child"
			}
			b.Run(name, func(b *testing.B) {
				var bridge, baseline uint64
				for b.Loop() {
					bridge += relayLongLine(b, toChild, l.prefix, size)
					baseline += copyAlloc(l.prefix, size)
				}
				b.ReportMetric(float64(bridge)/float64(b.N)/(1<<20), "MiB-alloc")
				b.ReportMetric(float64(baseline)/float64(b.N)/(1<<20), "io.Copy-MiB-alloc")
				b.SetBytes(size)
			})
		}
	}
}

// copyAlloc returns the bytes io.Copy allocates to pass the same line on.
func copyAlloc(prefix string, size int) uint64 {
	src := &lineSource{prefix: prefix, suffix: `"}}` + "\n", n: size}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	io.Copy(struct{ io.Writer }{&countWriter{}}, struct{ io.Reader }{src})
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// holdSource is a warm ReadyWaiter: a token is always ready.
type holdSource struct{ fakeSource }

func (*holdSource) WaitReady(context.Context) error { return nil }

// BenchmarkHold measures what the hold adds to a turn/start when a token
// is ready, the common case: the time from the client's write to the
// child's read, with the hold on ("ns/turn-start") and with a Source that
// cannot hold as the baseline ("no-hold-ns/turn-start"). When no token is
// ready the hold adds the time until one is, bounded by Bridge.Hold; the
// end-to-end test against codex logs that figure.
func BenchmarkHold(b *testing.B) {
	line := []byte(turnStart)
	run := func(src Source, n int) time.Duration {
		clientIn, clientInW := io.Pipe()
		childIn, childInW := io.Pipe()
		childOut, childOutW := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- (&Bridge{Source: src}).Serve(clientIn, io.Discard, childInW, childOut) }()
		buf := make([]byte, len(line))
		var total time.Duration
		for range n {
			start := time.Now()
			clientInW.Write(line)
			if _, err := io.ReadFull(childIn, buf); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		clientInW.Close()
		childOutW.Close()
		io.Copy(io.Discard, childIn)
		<-done
		return total
	}
	var hold, plain time.Duration
	for b.Loop() {
		hold += run(&holdSource{}, 1000)
		plain += run(&fakeSource{}, 1000)
	}
	b.ReportMetric(float64(hold.Nanoseconds())/float64(b.N*1000), "ns/turn-start")
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N*1000), "no-hold-ns/turn-start")
	b.ReportMetric(float64(hold)/float64(plain), "x-of-no-hold")
}
