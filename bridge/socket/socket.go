// Package socket finds, creates and checks attestd's Unix socket: the
// default per-user path, listening with stale-socket hygiene and private
// permissions, inherited listeners, and the peer's uid.
package socket

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// EnvVar names the environment variable that overrides the socket path,
// for a daemon you start yourself. launchd never sets it: a LaunchAgent
// publishes its socket under a key of its own host (KeyForLabel), and
// CheckKey refuses this shared name as a key.
const EnvVar = "ATTESTD_SOCKET"

// DefaultPath returns where clients and the daemon meet when no path is
// given: $ATTESTD_SOCKET if set; else attestd/attestd.sock under the
// per-user runtime directory ($XDG_RUNTIME_DIR on Linux, the per-user
// $TMPDIR on macOS); else /tmp/attestd-UID/attestd.sock.
func DefaultPath(getenv func(string) string) string {
	if p := getenv(EnvVar); p != "" {
		return p
	}
	if dir := runtimeDir(getenv); dir != "" {
		return filepath.Join(dir, "attestd", "attestd.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("attestd-%d", os.Getuid()), "attestd.sock")
}

// ErrAlreadyRunning means another process listens on the socket path.
var ErrAlreadyRunning = errors.New("another attestd is already listening on the socket")

// Listen creates the Unix socket at path with mode 0600, in a directory it
// creates with mode 0700 when missing. Before it creates anything it checks
// that path fits a socket address (MaxPathLen), and it refuses a directory
// that another user owns or may write to (sticky or not), and a directory
// whose last component is a symlink owned by another user. An existing
// socket file is replaced only when a connection attempt proves that
// nobody listens on it (see Stale). Closing the listener removes the
// socket file only while the path still names the file it bound.
func Listen(path string) (*Listener, error) {
	if err := checkLength(path); err != nil {
		return nil, err
	}
	if err := prepareDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	return bind(path)
}

// Alive reports whether a daemon listens on the socket path: it accepted a
// connection, or its connection queue is full (a stopped or overloaded
// daemon is alive all the same).
func Alive(path string) bool {
	_, err := Stale(path)
	return err == nil || errors.Is(err, syscall.EAGAIN)
}

// ListenFD returns a listener for an inherited, already listening Unix
// socket file descriptor (as launchd or systemd pass them). It checks a
// duplicate, so that when fd is not a listening socket (--listen-fd 2, say)
// fd stays open and the error can still be printed there. On success the
// inherited fd is closed: the listener holds its own.
func ListenFD(fd int) (*net.UnixListener, error) {
	if fd < 0 {
		return nil, fmt.Errorf("fd %d is not valid", fd)
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("fd %d is not open: %w", fd, err)
	}
	syscall.CloseOnExec(dup)
	f := os.NewFile(uintptr(dup), fmt.Sprintf("inherited-fd-%d", fd))
	defer f.Close() // FileListener dups it again
	if on, err := syscall.GetsockoptInt(dup, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err != nil {
		return nil, fmt.Errorf("fd %d is not a listening socket: %w", fd, err)
	} else if on == 0 {
		return nil, fmt.Errorf("fd %d is a socket that is not listening", fd)
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("fd %d is not a listening socket: %w", fd, err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("fd %d is a %s socket; attestd needs a Unix socket", fd, l.Addr().Network())
	}
	ul.SetUnlinkOnClose(false) // not ours to remove
	syscall.Close(fd)
	return ul, nil
}

// ErrPeerUID means a peer runs as another user.
var ErrPeerUID = errors.New("peer runs as another user")

// CheckPeerUID returns an error wrapping ErrPeerUID unless the peer on conn
// runs as uid.
func CheckPeerUID(conn *net.UnixConn, uid int) error {
	got, err := PeerUID(conn)
	if err != nil {
		return fmt.Errorf("read peer credentials: %w", err)
	}
	if got != uid {
		return fmt.Errorf("%w: uid %d, want %d", ErrPeerUID, got, uid)
	}
	return nil
}

// PeerUID returns the effective uid of the process on the other end of conn.
func PeerUID(conn *net.UnixConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, ierr := -1, error(nil)
	err = raw.Control(func(fd uintptr) { uid, ierr = peerUID(int(fd)) })
	if err != nil {
		return -1, err
	}
	return uid, ierr
}

func ownerUID(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
