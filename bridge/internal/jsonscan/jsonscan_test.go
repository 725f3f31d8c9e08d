package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

func TestEqualAndString(t *testing.T) {
	cases := []struct {
		tok  string
		want string
		ok   bool
	}{
		{`"2.0"`, "2.0", true},
		{`"2\u002e0"`, "2.0", true},
		{`"\u0032\u002E\u0030"`, "2.0", true},
		{`"m\u0065thod"`, "method", true},
		{`"attestation\/generate"`, "attestation/generate", true},
		{`"\u00e9"`, "é", true},
		{`"é"`, "é", true},
		{`""`, "", true},
		{`"a\"b"`, `a"b`, true},
		{`"\x"`, "", false},
		{`"` + "\xff" + `"`, "", false},
		{`"a` + "\t" + `b"`, "", false},
		{`2.0`, "", false},
		{`"`, "", false},
	}
	for _, c := range cases {
		got, err := String([]byte(c.tok))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("String(%s) = %q, %v; want %q, ok %v", c.tok, got, err, c.want, c.ok)
		}
		if c.ok && !Equal([]byte(c.tok), c.want) {
			t.Errorf("Equal(%s, %q) = false", c.tok, c.want)
		}
	}
	for _, c := range []struct{ tok, s string }{
		{`"2.0"`, "2.0 "},
		{`"2\u002e1"`, "2.0"},
		{`"Method"`, "method"},
		{`2`, "2"},
		{`"\x"`, "x"},
	} {
		if Equal([]byte(c.tok), c.s) {
			t.Errorf("Equal(%s, %q) = true", c.tok, c.s)
		}
	}
}

func TestFind(t *testing.T) {
	cases := []struct {
		doc, name string
		at        int // -1: not there
		err       error
	}{
		{`{"method":"x"}`, "method", 10, nil},
		{`{"id":1,"m\u0065thod":"x"}`, "method", 22, nil},
		{`{"params":{"method":"y"},"method":"x"}`, "method", 34, nil},
		{`{"a":1,"a":2}`, "a", 5, nil}, // the first
		{`{"id":1}`, "method", -1, nil},
		{`{}`, "method", -1, nil},
		{`{"id":1,"params":{"big":"…`, "method", 0, ErrShort},
		{`{"id":1,"meth`, "method", 0, ErrShort},
		{`{"id":12`, "method", 0, ErrShort},
		{`{"method":`, "method", 0, ErrShort},
		{`{"id" 1}`, "method", 0, ErrSyntax},
		{`[1]`, "method", 0, ErrSyntax},
	}
	for _, c := range cases {
		at, err := Find([]byte(c.doc), 0, c.name)
		if !errors.Is(err, c.err) || (err == nil && at != c.at) {
			t.Errorf("Find(%s, %q) = %d, %v; want %d, %v", c.doc, c.name, at, err, c.at, c.err)
		}
	}
}

func TestObjectStartOfADocument(t *testing.T) {
	// A number cut short is not passed on: it may go on.
	var keys []string
	_, err := Object([]byte(`{"a":"x","b":12`), 0, func(b []byte, m Member) bool {
		k, _ := String(b[m.KeyStart:m.KeyEnd])
		keys = append(keys, k)
		return true
	})
	if !errors.Is(err, ErrShort) || len(keys) != 1 || keys[0] != "a" {
		t.Errorf("Object = %v, keys %q; want ErrShort after a", err, keys)
	}
	// A string, object or array that has ended is.
	keys = nil
	_, err = Object([]byte(`{"a":"x","b":{}`), 0, func(b []byte, m Member) bool {
		k, _ := String(b[m.KeyStart:m.KeyEnd])
		keys = append(keys, k)
		return true
	})
	if !errors.Is(err, ErrShort) || len(keys) != 2 {
		t.Errorf("Object = %v, keys %q; want ErrShort after a and b", err, keys)
	}
}

// FuzzObject checks the scanner against encoding/json on valid objects:
// the same members in the same order, keys decoded alike, values the same
// bytes; Find finds the first member so named; and no start of the
// document makes either claim more than the whole does.
func FuzzObject(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"initialize","params":{"a":[1,"]",{"b":"\"}"}]}}`,
		`{"m\u0065thod":"x","method":"y","\u00e9":null}`,
		` { "a" : -1.5e3 , "b" : true , "c" : "\\" } `,
		`{}`,
		`{"a":{"a":{"a":"a"}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		b := []byte(doc)
		want, ok := reference(b)
		if !ok {
			// Not a valid object: the scanner must only not panic.
			Object(b, SkipSpace(b, 0), func([]byte, Member) bool { return true })
			Find(b, SkipSpace(b, 0), "method")
			return
		}
		var got []refMember
		closing, err := Object(b, SkipSpace(b, 0), func(b []byte, m Member) bool {
			k, err := String(b[m.KeyStart:m.KeyEnd])
			if err != nil {
				t.Fatalf("key %s: %v", b[m.KeyStart:m.KeyEnd], err)
			}
			got = append(got, refMember{k, string(b[m.Start:m.End])})
			return true
		})
		if err != nil || closing < 0 || SkipSpace(b, closing+1) != len(b) {
			t.Fatalf("Object(%q) = %d, %v", doc, closing, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Object(%q): %d members, encoding/json %d", doc, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Object(%q) member %d = %+v, encoding/json %+v", doc, i, got[i], want[i])
			}
		}
		for _, m := range want {
			at, err := Find(b, SkipSpace(b, 0), m.key)
			if err != nil || at < 0 {
				t.Fatalf("Find(%q, %q) = %d, %v", doc, m.key, at, err)
			}
			end, err := SkipValue(b, at)
			if err != nil {
				t.Fatal(err)
			}
			first := refMember{}
			for _, w := range want {
				if w.key == m.key {
					first = w
					break
				}
			}
			if string(b[at:end]) != first.value {
				t.Fatalf("Find(%q, %q) = %s, want the first, %s", doc, m.key, b[at:end], first.value)
			}
			// A start of the document finds the same member or asks for more.
			for n := range min(len(b), 512) {
				if at2, err := Find(b[:n], SkipSpace(b[:n], 0), m.key); err == nil && at2 != at {
					t.Fatalf("Find(%q, %q) = %d, whole document %d", b[:n], m.key, at2, at)
				} else if err != nil && !errors.Is(err, ErrShort) {
					t.Fatalf("Find(%q, %q): %v on a start of a valid document", b[:n], m.key, err)
				}
			}
		}
	})
}

type refMember struct{ key, value string }

// reference returns the members of the JSON object in b through
// encoding/json, values as their exact bytes; ok is false when b is not a
// valid object, or has a string with invalid UTF-8 or a lone surrogate
// escape, which encoding/json replaces silently.
func reference(b []byte) ([]refMember, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []refMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		out = append(out, refMember{tok.(string), string(raw)})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	// Keys whose raw bytes do not round-trip are left out of the check.
	for _, m := range out {
		if bytes.ContainsRune([]byte(m.key), '\uFFFD') {
			return nil, false
		}
	}
	return out, true
}
