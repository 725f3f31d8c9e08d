// Package socket finds, creates and checks attestd's Unix socket: the
// default per-user path, listening with stale-socket hygiene and private
// permissions, inherited listeners, and the peer's uid.
package socket

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// EnvVar names the environment variable that overrides the socket path.
// launchd sets it when the LaunchAgent uses SecureSocketWithKey.
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

// ErrAlreadyRunning means another process answers on the socket path.
var ErrAlreadyRunning = errors.New("another attestd is already listening on the socket")

// Listen creates the Unix socket at path with mode 0600, in a directory it
// creates with mode 0700 when missing. An existing socket file is replaced
// only when nothing answers on it. The socket file is removed when the
// listener is closed.
func Listen(path string) (*net.UnixListener, error) {
	if err := prepareDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("set socket permissions: %w", err)
	}
	l.SetUnlinkOnClose(true)
	return l, nil
}

// prepareDir makes dir (0700) or checks that an existing one is ours and
// not writable by others.
func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
		return os.Chmod(dir, 0o700) // MkdirAll is subject to the umask
	}
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	if owner, ok := ownerUID(fi); ok && owner != os.Getuid() {
		return fmt.Errorf("socket directory %s belongs to uid %d, not to this user (uid %d); choose another path with --socket or $%s", dir, owner, os.Getuid(), EnvVar)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("socket directory %s is writable by others (mode %v); run chmod 700 %s or choose another path", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
	}
	if Alive(path) {
		return fmt.Errorf("%w: %s", ErrAlreadyRunning, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// Alive reports whether something accepts connections on the socket path.
func Alive(path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ListenFD returns a listener for an inherited, already listening Unix
// socket file descriptor (as launchd or systemd pass them).
func ListenFD(fd int) (*net.UnixListener, error) {
	f := os.NewFile(uintptr(fd), fmt.Sprintf("inherited-fd-%d", fd))
	if f == nil {
		return nil, fmt.Errorf("fd %d is not valid", fd)
	}
	defer f.Close() // FileListener dups it
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
