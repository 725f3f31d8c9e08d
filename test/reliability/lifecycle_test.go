package reliability

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/socket"
)

// The cases of issue 14 that belong to the process: who removes the socket
// file, when a socket counts as stale, signals, the socket's directory,
// errors before side effects, and the size of the log. Each runs the real
// binary.

// TestExitRemovesOnlyItsOwnSocket: a daemon whose socket file was replaced
// (removed, then bound by a second daemon) must leave the second daemon's
// socket alone when it exits, and say so.
func TestExitRemovesOnlyItsOwnSocket(t *testing.T) {
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	first := startProc(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	second := startProc(t, path)
	mustToken(t, path)

	first.cmd.Process.Signal(syscall.SIGTERM)
	if code := first.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("first daemon: exit status %d:\n%s", code, first.stderr.String())
	}
	if !strings.Contains(first.stderr.String(), "left the socket path alone") {
		t.Errorf("the first daemon does not say it left the path alone:\n%s", first.stderr.String())
	}
	mustToken(t, path) // the second daemon is still reachable

	second.cmd.Process.Signal(syscall.SIGTERM)
	if code := second.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("second daemon: exit status %d", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the second daemon did not remove its own socket: %v", err)
	}
}

// TestLiveDaemonWithAFullQueueIsNotTakenOver: a daemon that is stopped or
// overloaded, with its whole connection queue full, answers a probe with
// EAGAIN; a new daemon must refuse the path, not delete the live socket.
func TestLiveDaemonWithAFullQueueIsNotTakenOver(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux tells a full queue (EAGAIN) from no listener; see socket.Stale")
	}
	dir := filepath.Join(tempDir(t), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "attestd.sock")
	// The live daemon: a listener with a queue of one, filled, never
	// accepting.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	syscall.CloseOnExec(fd) // not for the daemons this test starts
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for queued := 0; ; queued++ {
		nc, err := net.Dial("unix", path)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil || queued > 64 {
			t.Fatalf("filling the queue after %d: %v", queued, err)
		}
		defer nc.Close()
	}
	before, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}

	second := startProcNoWait(t, path)
	if code := second.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("a second daemon: exit status %d, want 1:\n%s", code, second.stderr.String())
	}
	for _, want := range []string{"already listening", "queue is full", "attestd: hint:"} {
		if !strings.Contains(second.stderr.String(), want) {
			t.Errorf("the refusal lacks %q:\n%s", want, second.stderr.String())
		}
	}
	after, err := os.Lstat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the live daemon's socket file was replaced or removed: %v", err)
	}
}

// TestSIGHUPDrainsAndExits: a hangup stops the daemon cleanly (exit 0, a
// log line, the socket removed) instead of killing it with the file left
// behind.
func TestSIGHUPDrainsAndExits(t *testing.T) {
	// A test run under nohup would hand its SIGHUP-ignored state to the
	// daemon, which then rightly keeps serving. A signal this process
	// catches is reset to the default in a child, so catch it meanwhile.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	p := startProc(t, path)
	mustToken(t, path)
	p.cmd.Process.Signal(syscall.SIGHUP)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGHUP (%v), want 0:\n%s", code, p.err, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "stopping on hangup") {
		t.Errorf("no log line for the hangup:\n%s", p.stderr.String())
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after SIGHUP: %v", err)
	}
}

// TestSIGHUPIgnoredByNohupKeepsServing: under nohup (SIGHUP ignored when
// the daemon starts) a hangup changes nothing.
func TestSIGHUPIgnoredByNohupKeepsServing(t *testing.T) {
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	args := []string{"-c", `trap "" HUP; exec "$0" "$@"`, attestdBin(t),
		"serve", "--socket", path, "--provider", "dev", "--log-format", "json", "--log-level", "debug"}
	p := startCmd(t, path, exec.Command("/bin/sh", args...))
	p.waitLog(t, "SIGHUP is ignored")
	p.cmd.Process.Signal(syscall.SIGHUP)
	mustToken(t, path)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), "stopping on hangup") {
		t.Fatalf("a hangup under nohup stopped the daemon:\n%s", p.stderr.String())
	}
}

// TestLostStderrReaderDoesNotKill is "attestd serve 2>&1 | head -1": once
// the reader of stderr is gone, log writes fail; they are dropped and the
// daemon serves on, instead of dying of SIGPIPE on its next log line.
func TestLostStderrReaderDoesNotKill(t *testing.T) {
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(attestdBin(t), "serve", "--socket", path, "--provider", "dev", "--log-level", "debug")
	cmd.Stderr = w
	p := startCmd(t, path, cmd)
	w.Close()
	first, err := bufio.NewReader(r).ReadString('\n') // head -1
	r.Close()
	if err != nil {
		t.Fatalf("no first log line: %v", err)
	}
	if !strings.Contains(first, "attestd serving") {
		t.Fatalf("first log line %q, want the one saying it serves", first)
	}
	// Every one of these logs at least one line (debug: "token served";
	// info: "request failed"), each a write to a pipe nobody reads.
	for i := range 3 {
		mustToken(t, path)
		if line := rawCall(t, path, fmt.Sprintf(`{"id":%d,"method":"no/such/method"}`, i)); !strings.Contains(line, "-32601") {
			t.Fatalf("unknown method answered %q", line)
		}
	}
	select {
	case <-p.exited:
		t.Fatalf("the daemon died after losing its stderr reader: %v", p.err)
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d (%v), want 0", code, p.err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left: %v", err)
	}
}

// rawCall sends one line on a new connection and returns the answer line.
func rawCall(t testing.TB, path, line string) string {
	t.Helper()
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, line+"\n"); err != nil {
		t.Fatal(err)
	}
	answer, err := bufio.NewReaderSize(nc, 64<<10).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return answer
}

// TestRefusedSocketPlaces: a socket path the daemon will not use fails with
// an error and a hint, exit 1, before anything is created.
func TestRefusedSocketPlaces(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, base string) string // returns the socket path
		want  string
		root  bool // needs root to set up
	}{
		{name: "sticky world-writable directory", want: "writable by others", setup: func(t *testing.T, base string) string {
			dir := filepath.Join(base, "shared")
			os.Mkdir(dir, 0o700)
			if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "attestd.sock")
		}},
		{name: "directory a symlink another user owns", root: true, want: "symlink", setup: func(t *testing.T, base string) string {
			real, link := filepath.Join(base, "real"), filepath.Join(base, "link")
			os.Mkdir(real, 0o700)
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(link, "attestd.sock")
		}},
		{name: "path longer than a socket address", want: "bytes long", setup: func(t *testing.T, base string) string {
			dir := filepath.Join(base, "new", "dirs")
			return filepath.Join(dir, strings.Repeat("s", socket.MaxPathLen+1-len(dir)-1))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Getuid() != 0 {
				t.Skip("needs root to make a symlink owned by another user")
			}
			base := tempDir(t)
			path := tc.setup(t, base)
			before := listTree(t, base)
			p := startProcNoWait(t, path)
			if code := p.wait(t, 10*time.Second); code != 1 {
				t.Fatalf("exit status %d, want 1:\n%s", code, p.stderr.String())
			}
			msg := p.stderr.String()
			if !strings.Contains(msg, "attestd: error:") || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "attestd: hint:") {
				t.Errorf("the refusal does not say %q with a hint:\n%s", tc.want, msg)
			}
			if after := listTree(t, base); after != before {
				t.Errorf("the refused daemon created files:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// listTree lists every path under base, one a line.
func listTree(t *testing.T, base string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(base, func(p string, _ os.FileInfo, err error) error {
		fmt.Fprintln(&b, p)
		return nil
	})
	return b.String()
}

// TestListenFDErrorIsPrinted: "serve --listen-fd 2" used to close stderr
// while finding that fd 2 is no socket, and so exit 1 saying nothing.
func TestListenFDErrorIsPrinted(t *testing.T) {
	for _, fd := range []string{"2", "1", "0", "9"} {
		var stderr bytes.Buffer
		cmd := exec.Command(attestdBin(t), "serve", "--provider", "dev", "--listen-fd", fd)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("--listen-fd %s: %v, want exit status 1", fd, err)
		}
		if msg := stderr.String(); !strings.Contains(msg, "attestd: error: fd "+fd) || !strings.Contains(msg, "attestd: hint:") {
			t.Errorf("--listen-fd %s: the error is not printed:\n%q", fd, msg)
		}
	}
}

// TestLogsCannotBeAmplified: a request made of huge strings (a 512 KiB
// method name, id or params) adds a short line to the log, not its size
// once or twice over.
func TestLogsCannotBeAmplified(t *testing.T) {
	path := filepath.Join(tempDir(t), "run", "attestd.sock")
	p := startProc(t, path)
	huge, half := strings.Repeat("m", 512<<10), strings.Repeat("h", 256<<10)
	for i, line := range []string{
		`{"id":1,"method":"` + huge + `"}`,
		`{"id":"` + half + `","method":"` + half + `"}`,
		`{"id":3,"method":"attestation/generate","params":"` + huge + `"}`,
		`{"id":4,"method":` + huge + `}`,
	} {
		before := len(p.stderr.bytes())
		answer := rawCall(t, path, line)
		if !strings.Contains(answer, `"error"`) {
			t.Fatalf("case %d: answer %.200q, want an error", i, answer)
		}
		// Log lines are written in order: once this one is in, so are the
		// lines about the huge request.
		marker := fmt.Sprintf("marker/%d", i)
		rawCall(t, path, `{"id":0,"method":"`+marker+`"}`)
		p.waitLog(t, marker)
		if grew := len(p.stderr.bytes()) - before; grew > 4<<10 {
			t.Errorf("case %d: a %d KiB request added %d bytes to the log", i, len(line)>>10, grew)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
