package main

import (
	"errors"
	"net"

	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/darwin"
)

// listen opens the listeners chosen by the flags and says where they are.
// Their errors get hints that name the flags.
func listen(s *streams, path string, fd int, launchdName string) ([]net.Listener, string, error) {
	switch {
	case fd >= 0:
		l, err := socket.ListenFD(fd)
		if err != nil {
			return nil, "", withHint(err, "--listen-fd must name a listening Unix socket inherited from the parent process")
		}
		return []net.Listener{l}, l.Addr().String(), nil
	case launchdName != "":
		ls, err := darwin.ActivateSocket(launchdName)
		var ae *darwin.ActivateError
		if err != nil && !errors.As(err, &ae) { // an *ActivateError has its own hint
			err = withHint(err, "--launchd works only when launchd started attestd from a LaunchAgent whose Sockets has the key %q", launchdName)
		}
		if err != nil {
			return nil, "", err
		}
		return ls, "launchd:" + launchdName, nil
	}
	if path == "" {
		path = socket.DefaultPath(s.getenv)
	}
	l, err := socket.Listen(path)
	if errors.Is(err, socket.ErrAlreadyRunning) {
		return nil, "", withHint(err, "stop the other daemon first, or check it with: attestd status --socket %s", path)
	}
	if err != nil {
		return nil, "", err // a *socket.PathError carries its own hint
	}
	return []net.Listener{l}, path, nil
}
