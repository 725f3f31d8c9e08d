package socket

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := DefaultPath(env(map[string]string{EnvVar: "/x/y.sock", "XDG_RUNTIME_DIR": "/run/user/1"})); got != "/x/y.sock" {
		t.Errorf("with $%s: %s", EnvVar, got)
	}
	got := DefaultPath(env(map[string]string{"XDG_RUNTIME_DIR": "/run/user/1", "TMPDIR": "/var/folders/ab/T"}))
	if !strings.HasSuffix(got, filepath.Join("attestd", "attestd.sock")) {
		t.Errorf("runtime path = %s", got)
	}
	if got := DefaultPath(env(nil)); !strings.Contains(got, "attestd-") {
		t.Errorf("fallback path = %s", got)
	}
}

func TestListenSetsPermissionsAndRemovesOnClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "attestd.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // leaves a socket file nobody listens on
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestLiveSocketIsNotReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen(path); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Listen = %v, want ErrAlreadyRunning", err)
	}
}

func TestRefusesUnsafePlaces(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a plain file: %v", err)
	}
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := Listen(filepath.Join(open, "s.sock")); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("in a world-writable dir: %v", err)
	}
}

func TestPeerUIDIsOwnUID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan *net.UnixConn, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	cc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	if err := CheckPeerUID(sc, os.Getuid()); err != nil {
		t.Fatal(err)
	}
	if err := CheckPeerUID(sc, os.Getuid()+1); !errors.Is(err, ErrPeerUID) {
		t.Fatalf("wrong uid accepted: %v", err)
	}
}

func TestListenFD(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l2, err := ListenFD(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Error("closing an inherited listener removed the socket file")
	}
	if _, err := ListenFD(int(os.Stdin.Fd())); err == nil {
		t.Error("stdin accepted as a listener")
	}
}
