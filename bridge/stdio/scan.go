package stdio

import (
	"bytes"
	"encoding/json"
	"errors"
)

// A small JSON structure scanner. It finds the members of an object and
// the extent of values without decoding or fully validating them, at
// memchr speed through long strings, so that a line of tens of MiB costs
// milliseconds. encoding/json is used only for the few short strings whose
// content matters (keys and the method).

var errSyntax = errors.New("malformed JSON")

func skipSpace(b []byte, i int) int {
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

// skipString returns the offset just past the string that starts at b[i],
// which must be '"'.
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errSyntax
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

// skipValue returns the offset just past the value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				j, err := skipString(b, i)
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
		return 0, errSyntax
	}
	// A number or a literal: up to the next delimiter.
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if i == start {
				return 0, errSyntax
			}
			return i, nil
		case '"', '{', '[', ':':
			return 0, errSyntax
		}
		i++
	}
	if i == start {
		return 0, errSyntax
	}
	return i, nil
}

// member is one member of a JSON object: its decoded key and the byte range
// of its value.
type member struct {
	key        string
	start, end int
}

// scanObject calls fn for each member of the object that starts at b[i],
// until fn returns false, and returns the offset of its closing brace (or
// -1 when stopped early).
func scanObject(b []byte, i int, fn func(m member) bool) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key, err := decodeString(b[i:kEnd])
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, errSyntax
		}
		i = skipSpace(b, i+1)
		vEnd, err := skipValue(b, i)
		if err != nil {
			return 0, err
		}
		if !fn(member{key: key, start: i, end: vEnd}) {
			return -1, nil
		}
		i = skipSpace(b, vEnd)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i, nil
		default:
			return 0, errSyntax
		}
	}
}

// decodeString decodes a JSON string token, taking the fast way when it
// has no escapes.
func decodeString(tok []byte) (string, error) {
	if bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}
