package server

import "github.com/attestd/attestd/bridge/protocol"

// scanGenerate recognises the hot line, an attestation/generate call as
// clients write it, without building a map:
//
//	{"id":7,"method":"attestation/generate"}
//
// with members in any order, JSON whitespace between tokens, and optional
// "jsonrpc":"2.0" and "params":{} (or null). It returns the id's JSON text
// and true only for a line that jsonrpc.Decode reads as that same call,
// with that id text and params the method accepts; anything else (another method, an unknown or
// repeated member, an escape in a string, a non-empty params object)
// returns false, and the caller decodes the line in full. The fuzz test
// FuzzScanGenerate holds it to that.
func scanGenerate(line []byte) ([]byte, bool) {
	s := hotScanner{b: line}
	s.space()
	if !s.byte('{') {
		return nil, false
	}
	var id []byte
	var seen uint8 // bits: 1 id, 2 method, 4 jsonrpc, 8 params
	for first := true; ; first = false {
		s.space()
		if s.byte('}') {
			if first || seen&3 != 3 {
				return nil, false
			}
			break
		}
		if !first && (!s.byte(',') || !s.spaceThen()) {
			return nil, false
		}
		key, ok := s.plainString()
		if !ok {
			return nil, false
		}
		s.space()
		if !s.byte(':') {
			return nil, false
		}
		s.space()
		var bit uint8
		switch string(key) {
		case "id":
			bit = 1
			if id, ok = s.id(); !ok {
				return nil, false
			}
		case "method":
			bit = 2
			if v, ok := s.plainString(); !ok || string(v) != protocol.MethodGenerate {
				return nil, false
			}
		case "jsonrpc":
			bit = 4
			if v, ok := s.plainString(); !ok || string(v) != "2.0" {
				return nil, false
			}
		case "params":
			bit = 8
			if !s.literal("null") {
				if !s.byte('{') {
					return nil, false
				}
				s.space()
				if !s.byte('}') {
					return nil, false
				}
			}
		default:
			return nil, false
		}
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
	}
	s.space()
	if s.i != len(s.b) {
		return nil, false
	}
	return id, true
}

// hotScanner walks one line for scanGenerate.
type hotScanner struct {
	b []byte
	i int
}

func (s *hotScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// spaceThen skips whitespace and reports whether anything follows.
func (s *hotScanner) spaceThen() bool {
	s.space()
	return s.i < len(s.b)
}

func (s *hotScanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *hotScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// plainString reads a string of printable ASCII without escapes and
// returns its contents.
func (s *hotScanner) plainString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// id reads an integer or a plain string and returns its JSON text.
func (s *hotScanner) id() ([]byte, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '"' {
		if _, ok := s.plainString(); !ok {
			return nil, false
		}
		return s.b[start:s.i], true
	}
	s.byte('-')
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 1 && s.b[digits] == '0' {
		return nil, false
	}
	return s.b[start:s.i], true
}
