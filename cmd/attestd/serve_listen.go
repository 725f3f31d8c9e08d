package main

import (
	"errors"
	"net"

	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/darwin"
)

// listen opens the listeners chosen by the flags and says where they are.
// Their errors get hints that name the flags.
func listen(s *stdio, path string, fd int, launchdName string) ([]net.Listener, string, error) {
	switch {
	case fd >= 0:
		l, err := socket.ListenFD(fd)
		if err != nil {
			return nil, "", withHint(err, "--listen-fd must name a listening Unix socket inherited from the parent process")
		}
		return []net.Listener{l}, l.Addr().String(), nil
	case launchdName != "":
		ls, err := darwin.ActivateSocket(launchdName)
		if err != nil {
			var ae *darwin.ActivateError
			if errors.As(err, &ae) {
				return nil, "", withHint(err, "%s", ae.Hint())
			}
			return nil, "", withHint(err, "--launchd works only when launchd started attestd from a LaunchAgent whose Sockets has the key %q", launchdName)
		}
		return ls, "launchd:" + launchdName, nil
	}
	if path == "" {
		path = socket.DefaultPath(s.getenv)
	}
	l, err := socket.Listen(path)
	if err != nil {
		var pe *socket.PathError
		switch {
		case errors.Is(err, socket.ErrAlreadyRunning):
			return nil, "", withHint(err, "stop the other daemon first, or check it with: attestd status --socket %s", path)
		case errors.As(err, &pe) && pe.Hint != "":
			return nil, "", withHint(err, "%s", pe.Hint)
		}
		return nil, "", err
	}
	return []net.Listener{l}, path, nil
}
