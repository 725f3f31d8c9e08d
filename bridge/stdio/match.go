package stdio

import (
	"bytes"
	"encoding/json"
)

// Methods the bridge acts on.
const (
	methodInitialize = "initialize"
	methodAttest     = "attestation/generate"
)

// WarmMethods are the client requests after which the app-server is about
// to ask for a token: on each, the bridge tells its Source to have one
// ready. The list goes beyond initialize, thread/start, thread/resume and
// turn/start to the other calls that start model requests.
var WarmMethods = []string{
	methodInitialize,
	"thread/start",
	"thread/resume",
	"thread/fork",
	"turn/start",
	"thread/compact/start",
	"review/start",
}

// matcher is the passthrough fast path: it decides, without parsing, that
// a line cannot be a message whose method is one of a set of names.
//
// A JSON string token equal to a name appears in the line either literally
// (quotes included) or with escapes. Only \uXXXX can escape a letter or a
// digit and only \/ a slash, so a line with neither a quoted name nor one
// of those two escapes cannot carry the name anywhere; the other lines are
// read up to their top-level method member.
type matcher struct {
	quoted [][]byte
}

func newMatcher(names ...string) *matcher {
	m := &matcher{}
	for _, n := range names {
		q, _ := json.Marshal(n)
		m.quoted = append(m.quoted, q)
	}
	return m
}

var (
	escapeU     = []byte(`\u`)
	escapeSlash = []byte(`\/`)
)

// method returns the method of the message in line when it may be one of
// m's; ok is false for a line that is certainly none of them. It reads a
// method named first, or right after a scalar id, straight off the front
// of the line; only other lines are searched for m's names, and only
// those that may hold one are scanned up to their method member.
func (m *matcher) method(line []byte) (method string, ok bool) {
	if method, ok := leadingMethod(line); ok {
		return method, true
	}
	if !m.mayMatch(line) {
		return "", false
	}
	return methodOf(line)
}

// mayMatch reports whether line may be a message with one of m's methods.
// False means it certainly is not.
func (m *matcher) mayMatch(line []byte) bool {
	if bytes.IndexByte(line, '\\') >= 0 && (bytes.Contains(line, escapeU) || bytes.Contains(line, escapeSlash)) {
		return true
	}
	for _, q := range m.quoted {
		if bytes.Contains(line, q) {
			return true
		}
	}
	return false
}

// methodOf returns the top-level method member of the JSON object in line.
// It reads only as far as that member, so a line that names its method
// first (as codex app-server and most clients do) costs little whatever
// its size. ok is false when the line is not an object or has no string
// method.
func methodOf(line []byte) (method string, ok bool) {
	var raw []byte
	_, err := scanObject(line, skipSpace(line, 0), func(m member) bool {
		if m.key == "method" {
			raw = line[m.start:m.end]
			return false
		}
		return true
	})
	if err != nil || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	method, err = decodeString(raw)
	return method, err == nil
}

// leadingMethod returns the method of an object whose first member is
// "method", or whose first is "id" and second "method", the shapes in
// which codex app-server and most clients write requests. ok is false for
// any other line, which then needs a closer look.
func leadingMethod(line []byte) (method string, ok bool) {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return "", false
	}
	for n := 0; n < 2; n++ {
		i = skipSpace(line, i+1)
		if i >= len(line) || line[i] != '"' {
			return "", false
		}
		kEnd, err := skipString(line, i)
		if err != nil {
			return "", false
		}
		key := line[i+1 : kEnd-1]
		i = skipSpace(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return "", false
		}
		i = skipSpace(line, i+1)
		switch {
		case string(key) == "method":
			if i >= len(line) || line[i] != '"' {
				return "", false
			}
			vEnd, err := skipString(line, i)
			if err != nil {
				return "", false
			}
			method, err := decodeString(line[i:vEnd])
			return method, err == nil
		case string(key) == "id" && n == 0 && i < len(line) && line[i] != '{' && line[i] != '[':
			vEnd, err := skipValue(line, i)
			if err != nil {
				return "", false
			}
			i = skipSpace(line, vEnd)
			if i >= len(line) || line[i] != ',' {
				return "", false
			}
		default:
			return "", false
		}
	}
	return "", false
}
