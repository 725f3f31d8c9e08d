package socket

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/attestd/attestd/bridge/hint"
)

// Sentinels wrapped by *PathError.
var (
	// ErrPathTooLong means the path does not fit a socket address.
	ErrPathTooLong = errors.New("socket path too long")
	// ErrUnsafeDir means the socket's directory is not private to this
	// user: another user owns it or may write to it, or it is a symlink
	// another user owns (and could point elsewhere).
	ErrUnsafeDir = errors.New("unsafe socket directory")
)

// PathError is a socket path that Listen will not use, with advice on what
// to do instead.
type PathError struct {
	What   string // "socket path" or "socket directory"
	Path   string
	Reason string // what is wrong, e.g. "is writable by others (mode 1777)"
	// HintText says what to do; Hint returns it.
	HintText string
	Err      error // ErrPathTooLong or ErrUnsafeDir
}

func (e *PathError) Error() string { return e.What + " " + e.Path + " " + e.Reason }

// Unwrap returns the sentinel.
func (e *PathError) Unwrap() error { return e.Err }

// Hint returns HintText, for hint.Of.
func (e *PathError) Hint() string { return e.HintText }

var _ hint.Hinter = (*PathError)(nil)

// otherPathHint is the advice shared by every refused path.
const otherPathHint = "choose another path with --socket or $" + EnvVar

// checkLength refuses a path that a socket address cannot hold, before
// anything is created: bind would fail with "invalid argument" only after
// the directories were made.
func checkLength(path string) error {
	if len(path) <= MaxPathLen {
		return nil
	}
	return &PathError{What: "socket path", Path: path, Err: ErrPathTooLong,
		Reason: fmt.Sprintf("is %d bytes long; a Unix socket path on %s holds at most %d (sun_path is %d bytes with the final NUL)",
			len(path), runtime.GOOS, MaxPathLen, MaxPathLen+1),
		HintText: "use a shorter path: " + otherPathHint}
}

// prepareDir makes dir (0700) when it is missing, and then checks that it
// is private to this user: owned by this user, writable by no one else
// (the sticky bit does not help: others could still create files in it),
// and, when dir itself is a symlink, that symlink owned by this user or
// root. Symlinks higher up the path (macOS's /var, /tmp) are the system's
// and fine.
func prepareDir(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil { // MkdirAll is subject to the umask
			return fmt.Errorf("create socket directory: %w", err)
		}
	}
	return checkDir(dir)
}

func checkDir(dir string) error {
	uid := os.Getuid()
	unsafe := func(reason, advice string) error {
		return &PathError{What: "socket directory", Path: dir, Reason: reason, HintText: advice, Err: ErrUnsafeDir}
	}
	li, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if li.Mode().Type() == fs.ModeSymlink {
		if owner, ok := ownerUID(li); ok && owner != uid && owner != 0 {
			target, _ := os.Readlink(dir)
			return unsafe(fmt.Sprintf("is a symlink (to %s) owned by uid %d, not by this user (uid %d), who could point it elsewhere", target, owner, uid),
				"use a directory of your own, not a link another user controls: "+otherPathHint)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if !fi.IsDir() {
		return &PathError{What: "socket directory", Path: dir, Reason: "is not a directory", HintText: otherPathHint, Err: ErrUnsafeDir}
	}
	if owner, ok := ownerUID(fi); ok && owner != uid {
		return unsafe(fmt.Sprintf("belongs to uid %d, not to this user (uid %d)", owner, uid),
			"use a directory of your own: "+otherPathHint)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		mode := fmt.Sprintf("%#o", perm)
		if fi.Mode()&fs.ModeSticky != 0 {
			mode = fmt.Sprintf("%#o with the sticky bit, like /tmp", perm|0o1000)
		}
		return unsafe(fmt.Sprintf("is writable by others (mode %s)", mode),
			fmt.Sprintf("run chmod 700 %s, or %s", dir, otherPathHint))
	}
	return nil
}
