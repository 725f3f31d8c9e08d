package socket

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// probeTimeout bounds the connection attempt that tells a live socket from
// a stale one.
const probeTimeout = time.Second

// Stale reports whether the socket at path was left behind by a daemon
// that is gone. Only an answer that proves nobody listens counts:
// ECONNREFUSED, or no file at all. Anything else is no proof and Stale
// returns false with the reason: nil when a connection was accepted, the
// dial error otherwise. Notably a full connection queue (EAGAIN on Linux)
// means a live daemon that is stopped or overloaded.
//
// On macOS, as on every BSD, a full queue of a Unix socket is also
// reported as ECONNREFUSED, so there a daemon stopped with its whole
// backlog (kern.ipc.somaxconn, 128) queued would look stale.
func Stale(path string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return false, nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return true, err
	}
	return false, err
}

// removeStale removes the socket file at path if it is stale, and refuses
// to go on when anything may still listen on it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return &PathError{What: "socket path", Path: path, Reason: "exists and is not a socket",
			HintText: "remove it, or " + otherPathHint, Err: fs.ErrExist}
	}
	stale, err := Stale(path)
	switch {
	case stale:
	case err == nil:
		return fmt.Errorf("%w: %s", ErrAlreadyRunning, path)
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("%w: %s (its connection queue is full: it may be stopped or overloaded)", ErrAlreadyRunning, path)
	default:
		return &PathError{What: "socket path", Path: path, Err: err,
			Reason:   fmt.Sprintf("exists and cannot be probed (%v), so it may still be in use", err),
			HintText: "if no daemon uses it, remove it: rm " + path}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
