package stdio

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/attestd/attestd/bridge/internal/jsonscan"
)

// errNotObject reports a member on the path to requestAttestation that holds
// something other than an object or null, which the bridge leaves alone.
var errNotObject = errors.New("not a JSON object")

// optInPath is where a client's initialize declares that it answers
// attestation/generate.
var optInPath = []string{"params", "capabilities", "requestAttestation"}

// optIn returns the initialize line with params.capabilities.requestAttestation
// set to true. Every other byte of the line is kept: members keep their
// order, spacing and escapes, the member is added at the end of its object
// when missing, and only its value is replaced when present. The line is
// copied once, whatever its size. The caller has checked the line with
// jsonrpc.Decode, which refuses a repeated params.
func optIn(line []byte) ([]byte, error) {
	start := jsonscan.SkipSpace(line, 0)
	ms, closing, err := members(line, start)
	if err != nil {
		return nil, err
	}
	if jsonscan.SkipSpace(line, closing+1) != len(line) {
		return nil, errNotObject
	}
	e, err := setPath(line, ms, closing, optInPath, []byte("true"))
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", "params.capabilities.requestAttestation", err)
	}
	out := make([]byte, 0, len(line)-(e.end-e.start)+len(e.repl))
	out = append(out, line[:e.start]...)
	out = append(out, e.repl...)
	return append(out, line[e.end:]...), nil
}

// members returns the members of the JSON object that starts at b[i] and
// the offset of its closing brace.
func members(b []byte, i int) ([]jsonscan.Member, int, error) {
	var ms []jsonscan.Member
	closing, err := jsonscan.Object(b, i, func(_ []byte, m jsonscan.Member) bool {
		ms = append(ms, m)
		return true
	})
	if err != nil {
		return nil, 0, errNotObject
	}
	return ms, closing, nil
}

// edit replaces b[start:end] with repl.
type edit struct {
	start, end int
	repl       []byte
}

// setPath returns the edit of b that sets the member at path, in the
// object with members ms closing at b[closing], to value, creating the
// objects on the way as needed (a null on the way counts as missing).
//
// When a key repeats, the last occurrence is the one changed: codex
// app-server reads params as a serde_json Value, whose objects keep the
// last of repeated keys, before it reads the capabilities from it.
func setPath(b []byte, ms []jsonscan.Member, closing int, path []string, value []byte) (edit, error) {
	var m *jsonscan.Member
	for i := range ms {
		if ms[i].Key(b, path[0]) {
			m = &ms[i]
		}
	}
	if m == nil {
		kv, err := json.Marshal(path[0])
		if err != nil {
			return edit{}, err
		}
		kv = append(kv, ':')
		kv = append(kv, nest(path[1:], value)...)
		at := closing
		if len(ms) > 0 {
			at = ms[len(ms)-1].End
			kv = append([]byte{','}, kv...)
		}
		return edit{at, at, kv}, nil
	}
	old := b[m.Start:m.End]
	switch {
	case len(path) == 1:
		return edit{m.Start, m.End, value}, nil
	case string(old) == "null":
		return edit{m.Start, m.End, nest(path[1:], value)}, nil
	case old[0] == '{':
		sub, subClosing, err := members(b, m.Start)
		if err != nil {
			return edit{}, fmt.Errorf("%s: %w", path[0], err)
		}
		e, err := setPath(b, sub, subClosing, path[1:], value)
		if err != nil {
			return edit{}, fmt.Errorf("%s: %w", path[0], err)
		}
		return e, nil
	}
	return edit{}, fmt.Errorf("%s: %w", path[0], errNotObject)
}

// lastMember returns the value of the last member named name of the JSON
// object b, the one a serde_json Value keeps, or nil.
func lastMember(b []byte, name string) []byte {
	var val []byte
	jsonscan.Object(b, 0, func(b []byte, m jsonscan.Member) bool {
		if m.Key(b, name) {
			val = b[m.Start:m.End]
		}
		return true
	})
	return val
}

// nest returns value wrapped in one object per key of path.
func nest(path []string, value []byte) []byte {
	if len(path) == 0 {
		return value
	}
	key, _ := json.Marshal(path[0])
	out := append([]byte{'{'}, key...)
	out = append(out, ':')
	out = append(out, nest(path[1:], value)...)
	return append(out, '}')
}
