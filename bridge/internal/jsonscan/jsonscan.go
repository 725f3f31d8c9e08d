// Package jsonscan finds the members of JSON objects and the extent of
// values without decoding them, at memchr speed through long strings, so
// that the daemon and the bridge can look at a line of tens of MiB in
// milliseconds, or at only its start. It does not validate what it skips:
// callers that need a well-formed document check it with json.Valid.
//
// Strings are compared decoded, never as raw bytes: a key written
// "m\u0065thod" is the key "method".
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

var (
	// ErrSyntax reports input that cannot be JSON.
	ErrSyntax = errors.New("malformed JSON")
	// ErrShort reports input that ends before the value does: in a whole
	// document that is malformed too, but in the start of one it means
	// that more bytes are needed.
	ErrShort = errors.New("JSON ends too soon")
)

// SkipSpace returns the offset of the first byte at or after i that is
// not JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// SkipString returns the offset just past the string that starts at b[i],
// which must be '"'.
func SkipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, ErrSyntax
	}
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, ErrShort
		}
		q := i + j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		i = q + 1
		if n%2 == 0 {
			return i, nil
		}
	}
}

// SkipValue returns the offset just past the value that starts at b[i]. A
// number or literal that reaches the end of b is taken to end there.
func SkipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, ErrShort
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				j, err := SkipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, ErrShort
	}
	// A number or a literal: up to the next delimiter.
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if i == start {
				return 0, ErrSyntax
			}
			return i, nil
		case '"', '{', '[', ':':
			return 0, ErrSyntax
		}
		i++
	}
	return i, nil
}

// Member is one member of a JSON object: its key token and the byte range
// of its value.
type Member struct {
	KeyStart, KeyEnd int // the key token, quotes included
	Start, End       int // the value
}

// Object calls fn for each member of the object that starts at b[i], in
// order, until fn returns false, and returns the offset of its closing
// brace, or -1 when fn stopped it. A repeated key is passed to fn each
// time; what it means is the caller's rule. In the start of a document,
// fn gets a member only once its value is known to have ended.
func Object(b []byte, i int, fn func(b []byte, m Member) bool) (int, error) {
	return walk(b, i, nil, fn)
}

// Find returns the offset of the value of the first member named name in
// the object that starts at b[i], without reading that value, so that it
// works on the start of a document too: it returns ErrShort when b ends
// before the member is found, and -1 when the object ends without it.
func Find(b []byte, i int, name string) (int, error) {
	at := -1
	_, err := walk(b, i, func(m Member) bool {
		if Equal(b[m.KeyStart:m.KeyEnd], name) {
			at = m.Start
			return false
		}
		return true
	}, nil)
	if err != nil || at >= 0 {
		return at, err
	}
	return -1, nil
}

// walk reads the members of the object that starts at b[i]. For each it
// calls key, when set, once the value's start is known (End unset), and
// then, unless key said stop, skips the value and calls value, when set,
// with the whole member. Either stops the walk by returning false, and
// walk then returns -1; else it returns the offset of the closing brace.
func walk(b []byte, i int, key func(m Member) bool, value func(b []byte, m Member) bool) (int, error) {
	if i >= len(b) {
		return 0, ErrShort
	}
	if b[i] != '{' {
		return 0, ErrSyntax
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i, nil
	}
	for {
		if i >= len(b) {
			return 0, ErrShort
		}
		kEnd, err := SkipString(b, i)
		if err != nil {
			return 0, err
		}
		m := Member{KeyStart: i, KeyEnd: kEnd}
		i = SkipSpace(b, kEnd)
		if i >= len(b) {
			return 0, ErrShort
		}
		if b[i] != ':' {
			return 0, ErrSyntax
		}
		i = SkipSpace(b, i+1)
		if i >= len(b) {
			return 0, ErrShort
		}
		m.Start = i
		if key != nil && !key(m) {
			return -1, nil
		}
		if m.End, err = SkipValue(b, i); err != nil {
			return 0, err
		}
		i = SkipSpace(b, m.End)
		if i >= len(b) && b[m.Start] != '"' && b[m.Start] != '{' && b[m.Start] != '[' {
			// A number or literal cut short may go on: value gets it
			// only once it is known to have ended.
			return 0, ErrShort
		}
		if value != nil && !value(b, m) {
			return -1, nil
		}
		if i >= len(b) {
			return 0, ErrShort
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			return i, nil
		default:
			return 0, ErrSyntax
		}
	}
}

// Key reports whether the key of m, decoded, is name.
func (m Member) Key(b []byte, name string) bool { return Equal(b[m.KeyStart:m.KeyEnd], name) }

// Equal reports whether the JSON string token tok (quotes included)
// decodes to s. It allocates only when tok has escapes.
func Equal(tok []byte, s string) bool {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return false
	}
	if inner := tok[1 : len(tok)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == s
	}
	got, err := String(tok)
	return err == nil && got == s
}

// String decodes the JSON string token tok (quotes included), taking the
// fast way when it has no escapes. Invalid UTF-8 is an error rather than
// replaced, so that no two different tokens decode alike by accident.
func String(tok []byte) (string, error) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return "", ErrSyntax
	}
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		for _, c := range inner {
			if c < 0x20 || c == '"' {
				return "", ErrSyntax
			}
		}
		if !utf8.Valid(inner) {
			return "", ErrSyntax
		}
		return string(inner), nil
	}
	if !utf8.Valid(inner) {
		return "", ErrSyntax
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", ErrSyntax
	}
	return s, nil
}
