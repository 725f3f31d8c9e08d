package stdio

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/jsonrpc"
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
	m := newMatcher(methodAttest)
	cases := []struct {
		line     string
		may      bool
		method   string
		isMethod bool
	}{
		{`{"method":"attestation/generate","id":0,"params":{}}`, true, methodAttest, true},
		{`{"id":0,"params":{},"method":"attestation/generate"}`, true, methodAttest, true},
		{`{"method":"attestation\/generate","id":0}`, true, methodAttest, true},
		{`{"method":"\u0061ttestation/generate","id":0}`, true, methodAttest, true},
		{`{"method":"item/agentMessage/delta","params":{"delta":"attestation/generate"}}`, true, "item/agentMessage/delta", true},
		{`{"method":"item/agentMessage/delta","params":{"delta":"say \"attestation/generate\""}}`, false, "", false},
		{`{"id":3,"result":{"ok":true}}`, false, "", false},
		{`{"method":"x","params":{"s":"\u001b[0m"}}`, true, "x", true},
		{`{"method":"x","params":{"s":"C:\\Users"}}`, false, "", false},
		{`not json "attestation/generate"`, true, "", false},
	}
	for _, c := range cases {
		if got := m.mayMatch([]byte(c.line)); got != c.may {
			t.Errorf("mayMatch(%s) = %v, want %v", c.line, got, c.may)
		}
		if !c.may {
			continue
		}
		method, ok := methodOf([]byte(c.line))
		if ok != c.isMethod || method != c.method {
			t.Errorf("methodOf(%s) = %q, %v; want %q, %v", c.line, method, ok, c.method, c.isMethod)
		}
	}
}

func TestMatcherMethod(t *testing.T) {
	m := newMatcher(methodAttest)
	cases := []struct {
		line   string
		method string
		ok     bool
	}{
		{`{"method":"attestation/generate","id":0,"params":{}}`, methodAttest, true},
		{` { "id" : 7 , "method" : "x" }`, "x", true},
		{`{"id":"a","method":"initialize"}`, methodInitialize, true},
		{`{"params":{"p":"x"},"id":0,"method":"attestation/generate"}`, methodAttest, true},
		{`{"m\u0065thod":"attestation/generate","id":0}`, methodAttest, true},
		{`{"id":{"x":1},"method":"attestation/generate"}`, methodAttest, true},
		{`{"id":3,"result":{"ok":true}}`, "", false},
		{`{"params":{"big":"attestation"},"method":"other"}`, "", false},
		{`[1,2]`, "", false},
	}
	for _, c := range cases {
		method, ok := m.method([]byte(c.line))
		if ok != c.ok || (ok && method != c.method) {
			t.Errorf("method(%s) = %q, %v; want %q, %v", c.line, method, ok, c.method, c.ok)
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
	} {
		f.Add(s)
	}
	matchers := []*matcher{initMatcher, attestMatcher}
	names := append([]string{methodAttest}, WarmMethods...)
	f.Fuzz(func(t *testing.T, line string) {
		for _, m := range matchers {
			m.method([]byte(line)) // must not panic
		}
		leadingMethod([]byte(line))
		msg, _, err := jsonrpc.Decode([]byte(line))
		req, ok := msg.(*jsonrpc.Request)
		if err != nil || !ok || !slices.Contains(names, req.Method) || !uniqueTopLevelKeys(line) {
			return
		}
		m := attestMatcher
		if req.Method != methodAttest {
			m = initMatcher
		}
		if got, ok := m.method([]byte(line)); !ok || got != req.Method {
			t.Fatalf("method(%q) = %q, %v; the line is a %s request", line, got, ok, req.Method)
		}
	})
}

// uniqueTopLevelKeys reports whether the JSON object in s names each
// top-level member once (decoders differ on which repeat wins).
func uniqueTopLevelKeys(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		k := t.(string)
		if seen[k] {
			return false
		}
		seen[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return true
}
