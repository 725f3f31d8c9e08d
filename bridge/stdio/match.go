package stdio

import (
	"bytes"
	"encoding/json"

	"github.com/attestd/attestd/bridge/internal/jsonscan"
	"github.com/attestd/attestd/bridge/jsonrpc"
)

// Methods of the app-server's protocol the bridge acts on, besides
// protocol.MethodGenerate, which the app-server sends its client just as
// socket clients send it to the daemon.
const (
	methodInitialize    = "initialize"
	methodTurnStarted   = "turn/started"
	methodTurnCompleted = "turn/completed"
)

// HoldMethods are the client requests that make the app-server ask for a
// token at once, or may: it asks for every model request (turn/start,
// thread/compact/start, review/start), for realtime call creation, and,
// when its Responses websockets are on, for the handshake made during
// thread/start, thread/resume and thread/fork, before it answers them.
// The bridge cannot see the app-server's configuration, so it holds those
// three as if websockets were on: with them off, holding costs at most the
// hold bound on a cold start, and the token is then ready for the turn
// that follows.
var HoldMethods = []string{
	"thread/start",
	"thread/resume",
	"thread/fork",
	"turn/start",
	"thread/compact/start",
	"review/start",
	"thread/realtime/start",
}

// WarmMethods are the client requests after which the app-server is about
// to ask for a token: on each, the bridge tells its Source to have one
// ready. They are HoldMethods and initialize, which is only warmed on:
// nothing asks for a token before the client's first thread.
var WarmMethods = append([]string{methodInitialize}, HoldMethods...)

// matcher is the passthrough fast path: it decides, without parsing, that
// a line cannot be a message whose method is one of a set of names.
//
// A JSON string token equal to a name appears in the line either literally
// (quotes included) or with escapes. Only \uXXXX can escape a letter or a
// digit and only \/ a slash, so a line with neither a quoted name nor one
// of those two escapes cannot carry the name anywhere; the other lines are
// read up to their top-level method member.
type matcher struct {
	names  []string
	quoted [][]byte
}

func newMatcher(names ...string) *matcher {
	m := &matcher{names: names}
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

// method returns the top-level method of the message that starts with b,
// when it is one of m's; whole says that b is the whole line. settled is
// false when b is the start of a longer line that ends before its method
// does. The method read is the first member so named: a line with more
// than one is refused later by jsonrpc.Decode, when it is read whole.
//
// A method named first, or right after a scalar id, is read straight off
// the front of the line; a whole line is searched for m's names first, and
// only one that may hold one is scanned up to its method member. Nothing
// is allocated unless the method is written with escapes.
func (m *matcher) method(b []byte, whole bool) (method string, settled bool) {
	tok, settled := leadingMethod(b)
	if !settled {
		if whole && !m.mayMatch(b) {
			return "", true
		}
		tok, settled = methodToken(b, whole)
	}
	return m.name(tok), settled
}

// name returns the one of m's names that the JSON string token tok
// decodes to, or "".
func (m *matcher) name(tok []byte) string {
	if len(tok) < 2 || tok[0] != '"' {
		return ""
	}
	s := tok[1 : len(tok)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		decoded, err := jsonscan.String(tok)
		if err != nil {
			return ""
		}
		s = []byte(decoded)
	}
	for _, n := range m.names {
		if string(s) == n {
			return n
		}
	}
	return ""
}

var quotedMethod = []byte(`"method"`)

// mayMatch reports whether line may be a message with one of m's methods.
// False means it certainly is not: it names neither "method" nor one of
// m's names in quotes, and has no escape that could spell them.
func (m *matcher) mayMatch(line []byte) bool {
	if bytes.IndexByte(line, '\\') >= 0 && (bytes.Contains(line, escapeU) || bytes.Contains(line, escapeSlash)) {
		return true
	}
	if !bytes.Contains(line, quotedMethod) {
		return false
	}
	for _, q := range m.quoted {
		if bytes.Contains(line, q) {
			return true
		}
	}
	return false
}

// methodToken returns the string token of the top-level method member of
// the JSON object that starts b, reading only as far as that member.
// settled is false when b ends first and is not the whole line; tok is
// nil for a line that is not an object or has no string method.
func methodToken(b []byte, whole bool) (tok []byte, settled bool) {
	raw, settled := lookup(b, whole, "method")
	if len(raw) == 0 || raw[0] != '"' {
		return nil, settled
	}
	return raw, true
}

// methodOf returns the top-level method of the JSON object that starts b,
// decoded, as methodToken finds it.
func methodOf(b []byte, whole bool) (method string, settled bool) {
	tok, settled := methodToken(b, whole)
	if tok == nil {
		return "", settled
	}
	method, err := jsonscan.String(tok)
	if err != nil {
		return "", true
	}
	return method, true
}

// lookup returns the value at path (a member of a member of … the JSON
// object that starts b), each the first member so named, or nil when there
// is none. It reads only as far as that value. settled is false when b
// ends first and is not the whole line.
func lookup(b []byte, whole bool, path ...string) (raw []byte, settled bool) {
	i := jsonscan.SkipSpace(b, 0)
	for _, name := range path {
		var err error
		i, err = jsonscan.Find(b, i, name)
		switch {
		case err == jsonscan.ErrShort && !whole:
			return nil, false
		case err != nil || i < 0:
			return nil, true
		}
	}
	end, err := jsonscan.SkipValue(b, i)
	switch {
	case err == jsonscan.ErrShort && !whole:
		return nil, false
	case err != nil:
		return nil, true
	}
	return b[i:end], true
}

// leadingMethod returns the method token of an object whose first member
// is "method", or whose first is "id" and second "method", the shapes in
// which codex app-server and most clients write requests. ok is false for
// any other line, which then needs a closer look, and for a method that
// is not a string.
func leadingMethod(line []byte) (tok []byte, ok bool) {
	i := jsonscan.SkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return nil, false
	}
	for n := 0; n < 2; n++ {
		i = jsonscan.SkipSpace(line, i+1)
		kEnd, err := jsonscan.SkipString(line, i)
		if err != nil {
			return nil, false
		}
		key := line[i:kEnd]
		i = jsonscan.SkipSpace(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return nil, false
		}
		i = jsonscan.SkipSpace(line, i+1)
		switch {
		case jsonscan.Equal(key, "method"):
			vEnd, err := jsonscan.SkipString(line, i)
			if err != nil {
				return nil, false
			}
			return line[i:vEnd], true
		case n == 0 && jsonscan.Equal(key, "id") && i < len(line) && line[i] != '{' && line[i] != '[':
			vEnd, err := jsonscan.SkipValue(line, i)
			if err != nil {
				return nil, false
			}
			i = jsonscan.SkipSpace(line, vEnd)
			if i >= len(line) || line[i] != ',' {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return nil, false
}

// request returns line read as a request or notification by the daemon's
// decoder, whose rules (repeated names, escapes) are the app-server's; nil
// when it is not one.
func request(line []byte) *jsonrpc.Request {
	msg, _, err := jsonrpc.Decode(line)
	if err != nil {
		return nil
	}
	req, _ := msg.(*jsonrpc.Request)
	return req
}

// enough reports whether b, the start of a line, says enough about it to
// pass the rest on unread: its method is settled, and none of m's. The
// bridge reads a line it acts on whole (up to MaxInspect).
func (m *matcher) enough(b []byte, whole bool) bool {
	method, settled := m.method(b, whole)
	return settled && method == ""
}
