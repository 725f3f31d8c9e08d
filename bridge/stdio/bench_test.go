package stdio

import (
	"bytes"
	"fmt"
	"io"
	"os"
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
