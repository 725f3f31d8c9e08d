package stdio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/provider"
)

// patience bounds every wait in these tests: a bridge that deadlocks fails
// the test instead of hanging it.
const patience = 60 * time.Second

// fakeSource hands out "v1.tok-N" values, or whatever token says.
type fakeSource struct {
	n     atomic.Int64
	warms atomic.Int64
	token func(ctx context.Context) (string, error)
}

func (s *fakeSource) Token(ctx context.Context) (string, error) {
	if s.token != nil {
		return s.token(ctx)
	}
	return fmt.Sprintf("v1.tok-%d", s.n.Add(1)), nil
}

func (s *fakeSource) Warm() { s.warms.Add(1) }

// harness runs a Bridge in front of a fake child and plays its client.
type harness struct {
	t      *testing.T
	in     *io.PipeWriter // the client's writes
	lines  chan []byte    // lines the bridge wrote to the client
	sigs   chan os.Signal
	done   chan runResult
	stderr *syncBuffer
}

type runResult struct {
	code int
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func fakeCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{fakeChildEnv + "=" + mode}, env...)...)
	return cmd
}

func startBridge(t *testing.T, b *Bridge, mode string, env ...string) *harness {
	t.Helper()
	cmd := fakeCmd(t, mode, env...)
	h := &harness{
		t:      t,
		lines:  make(chan []byte, 4096),
		sigs:   make(chan os.Signal, 1),
		done:   make(chan runResult, 1),
		stderr: &syncBuffer{},
	}
	cmd.Stderr = h.stderr
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h.in = inW
	go func() {
		code, err := b.Run(cmd, inR, outW, h.sigs)
		outW.Close()
		h.done <- runResult{code, err}
	}()
	go func() {
		defer close(h.lines)
		lr := bufio.NewReaderSize(outR, 64<<10)
		for {
			line, err := lr.ReadBytes('\n')
			if len(line) > 0 {
				h.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		inW.Close() // ends the bridge's read from its client, if still on
		outR.Close()
		select {
		case <-h.done:
		case <-time.After(patience):
			t.Errorf("bridge still running at the end of the test")
		}
	})
	return h
}

func (h *harness) send(line string) {
	h.t.Helper()
	if _, err := io.WriteString(h.in, line); err != nil {
		h.t.Fatalf("write to bridge: %v", err)
	}
}

// recv returns the next line the client gets.
func (h *harness) recv() []byte {
	h.t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			h.t.Fatalf("bridge output ended early; child stderr: %s", h.stderr)
		}
		return line
	case <-time.After(patience):
		h.t.Fatalf("no line from the bridge within %v", patience)
	}
	return nil
}

// wait returns the bridge's exit status once it has returned.
func (h *harness) wait() int {
	h.t.Helper()
	select {
	case r := <-h.done:
		h.done <- r // for the cleanup
		if r.err != nil {
			h.t.Fatalf("Run: %v", r.err)
		}
		return r.code
	case <-time.After(patience):
		h.t.Fatalf("bridge did not return within %v", patience)
	}
	return 0
}

// expectEOF checks that the client's output ends without further lines.
func (h *harness) expectEOF() {
	h.t.Helper()
	select {
	case line, ok := <-h.lines:
		if ok {
			h.t.Fatalf("unexpected line from the bridge: %.200q", line)
		}
	case <-time.After(patience):
		h.t.Fatalf("bridge output did not end within %v", patience)
	}
}

func TestPassthroughOrderAndInitializeRewrite(t *testing.T) {
	src := &fakeSource{}
	h := startBridge(t, &Bridge{Source: src}, "echo")
	lines := []string{
		`{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"}, "capabilities" : {"experimentalApi":true}}}` + "\r\n",
		`{"method":"initialized"}` + "\n",
		`not json at all, "initialize" inside` + "\n",
		`{"id":2,"method":"thread/start","params":{"cwd":"/tmp"}}` + "\n",
		`{"id":3,"method":"config/read","params":{"note":"initialize"}}` + "\n",
		`{"id":4,"method":"turn/start","params":{"text":"\u00e9 say \"turn/start\" \/"}}` + "\n",
		`  {"id":5,"method":"initi\u0061lize","params":{}}` + "\n",
		`{"id":6,"result":{"ok":true}}` + "\n",
		"\n",
	}
	for _, l := range lines {
		h.send(l)
	}
	h.in.Close()
	for i, sent := range lines {
		got := h.recv()
		method, _ := methodOf([]byte(sent), true)
		if method != methodInitialize {
			if string(got) != sent {
				t.Errorf("line %d changed:\n got %q\nwant %q", i, got, sent)
			}
			continue
		}
		if !bytes.HasSuffix(got, []byte(sent[len(strings.TrimRight(sent, "\r\n")):])) {
			t.Errorf("line %d lost its line ending: %q", i, got)
		}
		var want, have map[string]any
		json.Unmarshal([]byte(sent), &want)
		if err := json.Unmarshal(got, &have); err != nil {
			t.Fatalf("line %d: rewritten initialize is not JSON: %v: %q", i, err, got)
		}
		params := want["params"].(map[string]any)
		caps, _ := params["capabilities"].(map[string]any)
		if caps == nil {
			caps = map[string]any{}
			params["capabilities"] = caps
		}
		caps["requestAttestation"] = true
		if !jsonEqual(want, have) {
			t.Errorf("line %d rewritten wrong:\n got %s\nwant %v", i, got, want)
		}
	}
	h.expectEOF()
	if code := h.wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	// initialize twice, thread/start, turn/start; not config/read, whose
	// params merely contain a method name.
	if got := src.warms.Load(); got != 4 {
		t.Errorf("Warm called %d times, want 4", got)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestInterceptAttestation(t *testing.T) {
	src := &fakeSource{}
	const n = 40
	// An hour's deadline: deadlines are TestDeadlineGivesAnError's
	// business, and a loaded machine must not turn a token into a timeout.
	h := startBridge(t, &Bridge{Source: src, Deadline: time.Hour}, "attest", fmt.Sprint("FAKE_N=", n))
	got := h.recv()
	var report struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(got, &report); err != nil || report.Method != "fake/answers" {
		t.Fatalf("client got %q, want only the fake/answers report (requests must not reach it)", got)
	}
	if len(report.Params) != n {
		t.Fatalf("%d answers, want %d", len(report.Params), n)
	}
	seen := map[string]bool{}
	for _, a := range report.Params {
		var ans struct {
			ID     json.RawMessage `json:"id"`
			Result struct {
				Token string `json:"token"`
			} `json:"result"`
		}
		if err := json.Unmarshal(a, &ans); err != nil || !strings.HasPrefix(ans.Result.Token, "v1.tok-") {
			t.Errorf("answer %s: not a token result", a)
		}
		if seen[ans.Result.Token] {
			t.Errorf("token %s handed out twice", ans.Result.Token)
		}
		seen[ans.Result.Token] = true
		// exact wire shape: the id echoed verbatim, then the result
		want := `{"id":` + string(ans.ID) + `,"result":{"token":"` + ans.Result.Token + `"}}`
		if string(a) != want {
			t.Errorf("answer %s, want %s", a, want)
		}
	}
	h.in.Close()
	h.expectEOF()
	if code := h.wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// answersFrom reads the fake child's report and decodes its answers.
func answersFrom(t *testing.T, h *harness) []jsonrpc.Response {
	t.Helper()
	for {
		line := h.recv()
		var report struct {
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		if json.Unmarshal(line, &report) != nil || report.Method != "fake/answers" {
			continue
		}
		var out []jsonrpc.Response
		for _, a := range report.Params {
			msg, _, err := jsonrpc.Decode(a)
			resp, ok := msg.(*jsonrpc.Response)
			if err != nil || !ok {
				t.Fatalf("answer %s is not a response: %v", a, err)
			}
			out = append(out, *resp)
		}
		return out
	}
}

func TestDeadlineGivesAnError(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	cases := []struct {
		name   string
		token  func(ctx context.Context) (string, error)
		reason string
	}{
		{"source honours ctx", func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}, provider.ReasonTimeout},
		{"source overruns", func(ctx context.Context) (string, error) {
			<-release // ignores ctx until the test ends
			return "v1.late", nil
		}, provider.ReasonTimeout},
		{"source fails", func(ctx context.Context) (string, error) {
			return "", &provider.Error{Reason: provider.ReasonDaemonUnreachable, Msg: "dial: no such file", DCCode: 2, HasDCCode: true}
		}, provider.ReasonDaemonUnreachable},
		{"empty token", func(ctx context.Context) (string, error) { return "", nil }, provider.ReasonProviderError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const deadline = 30 * time.Millisecond
			h := startBridge(t, &Bridge{Source: &fakeSource{token: c.token}, Deadline: deadline}, "attest", "FAKE_N=3")
			answers := answersFrom(t, h)
			if len(answers) != 3 {
				t.Fatalf("%d answers, want 3", len(answers))
			}
			for _, a := range answers {
				if a.Error == nil {
					t.Fatalf("answer %v has no error", a)
				}
				if !errors.Is(a.Error, jsonrpc.ErrAttestation) {
					t.Errorf("error code %d, want %d", a.Error.Code, jsonrpc.CodeAttestation)
				}
				var data struct {
					Reason string `json:"reason"`
					DC     *int   `json:"dcErrorCode"`
				}
				json.Unmarshal(a.Error.Data, &data)
				if data.Reason != c.reason {
					t.Errorf("reason %q, want %q (error %s)", data.Reason, c.reason, a.Error.Message)
				}
				if c.reason == provider.ReasonDaemonUnreachable && (data.DC == nil || *data.DC != 2) {
					t.Errorf("dcErrorCode missing: %s", a.Error.Data)
				}
			}
			// No wall-clock bound here (one of 5 s failed 1 run in 20 with
			// both cores busy): that any answer came proves the deadline,
			// since without it "honours ctx" and "overruns" would answer
			// only when the test ends, and answersFrom would time out.
			h.in.Close()
			h.expectEOF()
			h.wait()
		})
	}
}

func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	const (
		n    = 200      // attestation requests from the child
		m    = 200      // client lines, sent meanwhile
		size = 64 << 10 // bytes per client line, more than a pipe buffer
	)
	h := startBridge(t, &Bridge{Source: &fakeSource{}, Deadline: time.Hour}, "attest", fmt.Sprint("FAKE_N=", n))
	sent := make([]string, m)
	for i := range sent {
		sent[i] = fmt.Sprintf(`{"method":"note","params":{"i":%d,"pad":"%s"}}`+"\n", i, strings.Repeat(string(rune('a'+i%26)), size))
	}
	go func() {
		for _, l := range sent {
			if _, err := io.WriteString(h.in, l); err != nil {
				return
			}
		}
	}()
	next := 0
	gotReport := false
	for next < m || !gotReport {
		line := h.recv()
		if bytes.Contains(line, []byte(`"fake/corrupt"`)) {
			t.Fatal("child read an interleaved line")
		}
		if bytes.HasPrefix(line, []byte(`{"method":"fake/answers"`)) {
			gotReport = true
			continue
		}
		if next >= m || string(line) != sent[next] {
			t.Fatalf("echo %d out of order or changed: %.80q", next, line)
		}
		next++
	}
	h.in.Close()
	h.expectEOF()
	if code := h.wait(); code != 0 {
		t.Errorf("exit status %d, want 0; stderr: %s", code, h.stderr)
	}
}

// Lines of any length pass byte for byte. The bridge reads whole only the
// lines it acts on, up to MaxInspect: a longer initialize passes unchanged,
// and a line whose method comes only after MaxInspect bytes is not one it
// acts on.
func TestHugeLines(t *testing.T) {
	const size = 20 << 20
	src := &fakeSource{}
	logs := &syncBuffer{}
	// The echo child exits as soon as it has echoed everything, and then
	// the bridge waits ExitGrace at most for the client to take each 16 KiB
	// of it; reading 20 MiB lines under -race on a loaded machine can stall
	// longer than the default 2 s (the bridge then rightly gave up on the
	// client mid-line, 1 run in 20), and this test is not about that wait.
	h := startBridge(t, &Bridge{Source: src, ExitGrace: patience, Log: slog.New(slog.NewTextHandler(logs, nil))}, "echo")
	big := `{"method":"turn/start","id":9,"params":{"image":"` + strings.Repeat("A", size) + `"}}` + "\n"
	bigInit := `{"id":1,"method":"initialize","params":{"clientInfo":{"name":"` + strings.Repeat("n", size) + `","version":"1"}}}` + "\n"
	init := `{"id":2,"params":{"clientInfo":{"name":"` + strings.Repeat("m", MaxInspect-200) + `","version":"1"}},"method":"initialize"}` + "\n"
	lateMethod := `{"id":3,"params":{"image":"` + strings.Repeat("B", size) + `"},"method":"turn/start"}` + "\n"
	bigNoNL := `{"method":"last","params":"` + strings.Repeat("z", 100<<10) + `"}`
	go func() {
		for _, l := range []string{big, bigInit, init, lateMethod, bigNoNL} {
			io.WriteString(h.in, l)
		}
		h.in.Close()
	}()
	if got := h.recv(); string(got) != big {
		t.Fatalf("big line changed (len %d, want %d)", len(got), len(big))
	}
	if got := h.recv(); string(got) != bigInit {
		t.Fatalf("initialize over MaxInspect changed (len %d, want %d)", len(got), len(bigInit))
	}
	got := h.recv()
	want := strings.Replace(init, `"version":"1"}}`, `"version":"1"},"capabilities":{"requestAttestation":true}}`, 1)
	if string(got) != want {
		t.Fatalf("initialize under MaxInspect rewritten wrong (len %d, want %d): ...%q", len(got), len(want), got[max(0, len(got)-100):])
	}
	if got := h.recv(); string(got) != lateMethod {
		t.Fatalf("line with a late method changed (len %d, want %d)", len(got), len(lateMethod))
	}
	if got := h.recv(); string(got) != bigNoNL {
		t.Fatalf("last line without newline changed (len %d, want %d)", len(got), len(bigNoNL))
	}
	h.expectEOF()
	h.wait()
	// turn/start and both initialize lines; not the line whose method
	// comes after MaxInspect bytes.
	if w := src.warms.Load(); w != 3 {
		t.Errorf("Warm called %d times, want 3", w)
	}
	if l := logs.String(); !strings.Contains(l, "initialize passed on unchanged: longer than the bridge reads whole") {
		t.Errorf("no warning for the initialize it could not rewrite; log:\n%s", l)
	}
}

func TestExitStatusAndClientEOF(t *testing.T) {
	h := startBridge(t, &Bridge{Source: &fakeSource{}}, "echo", "FAKE_EXIT=3")
	h.send(`{"method":"x"}` + "\n")
	if got := h.recv(); string(got) != `{"method":"x"}`+"\n" {
		t.Fatalf("got %q", got)
	}
	// The echo child exits only once it sees EOF on its stdin.
	h.in.Close()
	h.expectEOF()
	if code := h.wait(); code != 3 {
		t.Errorf("exit status %d, want the child's 3", code)
	}
}

func TestChildDeathIsNotHungOn(t *testing.T) {
	h := startBridge(t, &Bridge{Source: &fakeSource{}}, "die")
	// The client keeps its end open; the bridge must return anyway.
	if got := h.recv(); !bytes.Contains(got, []byte("fake/bye")) {
		t.Fatalf("got %q", got)
	}
	if code := h.wait(); code != 7 {
		t.Errorf("exit status %d, want the child's 7", code)
	}
	h.expectEOF()
}

func TestGrandchildHoldingStdoutDoesNotHangTheBridge(t *testing.T) {
	h := startBridge(t, &Bridge{Source: &fakeSource{}, ExitGrace: 100 * time.Millisecond}, "orphan")
	var gc struct {
		Params int `json:"params"`
	}
	if err := json.Unmarshal(h.recv(), &gc); err != nil || gc.Params == 0 {
		t.Fatalf("no grandchild pid: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(gc.Params, syscall.SIGKILL) })
	if code := h.wait(); code != 5 {
		t.Errorf("exit status %d, want the child's 5", code)
	}
}

func TestSignalsAreForwarded(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			h := startBridge(t, &Bridge{Source: &fakeSource{}}, "signal")
			if got := h.recv(); !bytes.Contains(got, []byte("fake/ready")) {
				t.Fatalf("got %q", got)
			}
			h.sigs <- sig
			if code := h.wait(); code != 40+int(sig) {
				t.Errorf("exit status %d, want %d", code, 40+int(sig))
			}
		})
	}
	t.Run("uncaught", func(t *testing.T) {
		h := startBridge(t, &Bridge{Source: &fakeSource{}}, "hang")
		if got := h.recv(); !bytes.Contains(got, []byte("fake/ready")) {
			t.Fatalf("got %q", got)
		}
		h.sigs <- syscall.SIGTERM
		if code := h.wait(); code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit status %d, want %d", code, 128+int(syscall.SIGTERM))
		}
	})
}

func TestStderrPassesThrough(t *testing.T) {
	h := startBridge(t, &Bridge{Source: &fakeSource{}}, "stderr")
	h.wait()
	if got := h.stderr.String(); got != "fake stderr\n" {
		t.Errorf("stderr %q", got)
	}
}

func TestRunChecksItsArguments(t *testing.T) {
	cmd := exec.Command("true")
	if _, err := (&Bridge{}).Run(cmd, strings.NewReader(""), io.Discard, nil); err == nil {
		t.Error("Run without a Source succeeded")
	}
	cmd = exec.Command("/nonexistent/program")
	if _, err := (&Bridge{Source: &fakeSource{}}).Run(cmd, strings.NewReader(""), io.Discard, nil); err == nil {
		t.Error("Run of a missing program succeeded")
	}
}

// servePipes runs Serve over in-memory pipes: the test plays both the
// client and the child.
type servePipes struct {
	clientIn  *io.PipeWriter // the client's writes
	clientOut *bufio.Reader  // what the client gets
	childIn   *bufio.Reader  // what the child gets
	childOut  *io.PipeWriter // the child's writes
	done      chan error
}

func startServe(t *testing.T, b *Bridge) *servePipes {
	t.Helper()
	clientInR, clientInW := io.Pipe()
	clientOutR, clientOutW := io.Pipe()
	childInR, childInW := io.Pipe()
	childOutR, childOutW := io.Pipe()
	p := &servePipes{
		clientIn:  clientInW,
		clientOut: bufio.NewReader(clientOutR),
		childIn:   bufio.NewReader(childInR),
		childOut:  childOutW,
		done:      make(chan error, 1),
	}
	go func() {
		err := b.Serve(clientInR, clientOutW, childInW, childOutR)
		clientOutW.Close()
		p.done <- err
	}()
	t.Cleanup(func() {
		clientInW.Close()
		childOutW.Close()
		clientOutR.Close()
		childInR.Close()
		select {
		case <-p.done:
		case <-time.After(patience):
			t.Errorf("Serve still running at the end of the test")
		}
	})
	return p
}

// readLine returns the next line from lr, failing the test when none
// comes within patience.
func readLine(t *testing.T, lr *bufio.Reader, what string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		line, _ := lr.ReadBytes('\n')
		got <- string(line)
	}()
	select {
	case line := <-got:
		return line
	case <-time.After(patience):
		t.Fatalf("no line %s within %v", what, patience)
	}
	return ""
}

// A line the child wrote just before an attestation/generate request, in
// the same read, must reach the client without waiting for more output
// from the child: the app-server may have nothing more to say until the
// client answers that line.
func TestLineBeforeInterceptedRequestIsFlushed(t *testing.T) {
	p := startServe(t, &Bridge{Source: &fakeSource{}, Deadline: time.Hour})
	const first = `{"id":7,"result":{"thread":{"id":"t-1"}}}` + "\n"
	const req = `{"method":"attestation/generate","id":0,"params":{}}` + "\n"
	go io.WriteString(p.childOut, first+req) // one write: one read for the bridge
	if got := readLine(t, p.childIn, "answering the request"); !strings.HasPrefix(got, `{"id":0,"result":{"token":"v1.tok-`) {
		t.Fatalf("child got %q, want the answer", got)
	}
	if got := readLine(t, p.clientOut, "for the client"); got != first {
		t.Fatalf("client got %q, want %q", got, first)
	}
}

// Once the child has exited, its output is passed on to the end however
// slowly the client reads it, as long as it keeps reading: only a client
// that stops altogether, or a grandchild that holds the output open without
// writing to it, is given up on after ExitGrace.
func TestSlowClientGetsTheWholeOutputOfAnExitedChild(t *testing.T) {
	const (
		n     = 220 // lines of 1 KiB, more than the pipe and the bridge's buffers hold
		grace = 2 * time.Second
		pace  = 20 * time.Millisecond // per line: about 50 KB/s
	)
	cmd := fakeCmd(t, "flood", fmt.Sprint("FAKE_N=", n))
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan runResult, 1)
	go func() {
		b := &Bridge{Source: &fakeSource{}, ExitGrace: grace}
		code, err := b.Run(cmd, inR, outW, nil)
		outW.Close()
		done <- runResult{code, err}
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
		select {
		case <-done:
		case <-time.After(patience):
			t.Errorf("bridge still running at the end of the test")
		}
	})
	// The child exits once the pipe and the bridge's buffers (some 180
	// lines) hold the rest of its output, which then takes the client
	// about 3.6 s to read, nearly twice ExitGrace; yet the client takes a
	// line every few milliseconds, many within each ExitGrace. Its small
	// buffer keeps it from hiding that progress. The bridge sees progress
	// per 16 KiB write (clientChunk), 16 lines here, about 320 ms, which
	// leaves a loaded machine 1.7 s to be late in: with a 300 ms ExitGrace
	// (and 160 ms a chunk) a machine that delayed the reader's ticks made
	// the bridge give up mid-line, 1 run in 20 under -race.
	tick := time.NewTicker(pace)
	defer tick.Stop()
	br := bufio.NewReaderSize(outR, 4<<10)
	got := 0
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if want := floodLine(got) + "\n"; line != want {
				t.Fatalf("line %d: got %.60q, want %.60q", got, line, want)
			}
			got++
		}
		if err != nil {
			break
		}
		<-tick.C
	}
	if got != n {
		t.Errorf("client got %d lines of %d", got, n)
	}
	select {
	case r := <-done:
		done <- r
		if r.err != nil || r.code != 0 {
			t.Errorf("Run = %d, %v; want 0", r.code, r.err)
		}
	case <-time.After(patience):
		t.Fatal("bridge did not return")
	}
}

// A client that reads nothing once the child has exited is given up on
// after ExitGrace, rather than keeping the bridge alive.
func TestClientThatStopsReadingIsNotWaitedFor(t *testing.T) {
	// 30 lines of 1 KiB: the pipe takes them all (it holds 48 when each
	// is written on its own), so the child can exit although no one reads.
	cmd := fakeCmd(t, "flood", "FAKE_N=30")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe() // never read
	done := make(chan runResult, 1)
	go func() {
		b := &Bridge{Source: &fakeSource{}, ExitGrace: 100 * time.Millisecond}
		code, err := b.Run(cmd, inR, outW, nil)
		done <- runResult{code, err}
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	select {
	case r := <-done:
		if r.err != nil || r.code != 0 {
			t.Errorf("Run = %d, %v; want 0", r.code, r.err)
		}
	case <-time.After(patience):
		t.Fatal("bridge did not return")
	}
}

// eofThenBlock returns data with io.EOF, then blocks the next read until
// release is closed: it holds the bridge between passing on the client's
// last line and closing the child's stdin, a moment that is otherwise
// too short to test.
type eofThenBlock struct {
	data    string
	release chan struct{}
	read    bool
}

func (r *eofThenBlock) Read(p []byte) (int, error) {
	if !r.read {
		r.read = true
		return copy(p, r.data), io.EOF
	}
	<-r.release
	return 0, io.EOF
}

// childStdin records what the child gets and tells when it gets something.
type childStdin struct {
	mu     sync.Mutex
	got    bytes.Buffer
	writes chan struct{}
}

func (c *childStdin) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got.Write(p)
	select {
	case c.writes <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *childStdin) Close() error { return nil }

func (c *childStdin) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got.String()
}

// logSignal closes ch once a log line contains msg.
type logSignal struct {
	msg  string
	ch   chan struct{}
	once sync.Once
}

func (l *logSignal) Write(p []byte) (int, error) {
	if strings.Contains(string(p), l.msg) {
		l.once.Do(func() { close(l.ch) })
	}
	return len(p), nil
}

// The client's last line, cut short by its EOF, is the end of the child's
// input: an attestation answer must not be appended to it, which would
// turn both into one line that is neither.
func TestNothingIsAppendedToTheClientsUnterminatedLastLine(t *testing.T) {
	const last = `{"method":"bye"}` // no newline: the client's EOF ends it
	clientIn := &eofThenBlock{data: last, release: make(chan struct{})}
	child := &childStdin{writes: make(chan struct{}, 1)}
	childOut, childOutW := io.Pipe()
	refused := &logSignal{msg: "cannot answer attestation/generate", ch: make(chan struct{})}
	b := &Bridge{Source: &fakeSource{}, Log: slog.New(slog.NewTextHandler(refused, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	done := make(chan error, 1)
	go func() { done <- b.Serve(clientIn, io.Discard, child, childOut) }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(clientIn.release) }) }
	t.Cleanup(func() {
		release()
		childOutW.Close()
		select {
		case <-done:
		case <-time.After(patience):
			t.Errorf("Serve still running at the end of the test")
		}
	})

	select {
	case <-child.writes:
	case <-time.After(patience):
		t.Fatal("the client's last line did not reach the child")
	}
	go io.WriteString(childOutW, `{"method":"attestation/generate","id":0,"params":{}}`+"\n")
	// Either the answer reaches the child or the bridge refuses to send it.
	select {
	case <-child.writes:
	case <-refused.ch:
	case <-time.After(patience):
		t.Fatal("the attestation request was neither answered nor refused")
	}
	release()
	childOutW.Close()
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Serve did not return")
	}
	if got := child.String(); got != last {
		t.Errorf("child got %q, want only the client's %q", got, last)
	}
}
