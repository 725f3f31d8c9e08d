package redistest

import (
	"bytes"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// LossyProxy stands between clients and a redis-server on a Unix socket
// of its own and can lose a reply: the next command whose bytes contain
// a marker reaches Redis and runs, but the proxy closes the client's
// connection instead of passing the answer on, as a network that fails
// after the command went out does. Tests of what a store does when the
// outcome of a command is unknown use it.
type LossyProxy struct {
	// Socket is the path of the proxy's Unix socket.
	Socket string

	ln    net.Listener
	armed atomic.Pointer[[]byte]
	wg    sync.WaitGroup
}

// StartLossyProxy starts a proxy in front of srv, next to srv's socket.
// It stops when the test ends.
func StartLossyProxy(tb testing.TB, srv *Server) *LossyProxy {
	tb.Helper()
	p := &LossyProxy{Socket: filepath.Join(filepath.Dir(srv.Socket), "lossy-proxy.sock")}
	ln, err := net.Listen("unix", p.Socket)
	if err != nil {
		tb.Fatal(err)
	}
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c, srv.Socket) }()
		}
	}()
	tb.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// URL returns the proxy's address as go-redis's ParseURL takes it.
func (p *LossyProxy) URL() string { return "unix://" + p.Socket }

// LoseReplyTo arms the proxy for the next command that contains marker.
func (p *LossyProxy) LoseReplyTo(marker string) { b := []byte(marker); p.armed.Store(&b) }

// Armed reports whether the proxy is still waiting for the command to
// lose the reply of.
func (p *LossyProxy) Armed() bool { return p.armed.Load() != nil }

func (p *LossyProxy) serve(client net.Conn, upstream string) {
	defer client.Close()
	server, err := net.Dial("unix", upstream)
	if err != nil {
		return
	}
	defer server.Close()
	var drop atomic.Bool
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if err != nil {
				server.Close()
				return
			}
			if m := p.armed.Load(); m != nil && bytes.Contains(buf[:n], *m) && p.armed.CompareAndSwap(m, nil) {
				drop.Store(true) // set before Redis can answer
			}
			if _, err := server.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if err != nil || drop.Load() {
			return // the command ran; its answer is lost with the connection
		}
		if _, err := client.Write(buf[:n]); err != nil {
			return
		}
	}
}
