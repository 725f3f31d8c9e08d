package stdio

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/attestd/attestd/bridge/internal/jsonscan"
	"github.com/attestd/attestd/bridge/jsonrpc"
)

// Methods the bridge acts on.
const (
	methodInitialize    = "initialize"
	methodAttest        = "attestation/generate"
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
// only one that may hold one is scanned up to its method member.
func (m *matcher) method(b []byte, whole bool) (method string, settled bool) {
	method, settled = leadingMethod(b)
	if !settled {
		if whole && !m.mayMatch(b) {
			return "", true
		}
		method, settled = methodOf(b, whole)
	}
	if !slices.Contains(m.names, method) {
		method = ""
	}
	return method, settled
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

// methodOf returns the top-level method member of the JSON object that
// starts b, reading only as far as that member. settled is false when b
// ends first and is not the whole line; a line that is not an object, or
// whose method is not a string, has the method "".
func methodOf(b []byte, whole bool) (method string, settled bool) {
	raw, settled := lookup(b, whole, "method")
	if raw == nil {
		return "", settled
	}
	method, err := jsonscan.String(raw)
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

// leadingMethod returns the method of an object whose first member is
// "method", or whose first is "id" and second "method", the shapes in
// which codex app-server and most clients write requests. ok is false for
// any other line, which then needs a closer look.
func leadingMethod(line []byte) (method string, ok bool) {
	i := jsonscan.SkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return "", false
	}
	for n := 0; n < 2; n++ {
		i = jsonscan.SkipSpace(line, i+1)
		kEnd, err := jsonscan.SkipString(line, i)
		if err != nil {
			return "", false
		}
		key := line[i:kEnd]
		i = jsonscan.SkipSpace(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return "", false
		}
		i = jsonscan.SkipSpace(line, i+1)
		switch {
		case jsonscan.Equal(key, "method"):
			vEnd, err := jsonscan.SkipString(line, i)
			if err != nil {
				return "", false
			}
			method, err := jsonscan.String(line[i:vEnd])
			return method, err == nil
		case n == 0 && jsonscan.Equal(key, "id") && i < len(line) && line[i] != '{' && line[i] != '[':
			vEnd, err := jsonscan.SkipValue(line, i)
			if err != nil {
				return "", false
			}
			i = jsonscan.SkipSpace(line, vEnd)
			if i >= len(line) || line[i] != ',' {
				return "", false
			}
		default:
			return "", false
		}
	}
	return "", false
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
