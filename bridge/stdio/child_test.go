package stdio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the bridge's child: with fakeChildEnv set it
// runs one of the fake programs below instead of the tests.
const fakeChildEnv = "ATTESTD_STDIO_FAKE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeChildEnv); mode != "" {
		os.Exit(fakeChild(mode))
	}
	goleak.VerifyTestMain(m)
}

// fakeChild runs the fake program mode and returns its exit status.
//
//	echo    copies stdin to stdout byte for byte; at EOF exits FAKE_EXIT
//	attest  sends FAKE_N attestation/generate requests (even ids integers,
//	        odd ids strings) while echoing every other line it reads; exits
//	        3 on a line that is not JSON (an interleaved write); reports the
//	        answers as one fake/answers notification once all have come;
//	        exits 0 at EOF
//	signal  reports fake/ready, then exits 40+N on signal N
//	hang    reports fake/ready, then reads stdin without catching signals
//	die     writes fake/bye and exits 7 with stdin still open
//	stderr  writes "fake stderr" to stderr and exits 0
//	orphan  starts a grandchild (mode sleep) that keeps stdout open,
//	        reports its pid as fake/grandchild and exits 5
//	sleep   sleeps without reading stdin or closing stdout
//	flood   writes FAKE_N lines of 1 KiB (fake/flood notifications numbered
//	        from 0) and exits 0 without reading stdin
func fakeChild(mode string) int {
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	send := func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		out.WriteString(line)
		out.WriteByte('\n')
		out.Flush()
	}
	switch mode {
	case "echo":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			return 99
		}
		code, _ := strconv.Atoi(os.Getenv("FAKE_EXIT"))
		return code
	case "attest":
		return fakeAttestChild(send)
	case "signal":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		send(`{"method":"fake/ready"}`)
		sig := <-sigs
		return 40 + int(sig.(syscall.Signal))
	case "hang":
		send(`{"method":"fake/ready"}`)
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "die":
		send(`{"method":"fake/bye"}`)
		return 7
	case "stderr":
		fmt.Fprintln(os.Stderr, "fake stderr")
		return 0
	case "orphan":
		exe, _ := os.Executable()
		gc := exec.Command(exe, "-test.run=^$")
		gc.Env = append(os.Environ(), fakeChildEnv+"=sleep")
		gc.Stdout = os.Stdout
		if err := gc.Start(); err != nil {
			return 97
		}
		send(fmt.Sprintf(`{"method":"fake/grandchild","params":%d}`, gc.Process.Pid))
		return 5
	case "flood":
		n, _ := strconv.Atoi(os.Getenv("FAKE_N"))
		for i := range n {
			send(floodLine(i))
		}
		return 0
	case "sleep":
		time.Sleep(time.Minute) // the test kills it sooner
		return 0
	}
	fmt.Fprintf(os.Stderr, "fake child: unknown mode %q\n", mode)
	return 98
}

func fakeAttestChild(send func(string)) int {
	n, _ := strconv.Atoi(os.Getenv("FAKE_N"))
	ids := make(map[string]bool, n)
	for i := range n {
		ids[fakeID(i)] = true
	}
	go func() {
		for i := range n {
			send(`{"method":"attestation/generate","id":` + fakeID(i) + `,"params":{}}`)
		}
	}()
	answers := make([]json.RawMessage, 0, n)
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(line, &msg) != nil {
				send(`{"method":"fake/corrupt"}`)
				return 3
			}
			if msg.Method == "" && ids[string(msg.ID)] {
				delete(ids, string(msg.ID))
				answers = append(answers, append(json.RawMessage(nil), trimNL(line)...))
				if len(ids) == 0 {
					b, _ := json.Marshal(answers)
					send(`{"method":"fake/answers","params":` + string(b) + `}`)
				}
			} else {
				send(string(trimNL(line)))
			}
		}
		if err != nil {
			return 0
		}
	}
}

// fakeID returns the JSON id of the fake child's i-th request.
func fakeID(i int) string {
	if i%2 == 0 {
		return strconv.Itoa(i)
	}
	return strconv.Quote("att-" + strconv.Itoa(i))
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// floodLine is the i-th line of the flood child, without its newline.
func floodLine(i int) string {
	l := fmt.Sprintf(`{"method":"fake/flood","params":{"i":%d,"pad":"`, i)
	return l + strings.Repeat("f", 1024-len(l)-3) + `"}}`
}
