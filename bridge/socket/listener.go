package socket

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
)

// ErrReplaced means that when a Listener closed, its path no longer named
// the socket file it had bound: the file was removed, or another daemon
// bound a new socket there. The path was left alone.
var ErrReplaced = errors.New("the socket path no longer names the socket this daemon bound; left it in place")

// Listener is a Unix socket that Listen created. It is a *net.UnixListener
// whose Close removes the socket file only while the path still names the
// file this listener bound (same device and inode), so an exiting daemon
// never deletes the socket of a daemon that took the path over.
type Listener struct {
	*net.UnixListener
	path string
	id   fileID

	once sync.Once
	err  error
}

// fileID identifies a file: its device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// bind listens on path, makes the socket file 0600 and records which file
// it is. The directory is private (prepareDir), so nobody else can swap
// the file between the bind and the record.
func bind(path string) (*Listener, error) {
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ul.SetUnlinkOnClose(false) // Close decides
	l := &Listener{UnixListener: ul, path: path}
	fi, err := os.Lstat(path)
	if err == nil {
		var ok bool
		if l.id, ok = idOf(fi); !ok {
			err = fmt.Errorf("no device and inode for %s", path)
		}
	}
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		ul.Close()
		os.Remove(path) // nobody else can have replaced it yet
		return nil, fmt.Errorf("set up socket %s: %w", path, err)
	}
	return l, nil
}

// Path returns the socket file's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file if the path still
// names the file this listener bound. If it names another file, or none,
// the path is left alone and Close returns an error wrapping ErrReplaced
// (the listener is closed all the same). Later calls return the same
// result.
func (l *Listener) Close() error {
	l.once.Do(func() {
		cerr := l.UnixListener.Close()
		if err := l.removeOwn(); err != nil {
			l.err = err
			return
		}
		l.err = cerr
	})
	return l.err
}

// removeOwn removes the socket file if it is still the one bound.
func (l *Listener) removeOwn() error {
	fi, err := os.Lstat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is gone", ErrReplaced, l.path)
	}
	if err != nil {
		return fmt.Errorf("check socket file before removing it: %w", err)
	}
	if id, ok := idOf(fi); !ok || id != l.id {
		return fmt.Errorf("%w: %s is now another file (inode %d, bound inode %d)", ErrReplaced, l.path, id.ino, l.id.ino)
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove socket file: %w", err)
	}
	return nil
}
