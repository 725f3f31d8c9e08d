package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// runner is what proxytest needs of a test (proxytest.TB), for a program:
// temporary directories, cleanups run at the end, and a failure that
// stops the run.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   bool
}

func (r *runner) Helper() {}

// TempDir returns a new directory, removed at the end.
func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp("", "gatebench-")
	r.check(err)
	r.mu.Lock()
	r.dirs = append(r.dirs, dir)
	r.mu.Unlock()
	return dir
}

// Fatal prints args, cleans up and exits 1.
func (r *runner) Fatal(args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintln(os.Stderr, append([]any{"gatebench:"}, args...)...)
	r.cleanup()
	os.Exit(1)
}

func (r *runner) Logf(format string, args ...any) { logf(format, args...) }

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// cleanup runs the cleanups, last first, then removes the directories.
func (r *runner) cleanup() {
	r.mu.Lock()
	fs, dirs := r.cleanups, r.dirs
	r.cleanups, r.dirs = nil, nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

func (r *runner) check(err error) {
	if err != nil {
		r.Fatal(err)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(r *runner) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	r.check(err)
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers 200, for at most a minute.
func waitHTTP(r *runner, url string) {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			r.Fatal(url, "did not answer 200 within a minute:", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
