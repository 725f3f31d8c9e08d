package reliability

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/server"
)

// fuzzMaxLine is small so that the fuzzer reaches the too-long path.
const fuzzMaxLine = 512

// FuzzServerConn feeds arbitrary bytes to a live daemon connection, shuts
// the write side and reads until the daemon closes. The daemon must answer
// every call line exactly once with its id, send nothing for notifications
// and responses, answer a line that is not a message with one error, stop
// at a line over the limit with one request-too-large error, send only
// whole JSON answers, and close cleanly.
func FuzzServerConn(f *testing.F) {
	for _, s := range []string{
		"",
		"\n",
		`{"id":1,"method":"attestation/generate"}` + "\n",
		`{"id":"a","method":"attestation/status"}` + "\r\n" + `{"method":"attestation/warm"}` + "\n",
		`{"id":1,"method":"x"}` + "\n" + `{"id":1,"result":{}}` + "\n" + "[1]\n" + `{"id":2,"method":"initialize","params":{"clientInfo":{"name":"n"}}}`,
		`{"id":1,"method":"attestation/generate","params":[]}` + "\n" + "{\n" + "\x00\n",
		`{"id":99999999999999999999999,"method":"attestation/generate"}`,
		string(bytes.Repeat([]byte("a"), fuzzMaxLine+1)) + "\n" + `{"id":1,"method":"attestation/status"}` + "\n",
		`{"id":1,"method":"attestation/status"}` + "\n" + string(bytes.Repeat([]byte(" "), fuzzMaxLine)) + "\n",
	} {
		f.Add([]byte(s))
	}
	d := startDaemon(f, daemonOpts{
		pool:   pool.Config{Size: 4},
		server: server.Config{MaxLine: fuzzMaxLine, Deadline: 2 * time.Second},
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		want, tooLong := expectedAnswers(in, fuzzMaxLine)
		nc, err := net.DialTimeout("unix", d.path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			if _, err := nc.Write(in); err == nil {
				nc.(*net.UnixConn).CloseWrite()
			}
		}()
		out, err := io.ReadAll(nc)
		if err != nil && !(tooLong && isReset(err)) {
			t.Fatalf("reading answers: %v (after %q)", err, out)
		}
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("the last answer is cut: %q", out)
		}
		var got []string
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			a, err := parseAnswer(line)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, answerKey(a.ID, a.Err != nil, errCode(a)))
		}
		sort.Strings(got)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("input %q:\n got answers %q\nwant answers %q", in, got, want)
		}
	})
}

func errCode(a answer) int64 {
	if a.Err == nil {
		return 0
	}
	return a.Err.Code
}

// answerKey names an expected answer by id and kind: any result, an
// attestation failure or a protocol error of a given code.
func answerKey(id string, isErr bool, code int64) string {
	switch {
	case !isErr, code == jsonrpc.CodeAttestation:
		return id + " ok-or-attestation-error" // a token, or none before the deadline
	}
	return fmt.Sprintf("%s error %d", id, code)
}

// expectedAnswers works out, independently of the server's line reader,
// the answers a connection fed in must get.
func expectedAnswers(in []byte, maxLine int) (want []string, tooLong bool) {
	for len(in) > 0 {
		line, rest, found := bytes.Cut(in, []byte("\n"))
		in = rest
		if len(line) > maxLine {
			return append(want, answerKey("null", true, jsonrpc.CodeRequestTooLarge)), true
		}
		if !found && len(line) == 0 {
			break
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		msg, id, err := jsonrpc.Decode(line)
		if err != nil {
			want = append(want, answerKey(id.String(), true, jsonrpc.AsError(err).Code))
			continue
		}
		if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall {
			code := int64(0)
			switch p := bytes.TrimSpace(req.Params); {
			case len(p) > 0 && p[0] != '{': // checked first, for any method
				code = jsonrpc.CodeInvalidParams
			case req.Method != protocol.MethodGenerate && req.Method != protocol.MethodInitialize &&
				req.Method != protocol.MethodStatus && req.Method != protocol.MethodWarm:
				code = jsonrpc.CodeMethodNotFound
			}
			want = append(want, answerKey(id.String(), code != 0, code))
		}
	}
	return want, false
}
