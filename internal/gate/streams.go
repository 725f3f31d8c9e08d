package gate

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
)

// streams tracks the connections handlers took over from the HTTP server
// (websockets, which httputil.ReverseProxy hijacks after a 101):
// http.Server.Shutdown neither waits for nor closes them, so the gate
// does both, within its grace.
type streams struct {
	mu      sync.Mutex
	conns   map[*streamConn]struct{}
	changed chan struct{} // closed, and replaced, whenever one ends
}

func newStreams() *streams {
	return &streams{conns: map[*streamConn]struct{}{}, changed: make(chan struct{})}
}

// track returns c, tracked until it is closed.
func (s *streams) track(c net.Conn) net.Conn {
	sc := &streamConn{Conn: c, owner: s}
	s.mu.Lock()
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	return sc
}

// open returns how many tracked connections are open.
func (s *streams) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// wait returns once no tracked connection is open (true), or when ctx
// ends (false).
func (s *streams) wait(ctx context.Context) bool {
	for {
		s.mu.Lock()
		n, changed := len(s.conns), s.changed
		s.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// closeAll closes every tracked connection and returns how many there
// were.
func (s *streams) closeAll() int {
	s.mu.Lock()
	conns := make([]*streamConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

func (s *streams) remove(c *streamConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// streamConn is a tracked connection; closing it ends its tracking.
type streamConn struct {
	net.Conn
	owner *streams
	once  sync.Once
	err   error
}

func (c *streamConn) Close() error {
	c.once.Do(func() {
		c.err = c.Conn.Close()
		c.owner.remove(c)
	})
	return c.err
}

// recorder is the ResponseWriter handlers get: it notes the status for
// the metrics, and hands out hijacked connections tracked by streams.
// Other features (Flush, deadlines) are reached through Unwrap, as
// http.ResponseController does.
type recorder struct {
	http.ResponseWriter
	streams  *streams
	status   int
	hijacked bool
}

// WriteHeader notes the first final status (or 101).
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the server's ResponseWriter, for http.ResponseController.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes the connection over, tracked until it is closed.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return w.streams.track(conn), rw, nil
}
