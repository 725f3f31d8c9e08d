package darwin

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestActivateError(t *testing.T) {
	tests := []struct {
		errno    syscall.Errno
		wantText string
		wantHint string
	}{
		{syscall.ENOENT, "no socket of that name", "Sockets dictionary"},
		{syscall.ESRCH, "not started by launchd", "launchctl bootstrap"},
		{syscall.EALREADY, "already activated", "once per process"},
		{syscall.EPERM, "launch_activate_socket", ""},
	}
	for _, tt := range tests {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			var err error = &ActivateError{Name: "Listeners", Errno: tt.errno}
			if !errors.Is(err, tt.errno) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.errno)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), `"Listeners"`) {
				t.Errorf("Error() = %q, want %q and the name", err, tt.wantText)
			}
			var ae *ActivateError
			if !errors.As(err, &ae) {
				t.Fatal("errors.As failed")
			}
			if h := ae.Hint(); (tt.wantHint == "" && h != "") || !strings.Contains(h, tt.wantHint) {
				t.Errorf("Hint() = %q, want %q", h, tt.wantHint)
			}
		})
	}
}

func TestActivateSocketName(t *testing.T) {
	for _, name := range []string{"", "a\x00b"} {
		if _, err := ActivateSocket(name); err == nil || errors.Is(err, ErrUnsupported) {
			t.Errorf("ActivateSocket(%q) = %v, want a name error", name, err)
		}
	}
}

// listenerFD returns a duplicate descriptor of a fresh Unix listener, as
// launchd would hand it over, and the socket's path.
func listenerFD(t *testing.T) (int32, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return int32(fd), path
}

func TestListenersFromFDs(t *testing.T) {
	fd1, path1 := listenerFD(t)
	fd2, path2 := listenerFD(t)
	ls, err := listenersFromFDs("Listeners", []int32{fd1, fd2})
	if err != nil {
		t.Fatal(err)
	}
	for i, path := range []string{path1, path2} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("dial listener %d: %v", i, err)
		}
		s, err := ls[i].Accept()
		if err != nil {
			t.Fatalf("accept on listener %d: %v", i, err)
		}
		c.Close()
		s.Close()
		ls[i].Close()
	}
	// The descriptors launchd handed over were consumed (closed).
	for _, fd := range []int32{fd1, fd2} {
		if _, err := syscall.Dup(int(fd)); err == nil {
			t.Errorf("descriptor %d is still open", fd)
		}
	}
}

func TestListenersFromFDsErrors(t *testing.T) {
	if _, err := listenersFromFDs("Listeners", nil); err == nil {
		t.Error("no descriptors accepted")
	}
	good, _ := listenerFD(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pipeFD, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	ls, err := listenersFromFDs("Listeners", []int32{good, int32(pipeFD)})
	if err == nil {
		for _, l := range ls {
			l.Close()
		}
		t.Fatal("a pipe was accepted as a listener")
	}
	if _, err := syscall.Dup(int(good)); err == nil {
		t.Error("the good descriptor leaked after the error")
	}
}
