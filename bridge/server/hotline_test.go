package server

import (
	"testing"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/protocol"
)

var hotLines = []struct {
	line string
	id   string // "" when the scanner must leave the line to Decode
}{
	{`{"id":7,"method":"attestation/generate"}`, `7`},
	{`{"method":"attestation/generate","id":7}`, `7`},
	{`{"id":-12,"method":"attestation/generate"}`, `-12`},
	{`{"id":123456789012345678901234567890,"method":"attestation/generate"}`, `123456789012345678901234567890`},
	{`{"id":"a<b>&c","method":"attestation/generate"}`, `"a<b>&c"`},
	{`{"id":"","method":"attestation/generate"}`, `""`},
	{` { "jsonrpc" : "2.0" , "id" : 1 , "method" : "attestation/generate" , "params" : { } } `, `1`},
	{"{\"id\":1,\t\"method\":\"attestation/generate\",\"params\":null}\r", `1`},
	{`{"params":{},"method":"attestation/generate","id":"x"}`, `"x"`},
	// Left to Decode:
	{`{"id":7,"method":"attestation/status"}`, ""},
	{`{"method":"attestation/generate"}`, ""}, // a notification
	{`{"id":7}`, ""}, // no method
	{`{"id":01,"method":"attestation/generate"}`, ""},       // leading zero
	{`{"id":1.0,"method":"attestation/generate"}`, ""},      // not an integer
	{`{"id":-,"method":"attestation/generate"}`, ""},        // no digits
	{`{"id":null,"method":"attestation/generate"}`, ""},     // null id
	{`{"id":"\u0031","method":"attestation/generate"}`, ""}, // an escape
	{`{"id":"é","method":"attestation/generate"}`, ""},      // not ASCII
	{`{"id":1,"method":"attestation\/generate"}`, ""},       // an escape
	{`{"id":1,"id":2,"method":"attestation/generate"}`, ""}, // repeated member
	{`{"id":1,"method":"attestation/generate","method":"attestation/generate"}`, ""},
	{`{"id":1,"method":"attestation/generate","params":{"a":1}}`, ""}, // params with members
	{`{"id":1,"method":"attestation/generate","params":[]}`, ""},      // params not an object
	{`{"id":1,"method":"attestation/generate","jsonrpc":"1.0"}`, ""},  // wrong version
	{`{"id":1,"method":"attestation/generate","extra":true}`, ""},     // unknown member
	{`{"id":1,"method":"attestation/generate"}x`, ""},                 // trailing bytes
	{`{"id":1,"method":"attestation/generate",}`, ""},                 // trailing comma
	{`{"id":1 "method":"attestation/generate"}`, ""},                  // no comma
	{`{}`, ""},
	{`[{"id":1,"method":"attestation/generate"}]`, ""},
	{"\v{\"id\":1,\"method\":\"attestation/generate\"}", ""}, // not JSON whitespace
	{``, ""},
}

func TestScanGenerate(t *testing.T) {
	for _, tc := range hotLines {
		id, ok := scanGenerate([]byte(tc.line))
		if ok != (tc.id != "") || string(id) != tc.id {
			t.Errorf("scanGenerate(%s) = %q, %v; want %q", tc.line, id, ok, tc.id)
		}
		if ok {
			checkLikeDecode(t, []byte(tc.line), id)
		}
	}
}

// checkLikeDecode asserts that jsonrpc.Decode reads line as the
// attestation/generate call with that id text and acceptable params.
func checkLikeDecode(t *testing.T, line, id []byte) {
	t.Helper()
	msg, _, err := jsonrpc.Decode(line)
	if err != nil {
		t.Fatalf("scanGenerate accepted %q, which Decode refuses: %v", line, err)
	}
	req, ok := msg.(*jsonrpc.Request)
	if !ok || !req.IsCall || req.Method != protocol.MethodGenerate || req.ID.String() != string(id) || checkParams(req.Params) != nil {
		t.Fatalf("scanGenerate accepted %q as call %s, Decode reads %+v", line, id, msg)
	}
}

// FuzzScanGenerate holds the scanner to Decode: whatever it accepts,
// Decode reads as the same call.
func FuzzScanGenerate(f *testing.F) {
	for _, tc := range hotLines {
		f.Add([]byte(tc.line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if id, ok := scanGenerate(line); ok {
			checkLikeDecode(t, line, id)
		}
	})
}

func BenchmarkScanGenerate(b *testing.B) {
	line := []byte(`{"id":12345,"method":"attestation/generate"}`)
	for b.Loop() {
		scanGenerate(line)
	}
}
