package socket

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// shortDir is a temporary directory with a short path, so socket paths in
// it stay far below MaxPathLen whatever the test's name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestCloseRemovesOnlyItsOwnSocket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, path string) // what happens to the path while l listens
		want    error
		left    bool // a socket file must still be at the path after Close
	}{
		{name: "untouched", want: nil, left: false},
		{name: "removed", replace: func(t *testing.T, path string) { os.Remove(path) }, want: ErrReplaced},
		{name: "taken over", want: ErrReplaced, left: true, replace: func(t *testing.T, path string) {
			os.Remove(path)
			other, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			other.SetUnlinkOnClose(false)
			t.Cleanup(func() { other.Close() })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(shortDir(t), "s.sock")
			l, err := Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.replace != nil {
				tc.replace(t, path)
			}
			err = l.Close()
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Close = %v, want %v", err, tc.want)
			}
			if again := l.Close(); again != err {
				t.Errorf("second Close = %v, want the first result %v", again, err)
			}
			fi, statErr := os.Lstat(path)
			if tc.left && (statErr != nil || fi.Mode().Type() != fs.ModeSocket) {
				t.Fatalf("the other daemon's socket was removed: %v", statErr)
			}
			if !tc.left && !errors.Is(statErr, fs.ErrNotExist) {
				t.Fatalf("a socket file is left at the path: %v", statErr)
			}
		})
	}
}

func TestStale(t *testing.T) {
	dir := shortDir(t)
	live := filepath.Join(dir, "live.sock")
	l, err := Listen(live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dead := filepath.Join(dir, "dead.sock")
	dl, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dl.SetUnlinkOnClose(false)
	dl.Close()
	for _, tc := range []struct {
		path      string
		stale     bool
		wantErrno syscall.Errno
	}{
		{live, false, 0},
		{dead, true, syscall.ECONNREFUSED},
		{filepath.Join(dir, "none.sock"), true, syscall.ENOENT},
	} {
		stale, err := Stale(tc.path)
		if stale != tc.stale || (tc.wantErrno == 0) != (err == nil) || (tc.wantErrno != 0 && !errors.Is(err, tc.wantErrno)) {
			t.Errorf("Stale(%s) = %v, %v; want %v, %v", filepath.Base(tc.path), stale, err, tc.stale, tc.wantErrno)
		}
	}
	if !Alive(live) || Alive(dead) {
		t.Errorf("Alive: live %v, dead %v", Alive(live), Alive(dead))
	}
}

// fullBacklog listens on path with a backlog of one connection and fills
// it, as a stopped or overloaded daemon has it.
func fullBacklog(t *testing.T, path string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("unix", path)
		if errors.Is(err, syscall.EAGAIN) {
			return
		}
		if err != nil {
			t.Fatalf("filling the backlog: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if i > 64 {
			t.Fatal("the backlog never filled")
		}
	}
}

// TestFullBacklogIsNotTakenOver is issue 14's live daemon: a full queue is
// a daemon that is there, not a stale file to replace.
func TestFullBacklogIsNotTakenOver(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux tells a full backlog (EAGAIN) from no listener (ECONNREFUSED)")
	}
	path := filepath.Join(shortDir(t), "s.sock")
	fullBacklog(t, path)
	if stale, err := Stale(path); stale || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Stale = %v, %v; want false, EAGAIN", stale, err)
	}
	if !Alive(path) {
		t.Error("Alive is false for a daemon with a full backlog")
	}
	l, err := Listen(path)
	if err == nil {
		l.Close()
		t.Fatal("took over the socket of a live daemon")
	}
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "queue is full") {
		t.Fatalf("Listen = %v, want ErrAlreadyRunning saying the queue is full", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("the live daemon's socket file is gone: %v", err)
	}
}

func TestUnsafeDirectories(t *testing.T) {
	root := os.Getuid() == 0
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, base string) string // returns the socket's directory
		refuse string                                 // "" means Listen must succeed
		asRoot bool                                   // needs root to set up
	}{
		{name: "private", setup: func(t *testing.T, base string) string { return mkdir(t, base, "d", 0o700) }},
		{name: "missing is created", setup: func(t *testing.T, base string) string { return filepath.Join(base, "a", "b") }},
		{name: "group writable", refuse: "writable by others", setup: func(t *testing.T, base string) string { return mkdir(t, base, "d", 0o770) }},
		{name: "world writable", refuse: "writable by others", setup: func(t *testing.T, base string) string { return mkdir(t, base, "d", 0o777) }},
		{name: "sticky world writable", refuse: "sticky bit", setup: func(t *testing.T, base string) string {
			return mkdir(t, base, "d", 0o777|fs.ModeSticky)
		}},
		{name: "own symlink to own dir", setup: func(t *testing.T, base string) string {
			return symlink(t, mkdir(t, base, "real", 0o700), filepath.Join(base, "link"), -1)
		}},
		{name: "symlink in the middle owned by another", asRoot: true, setup: func(t *testing.T, base string) string {
			mkdir(t, base, "real", 0o755)
			mid := symlink(t, filepath.Join(base, "real"), filepath.Join(base, "mid"), 65534)
			return filepath.Join(mid, "d")
		}},
		{name: "last component a symlink owned by another", asRoot: true, refuse: "symlink", setup: func(t *testing.T, base string) string {
			return symlink(t, mkdir(t, base, "real", 0o700), filepath.Join(base, "link"), 65534)
		}},
		{name: "owned by another", asRoot: true, refuse: "belongs to uid 65534", setup: func(t *testing.T, base string) string {
			d := mkdir(t, base, "d", 0o700)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && !root {
				t.Skip("needs root to make files owned by another user")
			}
			dir := tc.setup(t, shortDir(t))
			l, err := Listen(filepath.Join(dir, "s.sock"))
			if tc.refuse == "" {
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				return
			}
			if err == nil {
				l.Close()
				t.Fatal("listened in an unsafe directory")
			}
			var pe *PathError
			if !errors.Is(err, ErrUnsafeDir) || !errors.As(err, &pe) || pe.HintText == "" || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("Listen = %v, want an ErrUnsafeDir PathError with a hint, saying %q", err, tc.refuse)
			}
			if _, err := os.Lstat(filepath.Join(dir, "s.sock")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a socket file was created in the refused directory: %v", err)
			}
		})
	}
}

func mkdir(t *testing.T, base, name string, mode fs.FileMode) string {
	t.Helper()
	d := filepath.Join(base, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

// symlink makes link point at target, owned by uid unless uid is -1.
func symlink(t *testing.T, target, link string, uid int) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Lchown(link, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return link
}

// TestTooLongPathFailsFirst is issue 14's "clear errors before side
// effects": a path bind cannot take is refused before any directory is
// made.
func TestTooLongPathFailsFirst(t *testing.T) {
	base := shortDir(t)
	dir := filepath.Join(base, "new")
	fits := filepath.Join(dir, strings.Repeat("x", MaxPathLen-len(dir)-1))
	if len(fits) != MaxPathLen {
		t.Fatalf("test path is %d bytes", len(fits))
	}
	l, err := Listen(fits)
	if err != nil {
		t.Fatalf("a %d-byte path: %v", len(fits), err)
	}
	l.Close()
	os.RemoveAll(dir)

	long := fits + "x"
	_, err = Listen(long)
	var pe *PathError
	if !errors.Is(err, ErrPathTooLong) || !errors.As(err, &pe) || pe.HintText == "" || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("a %d-byte path: %v, want ErrPathTooLong saying the limit", len(long), err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the directory was created before the length was checked: %v", err)
	}
}

// TestListenFDLeavesABadFDOpen: --listen-fd 2 must not close stderr
// before the error is printed there.
func TestListenFDLeavesABadFDOpen(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := ListenFD(int(w.Fd())); err == nil || !strings.Contains(err.Error(), "not a listening socket") {
		t.Fatalf("a pipe as a listener: %v", err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("the fd was closed by the failed ListenFD: %v", err)
	}

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	if _, err := ListenFD(fds[0]); err == nil || !strings.Contains(err.Error(), "not listening") {
		t.Fatalf("a connected socket as a listener: %v", err)
	}
	if _, err := syscall.Write(fds[0], []byte("x")); err != nil {
		t.Fatalf("the fd was closed by the failed ListenFD: %v", err)
	}
}
