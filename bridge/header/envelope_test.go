package header

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestStatusString(t *testing.T) {
	tests := []struct {
		s     Status
		name  string
		known bool
	}{
		{StatusOK, "ok", true},
		{StatusTimeout, "timeout", true},
		{StatusClientError, "client_error", true},
		{StatusCanceled, "canceled", true},
		{StatusMalformedResponse, "malformed_response", true},
		{5, "unknown(5)", false},
		{-1, "unknown(-1)", false},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.name {
			t.Errorf("Status(%d).String() = %q, want %q", int(tt.s), got, tt.name)
		}
		if got := tt.s.Known(); got != tt.known {
			t.Errorf("Status(%d).Known() = %v, want %v", int(tt.s), got, tt.known)
		}
	}
}

func TestParseEnvelope(t *testing.T) {
	const tok = "v1.haFro2RldqF0xAN0b2uhZwChYqChbaA"
	tests := []struct {
		name string
		in   string
		want Envelope
		err  error
	}{
		{name: "ok", in: `{"v":1,"s":0,"t":"` + tok + `"}`, want: Envelope{1, StatusOK, tok}},
		{name: "timeout", in: `{"v":1,"s":1}`, want: Envelope{1, StatusTimeout, ""}},
		{name: "client error", in: `{"v":1,"s":2}`, want: Envelope{1, StatusClientError, ""}},
		{name: "canceled", in: `{"v":1,"s":3}`, want: Envelope{1, StatusCanceled, ""}},
		{name: "malformed response", in: `{"v":1,"s":4}`, want: Envelope{1, StatusMalformedResponse, ""}},
		{name: "member order and space", in: " {\n\"t\" : \"x\", \"s\":0 ,\"v\": 1}\t", want: Envelope{1, StatusOK, "x"}},
		{name: "unknown members ignored", in: `{"v":1,"s":1,"x":{"t":"y"},"y":[1]}`, want: Envelope{1, StatusTimeout, ""}},
		{name: "t null is no t", in: `{"v":1,"s":3,"t":null}`, want: Envelope{1, StatusCanceled, ""}},
		{name: "t not checked as a header", in: `{"v":1,"s":0,"t":"anything"}`, want: Envelope{1, StatusOK, "anything"}},

		{name: "unknown status", in: `{"v":1,"s":5}`, err: ErrEnvelopeStatus},
		{name: "negative status", in: `{"v":1,"s":-1}`, err: ErrEnvelopeStatus},
		{name: "missing status", in: `{"v":1,"t":"x"}`, err: ErrEnvelopeStatus},
		{name: "null status", in: `{"v":1,"s":null}`, err: ErrEnvelopeStatus},

		{name: "missing v", in: `{"s":0,"t":"x"}`, err: ErrEnvelopeVersion},
		{name: "v 0", in: `{"v":0,"s":0,"t":"x"}`, err: ErrEnvelopeVersion},
		{name: "v 2", in: `{"v":2,"s":0,"t":"x"}`, err: ErrEnvelopeVersion},
		{name: "upper-case V", in: `{"V":1,"s":0,"t":"x"}`, err: ErrEnvelopeVersion},
		{name: "upper-case S", in: `{"v":1,"S":1}`, err: ErrEnvelopeStatus},

		{name: "ok without t", in: `{"v":1,"s":0}`, err: ErrEnvelopeToken},
		{name: "ok with empty t", in: `{"v":1,"s":0,"t":""}`, err: ErrEnvelopeToken},
		{name: "ok with upper-case T", in: `{"v":1,"s":0,"T":"x"}`, err: ErrEnvelopeToken},
		{name: "timeout with t", in: `{"v":1,"s":1,"t":"x"}`, err: ErrEnvelopeToken},
		{name: "canceled with empty t", in: `{"v":1,"s":3,"t":""}`, err: ErrEnvelopeToken},

		{name: "v as string", in: `{"v":"1","s":0,"t":"x"}`, err: ErrEnvelopeJSON},
		{name: "v as float", in: `{"v":1.0,"s":0,"t":"x"}`, err: ErrEnvelopeJSON},
		{name: "s as string", in: `{"v":1,"s":"0","t":"x"}`, err: ErrEnvelopeJSON},
		{name: "t as number", in: `{"v":1,"s":0,"t":1}`, err: ErrEnvelopeJSON},
		{name: "t as object", in: `{"v":1,"s":0,"t":{}}`, err: ErrEnvelopeJSON},
		{name: "empty", in: ``, err: ErrEnvelopeJSON},
		{name: "malformed", in: `{"v":1,"s":0,"t":"x"`, err: ErrEnvelopeJSON},
		{name: "single quotes", in: `{'v':1,'s':1}`, err: ErrEnvelopeJSON},
		{name: "trailing comma", in: `{"v":1,"s":1,}`, err: ErrEnvelopeJSON},
		{name: "trailing data", in: `{"v":1,"s":1} x`, err: ErrEnvelopeJSON},
		{name: "two objects", in: `{"v":1,"s":1}{"v":1,"s":1}`, err: ErrEnvelopeJSON},
		{name: "array", in: `[{"v":1,"s":1}]`, err: ErrEnvelopeJSON},
		{name: "string", in: `"{\"v\":1,\"s\":1}"`, err: ErrEnvelopeJSON},
		{name: "null", in: `null`, err: ErrEnvelopeJSON},
		{name: "number", in: `1`, err: ErrEnvelopeJSON},
		{name: "bare header value", in: tok, err: ErrEnvelopeJSON},
		{name: "repeated t", in: `{"v":1,"s":0,"t":"a","t":"b"}`, err: ErrEnvelopeJSON},
		{name: "repeated s", in: `{"v":1,"s":0,"s":1,"t":"a"}`, err: ErrEnvelopeJSON},
		{name: "repeated unknown", in: `{"v":1,"s":1,"x":0,"x":0}`, err: ErrEnvelopeJSON},
		{name: "too long", in: `{"v":1,"s":0,"t":"` + strings.Repeat("A", MaxEnvelopeLen) + `"}`, err: ErrEnvelopeJSON},
		{name: "repeated t, escaped", in: `{"v":1,"s":0,"t":"a","\u0074":"b"}`, err: ErrEnvelopeJSON},
		{name: "repeated unknown, escaped", in: `{"v":1,"s":1,"\u00e9":0,"é":0}`, err: ErrEnvelopeJSON},
		{name: "repeated unknown, surrogate pair", in: `{"v":1,"s":1,"\ud83d\ude00":0,"😀":0}`, err: ErrEnvelopeJSON},
		{name: "nested too deep", in: `{"v":1,"s":1,"x":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`, err: ErrEnvelopeJSON},

		{name: "escaped names", in: `{"\u0076":1,"\u0073":0,"\u0074":"x"}`, want: Envelope{1, StatusOK, "x"}},
		{name: "escaped t", in: `{"v":1,"s":0,"t":"v1.\u0041"}`, want: Envelope{1, StatusOK, "v1.A"}},
		{name: "unpaired surrogates are one name", in: `{"v":1,"s":1,"\ud800":0,"\udc00":0}`, err: ErrEnvelopeJSON},
		{name: "nested 32 deep", in: `{"v":1,"s":1,"x":` + strings.Repeat(`[{"a":`, 16) + "0" + strings.Repeat("}]", 16) + `}`, want: Envelope{1, StatusTimeout, ""}},
		{name: "brackets in strings", in: `{"v":1,"s":1,"x":"[[[{{{","y":["]}"]}`, want: Envelope{1, StatusTimeout, ""}},
	}
	sentinels := []error{ErrEnvelopeJSON, ErrEnvelopeVersion, ErrEnvelopeStatus, ErrEnvelopeToken}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvelope(tt.in)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("ParseEnvelope(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Errorf("ParseEnvelope(%q) = %+v, want %+v", tt.in, got, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseEnvelope(%q) = %+v, %v; want %v", tt.in, got, err, tt.err)
			}
			if got != (Envelope{}) {
				t.Errorf("ParseEnvelope returned %+v with its error, want the zero Envelope", got)
			}
			for _, other := range sentinels {
				if other != tt.err && errors.Is(err, other) {
					t.Errorf("error %q also matches %v", err, other)
				}
			}
		})
	}
}

// envelopeAllocBound is the most ParseEnvelope may allocate for an input
// of n bytes: a copy of it (to check its syntax) and a hash per member,
// each at least five bytes ("":0,), plus a constant for an error's
// message.
func envelopeAllocBound(n int) uint64 { return 3*uint64(n) + 4096 }

// TestParseEnvelopeAllocationBounded: whatever an envelope holds, parsing
// it costs at most a small multiple of its length. Names are hashed, not
// kept, to find repeats; unknown values are skipped, not decoded; and
// nesting is bounded before encoding/json's scanner, which keeps a stack
// entry per level, sees the input (4,000 "[" used to cost 143 KiB).
func TestParseEnvelopeAllocationBounded(t *testing.T) {
	tok := Prefix + strings.Repeat("A", MaxValueLen-len(Prefix))
	for _, tt := range []struct{ name, in string }{
		{"longest valid", `{"v":1,"s":0,"t":"` + tok + `"}`},
		{"escaped token", `{"v":1,"s":0,"t":"` + strings.Repeat(`\u0041`, 1400) + `"}`},
		{"many members", "{" + strings.Repeat(`"":0,`, 1680) + `"v":1,"s":1}`},
		{"many escaped names", "{" + strings.Repeat(`"\u0061":0,`, 760) + `"v":1,"s":1}`},
		{"distinct names", "{" + strings.Repeat(`"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,`, 1) + `"v":1,"s":1}`},
		{"deep arrays", `{"x":` + strings.Repeat("[", 4000) + `}`},
		{"deep and long", `{"x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `,"y":"` + strings.Repeat("z", 8000) + `","v":1,"s":1}`},
		{"unknown values", `{"v":1,"s":1,"x":[` + strings.Repeat(`{"a":[1,2.5e3,true,null,"s"]},`, 270) + `0]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.in) > MaxEnvelopeLen {
				t.Fatalf("input of %d bytes is longer than MaxEnvelopeLen", len(tt.in))
			}
			n := minAllocBytes(func() { ParseEnvelope(tt.in) })
			if n > envelopeAllocBound(len(tt.in)) {
				t.Errorf("ParseEnvelope allocated %d bytes for %d bytes of input, more than %d", n, len(tt.in), envelopeAllocBound(len(tt.in)))
			}
		})
	}
}

// TestParseEnvelopeLongest checks that an envelope around the longest
// header value is within MaxEnvelopeLen.
func TestParseEnvelopeLongest(t *testing.T) {
	tok := Prefix + strings.Repeat("A", MaxValueLen-len(Prefix))
	in := `{ "v": 1, "s": 0, "t": "` + tok + `" }`
	e, err := ParseEnvelope(in)
	if err != nil {
		t.Fatalf("ParseEnvelope(%d bytes): %v", len(in), err)
	}
	if e.Token != tok {
		t.Errorf("Token has %d bytes, want %d", len(e.Token), len(tok))
	}
}

func TestIsEnvelope(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"v":1,"s":1}`, true},
		{" \t\r\n{", true},
		{"{", true},
		{"v1.abc", false},
		{"", false},
		{"  ", false},
		{`["{"]`, false},
		{"\u00a0{", false},
	}
	for _, tt := range tests {
		if got := IsEnvelope(tt.in); got != tt.want {
			t.Errorf("IsEnvelope(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// referenceParseEnvelope is the envelope parser as it was before it
// bounded its allocations: encoding/json's Decoder walks the object and
// keeps every member in a map. FuzzParseEnvelope checks that the bounded
// parser gives the same answers.
func referenceParseEnvelope(s string) (Envelope, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	members := map[string]json.RawMessage{}
	bad := func(err error) (Envelope, error) { return Envelope{}, fmt.Errorf("%w: %v", ErrEnvelopeJSON, err) }
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad(err)
		}
		if _, dup := members[tok.(string)]; dup {
			return bad(errors.New("repeated"))
		}
		members[tok.(string)] = raw
	}
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad(errors.New("data after the object"))
	}
	var (
		v, st *int
		tk    *string
	)
	for name, dst := range map[string]any{"v": &v, "s": &st, "t": &tk} {
		if raw, ok := members[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return bad(err)
			}
		}
	}
	switch {
	case v == nil || *v != 1:
		return Envelope{}, ErrEnvelopeVersion
	case st == nil || !Status(*st).Known():
		return Envelope{}, ErrEnvelopeStatus
	}
	e := Envelope{Version: 1, Status: Status(*st)}
	if tk != nil {
		e.Token = *tk
	}
	if (e.Status == StatusOK) != (e.Token != "") || (e.Status != StatusOK && tk != nil) {
		return Envelope{}, ErrEnvelopeToken
	}
	return e, nil
}

// sameSentinel reports whether a and b match the same envelope error.
func sameSentinel(a, b error) bool {
	for _, e := range []error{ErrEnvelopeJSON, ErrEnvelopeVersion, ErrEnvelopeStatus, ErrEnvelopeToken} {
		if errors.Is(a, e) != errors.Is(b, e) {
			return false
		}
	}
	return true
}
