package reliability

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
)

func TestSocketPermissions(t *testing.T) {
	base := tempDir(t)
	path := filepath.Join(base, "run", "attestd.sock")
	l, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	assertPrivate(t, path)
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after close: %v", err)
	}

	// A directory others may write to is refused, with advice.
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	var pe *socket.PathError
	if l, err := socket.Listen(filepath.Join(open, "attestd.sock")); err == nil {
		l.Close()
		t.Fatal("listened in a world-writable directory")
	} else if !errors.As(err, &pe) || !strings.Contains(pe.HintText, "chmod 700") {
		t.Fatalf("the refusal does not say what to do: %v", err)
	}
}

func TestOtherUIDIsRefused(t *testing.T) {
	other := os.Getuid() + 1
	d := startDaemon(t, daemonOpts{server: server.Config{UID: &other}})
	// Raw bytes, not package client: the refusal must be on the wire.
	rc := dialRaw(t, d.path, true)
	deadline := time.Now().Add(5 * time.Second)
	line, err := rc.next(t, deadline)
	if line == nil {
		t.Fatalf("closed without a refusal: %v", err)
	}
	a, err := parseAnswer(line)
	if err != nil || a.Err == nil || a.Err.reason() != "peer_refused" || a.ID != "null" {
		t.Fatalf("a peer with the wrong uid got %q (%v), want a peer_refused error", line, err)
	}
	if line, err := rc.next(t, deadline); line != nil || !isCleanClose(err) {
		t.Fatalf("want a close after the refusal, got %q %v", line, err)
	}
	if _, err := rc.nc.Write([]byte(`{"id":1,"method":"attestation/generate"}` + "\n")); err == nil {
		// The write may land in the buffer; nothing may come back.
		if line, _ := rc.next(t, deadline); line != nil {
			t.Fatalf("a refused peer got an answer: %q", line)
		}
	}
	// The counter is read by our own uid, which this daemon refuses too;
	// use the pool's view instead: no token was made for the refused peer.
	if got := d.pool.Status().Counters.Requests; got != 0 {
		t.Fatalf("a refused peer reached the pool (%d requests)", got)
	}
}

// TestNobodyIsRefused proves the uid check with a real second user: as
// root, it runs this test binary as nobody through a socket anyone may
// open, and the daemon must refuse it while it serves root.
func TestNobodyIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as nobody; TestOtherUIDIsRefused covers the check otherwise")
	}
	uid, gid := 65534, 65534
	if u, err := user.Lookup("nobody"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	d := startDaemon(t, daemonOpts{listen: permissiveListen})
	os.Chmod(filepath.Dir(d.dir), 0o755)

	// nobody must be able to run the client: copy this binary where it can.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(d.dir), "client.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential) string {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), childEnv+"=peer", "SOCK="+d.path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("client as %+v: %v\n%s", cred, err, out)
		}
		return string(out)
	}
	if out := run(&syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}); !strings.Contains(out, "peer_refused") {
		t.Fatalf("nobody (uid %d) was not refused: %q", uid, out)
	}
	// The same client as root, on the same socket, is served: the refusal
	// was the uid check, not the file permissions.
	if out := run(nil); !strings.Contains(out, `"token":"v1.`) {
		t.Fatalf("root was not served: %q", out)
	}
	if got := serverStats(t, d.path).Refused; got != 1 {
		t.Fatalf("refused counter %d, want 1", got)
	}
}

// permissiveListen is socket.Listen with the directory and socket opened
// to everyone, so that only the daemon's uid check can keep another user
// out.
func permissiveListen(path string) (net.Listener, error) {
	l, err := socket.Listen(path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// serverStats asks the daemon for its counters, as a monitor would.
func serverStats(t testing.TB, path string) protocol.ServerStats {
	t.Helper()
	cl := client.New(path)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.Server
}
