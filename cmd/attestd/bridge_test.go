package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/stdio"
)

func TestBridgeUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"bridge"}, 2, "no command to run"},
		{[]string{"bridge", "--socket", "/x", "--provider", "dev", "--", "cat"}, 2, "only one of --socket and --provider"},
		{[]string{"bridge", "--deadline", "0s", "--", "cat"}, 2, "--deadline, --max-age and --warm-window must be positive"},
		{[]string{"bridge", "--hold", "-1s", "--", "cat"}, 2, "--hold not negative"},
		{[]string{"bridge", "--provider", "dev", "--max-age", "0s", "--", "cat"}, 2, "must be positive"},
		{[]string{"bridge", "--provider", "nope", "--", "cat"}, 2, "unknown provider"},
		{[]string{"bridge", "--provider", "dev", "--", "/nonexistent/codex", "app-server"}, 1, "hint: give the full path"},
	} {
		code, _, stderr := runCLI(t, nil, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.err) {
			t.Errorf("attestd %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.err)
		}
	}
}

func TestBridgeRewritesInitializeInProcess(t *testing.T) {
	t.Parallel()
	in := `{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"}}}` + "\n" +
		`{"method":"initialized"}` + "\n"
	code, out, stderr := runCLI(t, nil, in, "bridge", "--provider", "dev", "--", "cat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"},"capabilities":{"requestAttestation":true}}}` + "\n" +
		`{"method":"initialized"}` + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// bridgeProc runs the attestd binary as "attestd bridge ... -- sh -c script".
type bridgeProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	exited chan error
}

func startBridgeProc(t *testing.T, script string) *bridgeProc {
	t.Helper()
	cmd := exec.Command(attestdBinary(t), "bridge", "--provider", "dev", "--", "sh", "-c", script)
	p := &bridgeProc{cmd: cmd, lines: make(chan string, 64), stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		p.stdin.Close()
	})
	return p
}

func (p *bridgeProc) expectLine(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-p.lines:
		if got != want {
			t.Fatalf("got line %q, want %q", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no line %q from the bridge; stderr: %s", want, p.stderr)
	}
}

func (p *bridgeProc) exitStatus(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("bridge did not exit; stderr: %s", p.stderr)
	}
	return 0
}

// The real process: signals sent to the bridge reach the child, the
// bridge exits with the child's status, and the child's stderr passes.
func TestBridgeProcessForwardsSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			// The child waits in the wait builtin, which dash interrupts for
			// a trapped signal however it arrives; blocked in the read
			// builtin, a signal that lands just before read(2) starts is
			// never acted on (1 run in 2,000 under load, without the bridge).
			p := startBridgeProc(t, `trap 'echo got-it >&2; kill -KILL $s 2>/dev/null; exit 42' INT TERM HUP; sleep 1000 </dev/null >/dev/null 2>&1 & s=$!; echo '{"method":"ready"}'; wait $s`)
			p.expectLine(t, `{"method":"ready"}`)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := p.exitStatus(t); code != 42 {
				t.Errorf("exit status %d, want the child's 42; stderr: %s", code, p.stderr)
			}
			if s := p.stderr.String(); !strings.Contains(s, "got-it") || !strings.Contains(s, "exited with status 42") {
				t.Errorf("stderr %q: want the child's line and the bridge's report", s)
			}
		})
	}
}

func TestBridgeProcessReportsAKilledChild(t *testing.T) {
	p := startBridgeProc(t, `echo '{"method":"bye"}'; kill -KILL $$`)
	p.expectLine(t, `{"method":"bye"}`)
	// The client keeps stdin open; the bridge must not wait for it.
	if code := p.exitStatus(t); code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit status %d, want %d", code, 128+int(syscall.SIGKILL))
	}
	if s := p.stderr.String(); !strings.Contains(s, "was killed by killed") {
		t.Errorf("stderr %q does not report the signal", s)
	}
}

func TestBridgeProcessAnswersAttestationWithoutTheClient(t *testing.T) {
	// The child asks for a token and prints the answer it gets as a
	// notification, so the client sees the answer but never the request.
	p := startBridgeProc(t, `echo '{"method":"attestation/generate","id":0,"params":{}}'; read answer; echo "{\"method\":\"got\",\"params\":$answer}"`)
	select {
	case line := <-p.lines:
		var msg struct {
			Method string `json:"method"`
			Params struct {
				ID     int `json:"id"`
				Result struct {
					Token string `json:"token"`
				} `json:"result"`
			} `json:"params"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Method != "got" || msg.Params.ID != 0 || !strings.HasPrefix(msg.Params.Result.Token, "v1.") {
			t.Fatalf("client got %q, want the child's report of a token answer", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no line from the bridge; stderr: %s", p.stderr)
	}
	if code := p.exitStatus(t); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// startBridgeCmd starts the attestd binary as "attestd bridge --provider
// dev -- sh -c script" with pipes to its stdin and stdout; it is killed at
// the end of the test.
func startBridgeCmd(t *testing.T, script string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(attestdBinary(t), "bridge", "--provider", "dev", "--", "sh", "-c", script)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stdin, stdout, stderr
}

// A client that stops reading (closes its end of the bridge's stdout) must
// not kill the bridge with SIGPIPE: the bridge drops the child's output
// from then on, and still exits with the child's status once it is done.
func TestBridgeProcessSurvivesAClientThatHangsUp(t *testing.T) {
	cmd, stdin, stdout, stderr := startBridgeCmd(t,
		`echo '{"method":"ready"}'; read go; i=0; while [ $i -lt 1000 ]; do echo '{"method":"more"}'; i=$((i+1)); done; echo child-done >&2; exit 3`)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != `{"method":"ready"}`+"\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	stdout.Close() // the client hangs up its reading end
	io.WriteString(stdin, "go\n")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("bridge did not exit; stderr: %s", stderr)
	}
	stdin.Close()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() || ws.ExitStatus() != 3 {
		t.Errorf("bridge ended with %v, want the child's exit status 3; stderr: %s", cmd.ProcessState, stderr)
	}
	if !strings.Contains(stderr.String(), "child-done") {
		t.Errorf("the child did not finish; stderr: %s", stderr)
	}
}

// The flags reach the Bridge: --hold 0 turns holding off, which the
// Bridge spells as a negative Hold (its zero means the default).
func TestBridgeHoldFlag(t *testing.T) {
	t.Parallel()
	var got *stdio.Bridge
	bridge := newBridgeCommand(bridgeSeams{runChild: func(b *stdio.Bridge, _ *exec.Cmd, _ io.Reader, _ io.Writer, _ <-chan os.Signal) (int, error) {
		got = b
		return 0, nil
	}})
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, stdio.DefaultHold},
		{[]string{"--hold", "0"}, -1},
		{[]string{"--hold", "2s"}, 2 * time.Second},
	} {
		args := append(append([]string{"--provider", "dev"}, c.args...), "--", "cat")
		if code, _, stderr := runCommandCLI(t, bridge, "", args...); code != 0 {
			t.Fatalf("attestd %v: exit %d: %s", args, code, stderr)
		}
		if got.Hold != c.want {
			t.Errorf("attestd %v: Bridge.Hold = %v, want %v", args, got.Hold, c.want)
		}
	}
}

// peakRSS returns the peak resident memory of the running process pid, in
// bytes: VmHWM, the high-water mark of the address space it got at exec.
// The exited process's rusage is no measure here: Linux carries into its
// ru_maxrss the resident memory of the test process that started it,
// which grows over a run (-count=20 reached 139 MiB).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc/PID/status on %s: %v", runtime.GOOS, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kib << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status:\n%s", pid, b)
	return 0
}

// A 100 MiB line through the bridge process, in either direction, is
// streamed: the process's peak memory stays a small fraction of the line
// (when it gathered whole lines it was about 240 MiB). Each child waits
// for the client's end of input before it exits, so the bridge is still
// running when its peak is read, after the whole line has passed.
func TestBridgeProcessMemoryIsBoundedForA100MiBLine(t *testing.T) {
	const size = 100 << 20
	const limit = 64 << 20
	fill := fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x`, size)
	count := func(input string) string { // the child counts the client's line: input, the fill and `"}}\n`
		return fmt.Sprintf(`head -c %d | wc -c | tr -d ' '; read _ || :`, len(input)+size+4)
	}
	const turnStart, methodLast = `{"id":3,"method":"turn/start","params":{"threadId":"t","image":"`, `{"id":4,"params":{"image":"`
	cases := []struct {
		name   string
		script string // the child
		input  string // the start of the client's line, "" for none
		want   string // what the client gets first: the line's start, or the child's count
		rest   int64  // the bytes that follow it, up to and including the newline
	}{
		// The baseline: the same process passing a short line.
		{"baseline", `printf '{"method":"item/agentMessage/delta","params":{"delta":"xxx"}}\n'; read _ || :`,
			"", `{"method":"item/agentMessage/delta","params":{"delta":"xxx`, 4},
		{"child-to-client", `printf '{"method":"item/agentMessage/delta","params":{"delta":"'; ` + fill + `; printf '"}}\n'; read _ || :`,
			"", `{"method":"item/agentMessage/delta","params":{"delta":"xxx`, size - 3 + 4},
		{"client-to-child turn/start", count(turnStart), turnStart, fmt.Sprint(len(turnStart) + size + 4), 1},
		{"client-to-child method last", count(methodLast), methodLast, fmt.Sprint(len(methodLast) + size + 4), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, stdin, stdout, stderr := startBridgeCmd(t, c.script)
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				if c.input == "" {
					return
				}
				io.WriteString(stdin, c.input)
				chunk := bytes.Repeat([]byte("x"), 1<<20)
				for range size >> 20 {
					if _, err := stdin.Write(chunk); err != nil {
						return
					}
				}
				io.WriteString(stdin, `"}}`+"\n")
			}()
			br := bufio.NewReaderSize(stdout, 64<<10)
			start := make([]byte, len(c.want))
			if _, err := io.ReadFull(br, start); err != nil || string(start) != c.want {
				t.Fatalf("client got %q, %v; want %q; stderr: %s", start, err, c.want, stderr)
			}
			if n, err := io.CopyN(io.Discard, br, c.rest); err != nil {
				t.Fatalf("client got %d more bytes, want %d: %v", n, c.rest, err)
			}
			<-sent
			rss := peakRSS(t, cmd.Process.Pid) // the whole line has passed; the bridge still runs
			stdin.Close()                      // the child's read ends, and so does the bridge
			if n, _ := io.Copy(io.Discard, br); n != 0 {
				t.Errorf("client got %d bytes after the line", n)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("bridge: %v; stderr: %s", err, stderr)
			}
			if c.name == "baseline" {
				t.Logf("peak RSS %.1f MiB for a short line", float64(rss)/(1<<20))
				return
			}
			t.Logf("peak RSS %.1f MiB for a %d MiB line", float64(rss)/(1<<20), size>>20)
			if rss > limit {
				t.Errorf("peak RSS %.1f MiB, want at most %d MiB", float64(rss)/(1<<20), limit>>20)
			}
		})
	}
}
