package stdio_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/attestd/attestd/bridge/stdio"
)

// fixedSource hands out the same value every time; a real Source is the
// token pool or the daemon's socket client, which never repeat a token.
type fixedSource string

func (s fixedSource) Token(context.Context) (string, error) { return string(s), nil }
func (s fixedSource) Warm()                                 {}

// child stands in for codex app-server: it records what it reads, and its
// output ends when its input does.
type child struct {
	mu       sync.Mutex
	got      strings.Builder
	answered chan struct{} // closed once it has read an answer
	outDone  *io.PipeWriter
}

func (c *child) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(string(p), `"result"`) {
		close(c.answered)
	}
	return c.got.Write(p)
}

func (c *child) Close() error { return c.outDone.Close() }

func ExampleBridge_Serve() {
	childOut, childOutW := io.Pipe()
	c := &child{answered: make(chan struct{}), outDone: childOutW}
	go io.WriteString(childOutW, `{"method":"attestation/generate","id":0,"params":{}}`+"\n")

	// The client says initialize, and hangs up once the child has its token.
	client, clientW := io.Pipe()
	go func() {
		io.WriteString(clientW, `{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"}}}`+"\n")
		<-c.answered
		clientW.Close()
	}()

	var toClient strings.Builder
	b := &stdio.Bridge{Source: fixedSource("v1.example")}
	if err := b.Serve(client, &toClient, c, childOut); err != nil {
		fmt.Println(err)
	}
	fmt.Print(c.got.String())
	fmt.Printf("the client got %d bytes\n", toClient.Len())
	// Unordered output:
	// {"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"},"capabilities":{"requestAttestation":true}}}
	// {"id":0,"result":{"token":"v1.example"}}
	// the client got 0 bytes
}
