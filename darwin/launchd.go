package darwin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/attestd/attestd/bridge/hint"
)

// DefaultLaunchdSocket is the Sockets key attestd's LaunchAgent plist uses.
const DefaultLaunchdSocket = "Listeners"

// ActivateError is a failed launch_activate_socket call. Errno is what it
// returned: ENOENT (no socket of that name in the job), ESRCH (the process
// was not started by launchd) or EALREADY (already activated).
type ActivateError struct {
	Name  string
	Errno syscall.Errno
}

func (e *ActivateError) Error() string {
	switch e.Errno {
	case syscall.ENOENT:
		return fmt.Sprintf("launchd socket %q: the job has no socket of that name", e.Name)
	case syscall.ESRCH:
		return fmt.Sprintf("launchd socket %q: this process was not started by launchd (or its job has no socket of that name)", e.Name)
	case syscall.EALREADY:
		return fmt.Sprintf("launchd socket %q: already activated by this process", e.Name)
	}
	return fmt.Sprintf("launchd socket %q: launch_activate_socket: %v", e.Name, e.Errno)
}

// Unwrap returns the errno, so errors.Is(err, syscall.ESRCH) works.
func (e *ActivateError) Unwrap() error { return e.Errno }

// Hint says what to do about the failure, for hint.Of.
func (e *ActivateError) Hint() string {
	switch e.Errno {
	case syscall.ENOENT:
		return fmt.Sprintf("the name after --launchd must be a key of the Sockets dictionary in the LaunchAgent plist (attestd's plist uses %q)", DefaultLaunchdSocket)
	case syscall.ESRCH:
		return "load the LaunchAgent (launchctl bootstrap gui/$(id -u) PLIST, or SMAppService from the host app) or run without --launchd"
	case syscall.EALREADY:
		return "activate each socket name once per process"
	}
	return ""
}

var _ hint.Hinter = (*ActivateError)(nil)

// listenersFromFDs turns the descriptors launchd handed over into
// listeners. Each descriptor is consumed: net.FileListener duplicates it,
// and the original is closed. On error every descriptor is closed.
func listenersFromFDs(name string, fds []int32) ([]net.Listener, error) {
	if len(fds) == 0 {
		return nil, fmt.Errorf("launchd socket %q: launchd handed over no descriptors", name)
	}
	var (
		ls   []net.Listener
		errs []error
	)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("launchd:%s:%d", name, i))
		if f == nil {
			errs = append(errs, fmt.Errorf("launchd socket %q: invalid descriptor %d", name, fd))
			continue
		}
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("launchd socket %q: descriptor %d: %w", name, fd, err))
			continue
		}
		ls = append(ls, l)
	}
	if len(errs) > 0 {
		for _, l := range ls {
			l.Close()
		}
		return nil, errors.Join(errs...)
	}
	return ls, nil
}
