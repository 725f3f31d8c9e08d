package client

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
)

// A daemon that refuses the peer answers with peer_refused and closes; the
// client must report that reason whichever comes first, the refusal or the
// failed write of the request, and not tell the user to start the daemon.
func TestRefusalIsReportedAsSuch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attestd.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(pool.Config{Provider: provider.Dev{}})
	defer p.Close()
	other := os.Getuid() + 1
	srv := server.New(server.Config{Tokens: p, UID: &other})
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	defer func() { srv.Shutdown(context.Background()); <-done }()

	cl := New(path)
	defer cl.Close()
	for i := range 20 { // a new connection each time: the race goes both ways
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cl.Token(ctx)
		cancel()
		if got := provider.ReasonOf(err); got != "peer_refused" {
			t.Fatalf("call %d: reason %q (%v), want peer_refused", i, got, err)
		}
	}
}
