package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBridgeUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"bridge"}, 2, "no command to run"},
		{[]string{"bridge", "--socket", "/x", "--provider", "dev", "--", "cat"}, 2, "only one of --socket and --provider"},
		{[]string{"bridge", "--deadline", "0s", "--", "cat"}, 2, "--deadline must be positive"},
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
			p := startBridgeProc(t, `trap "echo got-it >&2; exit 42" INT TERM HUP; echo '{"method":"ready"}'; while read l; do echo "$l"; done`)
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

// A client that stops reading (closes its end of the bridge's stdout) must
// not kill the bridge with SIGPIPE: the bridge drops the child's output
// from then on, and still exits with the child's status once it is done.
func TestBridgeProcessSurvivesAClientThatHangsUp(t *testing.T) {
	cmd := exec.Command(attestdBinary(t), "bridge", "--provider", "dev", "--", "sh", "-c",
		`echo '{"method":"ready"}'; read go; i=0; while [ $i -lt 1000 ]; do echo '{"method":"more"}'; i=$((i+1)); done; echo child-done >&2; exit 3`)
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
