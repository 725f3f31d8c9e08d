package header

import (
	"errors"
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
