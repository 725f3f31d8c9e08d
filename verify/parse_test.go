package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

func mustEncode(t testing.TB, v header.Value) string {
	t.Helper()
	s, err := header.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func envelope(value string) string { return `{"v":1,"s":0,"t":"` + value + `"}` }

func TestParse(t *testing.T) {
	gen := time.UnixMilli(1764000000123).UTC()
	dc := mustEncode(t, header.Value{Kind: header.KindDeviceCheck, Token: []byte{1, 2, 3}, GeneratedAt: gen, BundleID: "com.example.attestd", TeamID: "TEAMID1234"})
	dev := mustEncode(t, header.Value{Kind: header.KindDev, Token: bytes.Repeat([]byte{7}, 32)})

	tests := []struct {
		name    string
		in      string
		want    *Attestation // nil: no attestation returned
		wantErr []error
	}{
		{"bare dc", dc, &Attestation{Form: FormValue, Kind: "dc", Token: []byte{1, 2, 3}, GeneratedAt: gen, BundleID: "com.example.attestd", TeamID: "TEAMID1234"}, nil},
		{"bare with white space", " \t" + dc + "\r\n", &Attestation{Form: FormValue, Kind: "dc", Token: []byte{1, 2, 3}, GeneratedAt: gen, BundleID: "com.example.attestd", TeamID: "TEAMID1234"}, nil},
		{"bare dev", dev, &Attestation{Form: FormValue, Kind: "dev", Token: bytes.Repeat([]byte{7}, 32)}, nil},
		{"envelope ok", envelope(dc), &Attestation{Form: FormEnvelope, Kind: "dc", Token: []byte{1, 2, 3}, GeneratedAt: gen, BundleID: "com.example.attestd", TeamID: "TEAMID1234"}, nil},
		{"envelope ok, other key order", `{"t":"` + dev + `","s":0,"v":1}`, &Attestation{Form: FormEnvelope, Kind: "dev", Token: bytes.Repeat([]byte{7}, 32)}, nil},
		{"envelope timeout", `{"v":1,"s":1}`, &Attestation{Form: FormEnvelope, Status: header.StatusTimeout}, []error{ErrClientStatus}},
		{"envelope client error", `{"v":1,"s":2}`, &Attestation{Form: FormEnvelope, Status: header.StatusClientError}, []error{ErrClientStatus}},
		{"envelope canceled", `{"v":1,"s":3}`, &Attestation{Form: FormEnvelope, Status: header.StatusCanceled}, []error{ErrClientStatus}},
		{"envelope malformed response", `{"v":1,"s":4}`, &Attestation{Form: FormEnvelope, Status: header.StatusMalformedResponse}, []error{ErrClientStatus}},

		{"empty", "", nil, []error{ErrMissing}},
		{"blank", " \n", nil, []error{ErrMissing}},
		{"wrong prefix", "v2." + dc[3:], nil, []error{ErrMalformed, header.ErrPrefix}},
		{"bad base64", "v1.!!!", nil, []error{ErrMalformed, header.ErrBase64}},
		{"padded base64", dc + "=", nil, []error{ErrMalformed, header.ErrBase64}},
		{"too long", "v1." + strings.Repeat("A", header.MaxValueLen), nil, []error{ErrMalformed, header.ErrTooLong}},
		{"envelope not JSON", "{v:1}", nil, []error{ErrMalformed, header.ErrEnvelopeJSON}},
		{"envelope truncated", `{"v":1,"s":0,"t":"` + dc, nil, []error{ErrMalformed, header.ErrEnvelopeJSON}},
		{"envelope version 2", `{"v":2,"s":0,"t":"` + dc + `"}`, nil, []error{ErrMalformed, header.ErrEnvelopeVersion}},
		{"envelope no version", `{"s":0,"t":"` + dc + `"}`, nil, []error{ErrMalformed, header.ErrEnvelopeVersion}},
		{"envelope status 5", `{"v":1,"s":5}`, nil, []error{ErrMalformed, header.ErrEnvelopeStatus}},
		{"envelope status -1", `{"v":1,"s":-1}`, nil, []error{ErrMalformed, header.ErrEnvelopeStatus}},
		{"envelope no status", `{"v":1,"t":"` + dc + `"}`, nil, []error{ErrMalformed, header.ErrEnvelopeStatus}},
		{"envelope status string", `{"v":1,"s":"0","t":"` + dc + `"}`, nil, []error{ErrMalformed, header.ErrEnvelopeJSON}},
		{"envelope ok without token", `{"v":1,"s":0}`, nil, []error{ErrMalformed, header.ErrEnvelopeToken}},
		{"envelope ok with empty token", `{"v":1,"s":0,"t":""}`, nil, []error{ErrMalformed, header.ErrEnvelopeToken}},
		{"envelope timeout with token", `{"v":1,"s":1,"t":"` + dc + `"}`, nil, []error{ErrMalformed, header.ErrEnvelopeToken}},
		{"envelope with bad token", `{"v":1,"s":0,"t":"v1.AAAA"}`, nil, []error{ErrMalformed, header.ErrMsgpack}},
		{"envelope array", `[1,0,"` + dc + `"]`, nil, []error{ErrMalformed}},
		{"envelope inside envelope", envelope(strings.ReplaceAll(envelope(dc), `"`, `\"`)), nil, []error{ErrMalformed, header.ErrPrefix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Parse error = %v, want errors.Is %v", err, want)
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			if got == nil {
				return
			}
			if got.Form != tt.want.Form || got.Status != tt.want.Status || got.Kind != tt.want.Kind ||
				!bytes.Equal(got.Token, tt.want.Token) || !got.GeneratedAt.Equal(tt.want.GeneratedAt) ||
				got.BundleID != tt.want.BundleID || got.TeamID != tt.want.TeamID {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	for s := header.StatusTimeout; s <= header.StatusMalformedResponse; s++ {
		_, err := Parse(`{"v":1,"s":` + string(rune('0'+s)) + `}`)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != s {
			t.Fatalf("status %d: error %v, want *StatusError{%v}", s, err, s)
		}
		if !strings.Contains(err.Error(), s.String()) || !strings.Contains(err.Error(), StatusText(s)) {
			t.Errorf("status %d: message %q lacks the status name or meaning", s, err)
		}
	}
	if got := StatusText(header.Status(9)); got != "unknown status" {
		t.Errorf("StatusText(9) = %q", got)
	}
}

// Errors must never carry the token; they carry its fingerprint at most.
func TestParseErrorsHideToken(t *testing.T) {
	secret := []byte("SECRET-TOKEN-BYTES")
	v := mustEncode(t, header.Value{Kind: "dc", Token: secret})
	for _, in := range []string{v + "x", envelope(v + "x"), `{"v":1,"s":1,"t":"` + v + `"}`, "v2" + v[2:]} {
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), string(secret)) || strings.Contains(err.Error(), v[3:]) {
			t.Errorf("error %q reveals the token", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	dc, _ := header.Encode(header.Value{Kind: "dc", Token: []byte{1, 2, 3}, GeneratedAt: time.UnixMilli(1764000000000), BundleID: "b", TeamID: "m"})
	dev, _ := header.Encode(header.Value{Kind: "dev", Token: make([]byte, 32)})
	for _, s := range []string{
		dc, dev, envelope(dc), envelope(dev), " " + envelope(dc) + "\n",
		`{"v":1,"s":1}`, `{"v":1,"s":2}`, `{"v":1,"s":3}`, `{"v":1,"s":4}`,
		`{"v":1,"s":0}`, `{"v":1,"s":1,"t":"x"}`, `{"v":2,"s":0,"t":"v1.AA"}`, `{`, `{}`, `null`,
		"", "v1.", "v1.gqFroWRp", "v1.=", `{"v":1,"s":0,"t":"v1.\u0000"}`,
	} {
		f.Add(s)
	}
	f.Add(`{"v":1,"s":0,"t":"v1.` + "haFro2RldqF0xAN0b2uhZwChYqChbaB4xv____8" + `"}`)
	f.Add(`{"x":` + strings.Repeat("[", 40) + `}`)
	f.Fuzz(func(t *testing.T, s string) {
		var (
			a   *Attestation
			err error
		)
		if n := minAllocBytes(func() { a, err = Parse(s) }); n > parseAllocBound(len(s)) {
			t.Fatalf("Parse(%q) allocated %d bytes, more than %d for its length", s, n, parseAllocBound(len(s)))
		}
		var se *StatusError
		switch {
		case err == nil:
			if a == nil || a.Status != header.StatusOK || len(a.Token) == 0 || (a.Kind != header.KindDeviceCheck && a.Kind != header.KindDev) {
				t.Fatalf("Parse(%q) = %+v, nil: incomplete attestation", s, a)
			}
			if a.Fingerprint() == "" {
				t.Fatal("no fingerprint for a token")
			}
			// A bare value re-encodes to something that parses to the same.
			v, err := header.Encode(header.Value{Kind: a.Kind, Token: a.Token, GeneratedAt: a.GeneratedAt, BundleID: a.BundleID, TeamID: a.TeamID})
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			b, err := Parse(envelope(v))
			if err != nil || !bytes.Equal(b.Token, a.Token) || b.Kind != a.Kind || !b.GeneratedAt.Equal(a.GeneratedAt) {
				t.Fatalf("round trip of %q: %+v, %v", s, b, err)
			}
		case errors.As(err, &se):
			if a == nil || a.Status == header.StatusOK || a.Status != se.Status || a.Token != nil || a.Form != FormEnvelope {
				t.Fatalf("Parse(%q) = %+v, %v: inconsistent status", s, a, err)
			}
		default:
			if a != nil {
				t.Fatalf("Parse(%q) = %+v with error %v", s, a, err)
			}
			if !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q): error %v is neither ErrMissing nor ErrMalformed", s, err)
			}
		}
		// White space around the input changes nothing.
		a2, err2 := Parse("\t" + s + " \n")
		if (err == nil) != (err2 == nil) || (a == nil) != (a2 == nil) {
			t.Fatalf("Parse(%q) and Parse with white space disagree: %v / %v", s, err, err2)
		}
	})
}

// parseAllocBound is the most Parse may allocate for an input of n bytes:
// what the longest valid envelope costs (about 3.7 bytes a byte: a copy
// to check the JSON, the base64 decoded, the token and strings copied
// out, the fingerprint) with room to spare, plus a constant for an
// error's message.
func parseAllocBound(n int) uint64 { return 4*uint64(n) + 4096 }

// allocBytes reports how many bytes f allocates on the heap;
// minAllocBytes the least of three runs (other goroutines allocate now
// and then while f runs, and the counter is the process's).
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func minAllocBytes(f func()) uint64 { return min(allocBytes(f), allocBytes(f), allocBytes(f)) }

// TestParseAllocationBounded: what Parse allocates is bounded by a small
// multiple of its input's length, whatever the input holds: a header
// crafted to make it allocate (an unknown key claiming 4 GiB used to cost
// 1 MiB for 83 bytes; 4,000 nested "[" in an envelope, 143 KiB) costs no
// more than a valid header of its length.
func TestParseAllocationBounded(t *testing.T) {
	u32 := []byte{0xff, 0xff, 0xff, 0xff}
	payload := func(extra ...byte) string {
		raw := append([]byte{0x83, 0xa1, 'k', 0xa3, 'd', 'e', 'v', 0xa1, 't', 0xc4, 1, 1, 0xa1, 'x'}, extra...)
		return header.Prefix + base64.RawURLEncoding.EncodeToString(append(raw, []byte(strings.Repeat("a", 40))...))
	}
	longest := mustEncode(t, header.Value{Kind: "dc", Token: make([]byte, 5900), BundleID: "com.example.attestd", TeamID: "ABCDE12345"})
	for _, tt := range []struct{ name, in string }{
		{"longest bare value", longest},
		{"longest envelope", envelope(longest)},
		{"bin32 under an unknown key", payload(append([]byte{0xc6}, u32...)...)},
		{"str32 under an unknown key", envelope(payload(append([]byte{0xdb}, u32...)...))},
		{"map32 under an unknown key", payload(append([]byte{0xdf}, u32...)...)},
		{"deep envelope", `{"x":` + strings.Repeat("[", 4000) + `}`},
		{"many members", "{" + strings.Repeat(`"":0,`, 1680) + `"v":1,"s":1}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if n := minAllocBytes(func() { Parse(tt.in) }); n > parseAllocBound(len(tt.in)) {
				t.Errorf("Parse allocated %d bytes for %d bytes of input, more than %d", n, len(tt.in), parseAllocBound(len(tt.in)))
			}
		})
	}
}

// The fingerprint is the one attestd's logs and "attestd decode" print:
// of the "v1." value, whichever form it came in.
func TestFingerprintMatchesHelperLogs(t *testing.T) {
	v := mustEncode(t, header.Value{Kind: "dc", Token: []byte("tok")})
	for _, in := range []string{v, envelope(v)} {
		a, err := Parse(in)
		if err != nil || a.Fingerprint() != header.Fingerprint(v) {
			t.Errorf("Parse(%.10q…).Fingerprint() = %q, %v; want %q", in, a.Fingerprint(), err, header.Fingerprint(v))
		}
	}
	if fp := (&Attestation{Token: []byte("tok")}).Fingerprint(); fp != header.Fingerprint([]byte("tok")) {
		t.Errorf("unparsed Attestation: %q", fp)
	}
	if fp := (&Attestation{}).Fingerprint(); fp != "" {
		t.Errorf("no token: %q", fp)
	}
}
