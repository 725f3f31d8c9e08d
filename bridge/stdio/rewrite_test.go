package stdio

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/protocol"
)

func TestOptIn(t *testing.T) {
	cases := []struct{ in, want string }{
		{ // the usual client: no capabilities
			`{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"}}}` + "\n",
			`{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"},"capabilities":{"requestAttestation":true}}}` + "\n",
		},
		{ // other capabilities kept, in order, with their spacing
			`{"method": "initialize", "id": "a", "params": { "capabilities" : { "experimentalApi" : true } , "clientInfo":{"name":"x","version":"1"} } }`,
			`{"method": "initialize", "id": "a", "params": { "capabilities" : { "experimentalApi" : true,"requestAttestation":true } , "clientInfo":{"name":"x","version":"1"} } }`,
		},
		{ // an explicit false is turned on, nothing else moves
			`{"id":1,"method":"initialize","params":{"capabilities":{"requestAttestation":false,"x":1}}}` + "\r\n",
			`{"id":1,"method":"initialize","params":{"capabilities":{"requestAttestation":true,"x":1}}}` + "\r\n",
		},
		{ // null capabilities
			`{"id":1,"method":"initialize","params":{"clientInfo":{},"capabilities":null}}`,
			`{"id":1,"method":"initialize","params":{"clientInfo":{},"capabilities":{"requestAttestation":true}}}`,
		},
		{ // empty capabilities and params
			`{"id":1,"method":"initialize","params":{"capabilities":{ }}}`,
			`{"id":1,"method":"initialize","params":{"capabilities":{ "requestAttestation":true}}}`,
		},
		{ // no params at all
			`{"id":1,"method":"initialize"}`,
			`{"id":1,"method":"initialize","params":{"capabilities":{"requestAttestation":true}}}`,
		},
		{ // null params
			` {"id":1,"method":"initialize","params":null} ` + "\n",
			` {"id":1,"method":"initialize","params":{"capabilities":{"requestAttestation":true}}} ` + "\n",
		},
		{ // escaped keys are still the same keys; escapes elsewhere kept
			`{"id":1,"method":"initialize","p\u0061rams":{"clientInfo":{"name":"\u00e9\"\/"},"capabilities":{"requestAttest\u0061tion":0}}}`,
			`{"id":1,"method":"initialize","p\u0061rams":{"clientInfo":{"name":"\u00e9\"\/"},"capabilities":{"requestAttest\u0061tion":true}}}`,
		},
		{ // a repeated key: the last one counts
			`{"id":1,"method":"initialize","params":{"capabilities":{}},"params":{}}`,
			`{"id":1,"method":"initialize","params":{"capabilities":{}},"params":{"capabilities":{"requestAttestation":true}}}`,
		},
	}
	for _, c := range cases {
		got, err := optIn([]byte(c.in))
		if err != nil {
			t.Errorf("optIn(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("optIn(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("optIn(%s) is not JSON: %s", c.in, got)
		}
	}
}

func TestOptInLeavesOddLinesAlone(t *testing.T) {
	for _, in := range []string{
		`{"id":1,"method":"initialize","params":"x"}`,
		`{"id":1,"method":"initialize","params":{"capabilities":[]}}`,
		`{"id":1,"method":"initialize","params":{"capabilities":{}}`,
		`{"id":1,"method":"initialize"} trailing`,
		`["initialize"]`,
		``,
		"\n",
	} {
		if got, err := optIn([]byte(in)); err == nil {
			t.Errorf("optIn(%q) = %q, want an error", in, got)
		}
	}
}

func TestMatcherAndMethodOf(t *testing.T) {
	m := newMatcher(protocol.MethodGenerate)
	cases := []struct {
		line     string
		may      bool
		method   string
		isMethod bool
	}{
		{`{"method":"attestation/generate","id":0,"params":{}}`, true, protocol.MethodGenerate, true},
		{`{"id":0,"params":{},"method":"attestation/generate"}`, true, protocol.MethodGenerate, true},
		{`{"method":"attestation\/generate","id":0}`, true, protocol.MethodGenerate, true},
		{`{"method":"\u0061ttestation/generate","id":0}`, true, protocol.MethodGenerate, true},
		{`{"method":"item/agentMessage/delta","params":{"delta":"attestation/generate"}}`, true, "item/agentMessage/delta", true},
		{`{"method":"item/agentMessage/delta","params":{"delta":"say \"attestation/generate\""}}`, false, "", false},
		{`{"id":3,"result":{"ok":true}}`, false, "", false},
		{`{"method":"x","params":{"s":"\u001b[0m"}}`, true, "x", true},
		{`{"method":"x","params":{"s":"C:\\Users"}}`, false, "", false},
		{`not json "attestation/generate"`, false, "", false},
		{`{"id":3,"result":{"text":"\"attestation/generate\""}}`, false, "", false},
		{`not json "method" "attestation/generate"`, true, "", false},
	}
	for _, c := range cases {
		if got := m.mayMatch([]byte(c.line)); got != c.may {
			t.Errorf("mayMatch(%s) = %v, want %v", c.line, got, c.may)
		}
		if !c.may {
			continue
		}
		method, settled := methodOf([]byte(c.line), true)
		if !settled || method != c.method {
			t.Errorf("methodOf(%s) = %q, %v; want %q, true", c.line, method, settled, c.method)
		}
	}
}

func TestMatcherMethod(t *testing.T) {
	m := newMatcher(protocol.MethodGenerate)
	cases := []struct {
		line   string
		method string // "" when none of m's
	}{
		{`{"method":"attestation/generate","id":0,"params":{}}`, protocol.MethodGenerate},
		{` { "id" : 7 , "method" : "attestation/generate" }`, protocol.MethodGenerate},
		{`{"id":"a","method":"initialize"}`, ""},
		{`{"params":{"p":"x"},"id":0,"method":"attestation/generate"}`, protocol.MethodGenerate},
		{`{"m\u0065thod":"attestation/generate","id":0}`, protocol.MethodGenerate},
		{`{"id":{"x":1},"method":"attestation/generate"}`, protocol.MethodGenerate},
		{`{"id":3,"result":{"ok":true}}`, ""},
		{`{"params":{"big":"attestation"},"method":"other"}`, ""},
		{`{"method":"attestation\/generate"}`, protocol.MethodGenerate},
		{`[1,2]`, ""},
	}
	for _, c := range cases {
		method, settled := m.method([]byte(c.line), true)
		if !settled || method != c.method {
			t.Errorf("method(%s) = %q, %v; want %q, true", c.line, method, settled, c.method)
		}
	}
}

// The start of a long line settles its method once the method member is
// read, and not before.
func TestMatcherMethodOfALinesStart(t *testing.T) {
	m := newMatcher(protocol.MethodGenerate, "turn/start")
	cases := []struct {
		start   string
		method  string
		settled bool
	}{
		{`{"method":"turn/start","params":{"input":"AAAA`, "turn/start", true},
		{`{"id":3,"method":"turn/start","par`, "turn/start", true},
		{`{"id":3,"method":"turn/st`, "", false},
		{`{"id":3,"meth`, "", false},
		{`{"id":12`, "", false},
		{`{"params":{"input":"AAAA`, "", false},
		{`{"params":{"input":"AAAA"},"id":1,"method":"turn/start"`, "turn/start", true},
		{`{"params":{"input":"AAAA"},"id":1,"method":"x/y"`, "", true},
		{`{"method":"item/agentMessage/delta","params":{"delta":"turn/start`, "", true},
		{`{"id":4,"result":{"big":"`, "", false},
		{`{"id":4,"result":{"big":""}}`, "", true},
		{`[{"method":"turn/start"`, "", true},
		{`garbage "turn/start"`, "", true},
		{`   `, "", false},
	}
	for _, c := range cases {
		method, settled := m.method([]byte(c.start), false)
		if settled != c.settled || method != c.method {
			t.Errorf("method(%s, start) = %q, %v; want %q, %v", c.start, method, settled, c.method, c.settled)
		}
	}
}

func FuzzOptIn(f *testing.F) {
	f.Add(`{"id":1,"method":"initialize","params":{"clientInfo":{"name":"x","version":"1"}}}`)
	f.Add(`{"params":{"capabilities":{"requestAttestation":false}}}`)
	f.Add(`{"params":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		out, err := optIn([]byte(in))
		if err != nil {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			if json.Valid([]byte(strings.TrimSpace(in))) {
				t.Fatalf("optIn(%q) = %q: %v", in, out, err)
			}
			return
		}
		params, _ := v["params"].(map[string]any)
		caps, _ := params["capabilities"].(map[string]any)
		if caps["requestAttestation"] != true {
			t.Fatalf("optIn(%q) = %q: requestAttestation not set", in, out)
		}
	})
}

// FuzzFastPath checks the passthrough fast path never lets through a line
// that is one of the methods the bridge acts on, however it is written.
func FuzzFastPath(f *testing.F) {
	for _, s := range []string{
		`{"method":"attestation/generate","id":0,"params":{}}`,
		`{"id":"a","method":"initialize","params":{}}`,
		`{"params":{"x":"\"}"},"id":1,"method":"turn/start"}`,
		`{"m\u0065thod":"attestation\/generate","id":0}`,
		`{"id":3,"result":{"method":"initialize"}}`,
		`{"method":"item/delta","params":{"d":"\\u0041"}}`,
		`{"method":"turn/completed","params":{"threadId":"t","turn":{"id":"u","items":[]}}}`,
		`{"method":"attestation/generate","id":0,"method":"x"}`,
	} {
		f.Add(s)
	}
	matchers := []*matcher{clientMatcher, childMatcher}
	f.Fuzz(func(t *testing.T, line string) {
		for _, m := range matchers {
			m.method([]byte(line), true) // must not panic
			m.method([]byte(line), false)
		}
		msg, _, err := jsonrpc.Decode([]byte(line))
		req, ok := msg.(*jsonrpc.Request)
		if err != nil || !ok {
			return
		}
		for _, m := range matchers {
			if !slices.Contains(m.names, req.Method) {
				continue
			}
			if got, settled := m.method([]byte(line), true); !settled || got != req.Method {
				t.Fatalf("method(%q) = %q, %v; the line is a %s request", line, got, settled, req.Method)
			}
			// Any start of the line that settles the method settles it
			// right: a long line is judged by its start.
			for n := range min(len(line), 2048) {
				if got, settled := m.method([]byte(line[:n]), false); settled && got != req.Method {
					t.Fatalf("method(%q, start) = %q; the line is a %s request", line[:n], got, req.Method)
				}
			}
		}
	})
}
