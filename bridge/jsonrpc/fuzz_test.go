package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"attestation/generate","params":{}}`,
		`{"jsonrpc":"2.0","id":"a\u00e9\"","method":"initialize","params":{"clientInfo":{"name":"x"}}}`,
		`{"id":123456789012345678901234567890,"method":"m"}`,
		`{"id":` + htmlID + `,"method":"m"}`,
		`{"method":"initialized"}`,
		`{"id":1,"result":{"token":"v1.x"}}`,
		`{"id":null,"error":{"code":-32700,"message":"parse error"}}`,
		`{"id":1.0,"method":"m"}`,
		`[{"id":1,"method":"m"}]`,
		`null`,
		``,
		`{"id":1,"method":"attestation/generate","method":"x"}`,
		`{"jsonrpc":"2\u002e0","id":1,"m\u0065thod":"m"}`,
		`{"id":1,"error":{"code":1,"CODE":2,"message":"m"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		msg, id, err := Decode(line)
		members, isObject := topLevelMembers(line)
		repeated := ""
		for _, name := range envelopeNames {
			if len(members[name]) > 1 {
				repeated = name
			}
		}
		if err == nil && repeated != "" {
			t.Fatalf("Decode(%q) accepted a line naming %q twice", line, repeated)
		}
		if err != nil && isObject && repeated != "" && !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("Decode(%q) = %v; a repeated %q makes an invalid request", line, err, repeated)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Code != CodeParse && e.Code != CodeInvalidRequest) {
				t.Fatalf("Decode(%q) error %v is not a parse error or an invalid request", line, err)
			}
			if msg != nil {
				t.Fatalf("Decode(%q) = %+v with error %v", line, msg, err)
			}
			if !id.IsZero() && !bytes.Contains(line, []byte(id.String())) {
				t.Fatalf("Decode(%q) error names id %s, not in the line", line, id)
			}
			return
		}
		switch m := msg.(type) {
		case *Request:
			if m.ID != id || m.Method == "" || m.IsCall == m.ID.IsZero() {
				t.Fatalf("Decode(%q) = %+v, id %s", line, m, id)
			}
			// The method is the member's decoded string, by exact name.
			var want string
			if json.Unmarshal(members["method"][0], &want) != nil || want != m.Method {
				t.Fatalf("Decode(%q): method %q, encoding/json reads %q", line, m.Method, want)
			}
			if !m.IsCall {
				return
			}
			// The id is echoed byte for byte: it is in the line as sent,
			// and in the answer as written.
			if !bytes.Contains(line, []byte(id.String())) {
				t.Fatalf("Decode(%q): id %s is not in the line", line, id)
			}
			answer, err := EncodeResult(id, "ok")
			if err != nil {
				t.Fatalf("EncodeResult(%s): %v", id, err)
			}
			if want := `{"id":` + id.String() + `,"result":"ok"}` + "\n"; string(answer) != want {
				t.Fatalf("EncodeResult = %s, want %s", answer, want)
			}
			back, backID, err := Decode(answer)
			if err != nil || backID != id || back.(*Response).ID != id {
				t.Fatalf("Decode(%s) = %+v, %s, %v; want id %s", answer, back, backID, err, id)
			}
			if e := EncodeError(id, ErrInternal); !bytes.HasPrefix(e, []byte(`{"id":`+id.String()+`,`)) {
				t.Fatalf("EncodeError = %s, does not start with id %s", e, id)
			}
		case *Response:
			if m.ID != id || (m.Result == nil) == (m.Error == nil) {
				t.Fatalf("Decode(%q) = %+v, id %s", line, m, id)
			}
		default:
			t.Fatalf("Decode(%q) = %T", line, msg)
		}
	})
}

// splitLines is the reference for LineReader: the lines of in, each
// without its \n or \r\n, and whether each fits in max.
func splitLines(in []byte, max int) (lines [][]byte, fits []bool) {
	for len(in) > 0 {
		line := in
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			line, in = in[:i], in[i+1:]
			line = bytes.TrimSuffix(line, []byte("\r"))
		} else {
			in = nil
		}
		lines = append(lines, line)
		fits = append(fits, len(line) <= max)
	}
	return lines, fits
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), uint16(3), false)
	f.Add([]byte("abc\r\nabcd\n"), uint16(3), true)
	f.Add([]byte("\n\r\n\r\r\n"), uint16(0), false)
	// A limit over 15 sizes the buffer at max+1, so longer lines span
	// several reads of it.
	f.Add([]byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\ny"), uint16(40), false)
	f.Add([]byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"), uint16(40), true)
	f.Fuzz(func(t *testing.T, in []byte, max uint16, bytewise bool) {
		var r io.Reader = bytes.NewReader(in)
		if bytewise {
			r = iotest.OneByteReader(r)
		}
		lr := NewLineReader(r, int(max))
		lines, fits := splitLines(in, int(max))
		for i, want := range lines {
			got, err := lr.ReadLine()
			if !fits[i] {
				if !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("line %d (%d bytes, max %d): got %q, %v; want ErrLineTooLong", i, len(want), max, got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("line %d: got %q, %v; want %q", i, got, err, want)
			}
		}
		if got, err := lr.ReadLine(); err != io.EOF {
			t.Fatalf("after %d lines: got %q, %v; want io.EOF", len(lines), got, err)
		}
	})
}

// topLevelMembers is the reference for the names Decode reads: the raw
// values of each top-level member of the JSON object in line, by decoded
// name, in order, through encoding/json's tokenizer. ok is false when line
// is not a single JSON object.
func topLevelMembers(line []byte) (members map[string][]json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	members = map[string][]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		name := tok.(string)
		members[name] = append(members[name], raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return members, true
}
