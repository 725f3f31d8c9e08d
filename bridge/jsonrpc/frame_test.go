package jsonrpc

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads lines until an error and returns them, with the error as
// a final "error: …" entry.
func readAll(lr *LineReader) []string {
	var out []string
	for range 1 << 20 {
		line, err := lr.ReadLine()
		if err != nil {
			return append(out, "error: "+err.Error())
		}
		out = append(out, string(line))
	}
	return append(out, "error: too many lines")
}

func TestLineReader(t *testing.T) {
	const (
		eof     = "error: EOF"
		tooLong = "error: request too large: line longer than the limit"
	)
	tests := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"empty input", "", 10, []string{eof}},
		{"one line", "abc\n", 10, []string{"abc", eof}},
		{"final line without newline", "abc\ndef", 10, []string{"abc", "def", eof}},
		{"empty lines", "\n\na\n\n", 10, []string{"", "", "a", "", eof}},
		{"CRLF", "a\r\nb\r\n\r\n", 10, []string{"a", "b", "", eof}},
		{"lone CR kept", "a\rb\n", 10, []string{"a\rb", eof}},
		{"CR at EOF kept", "a\r", 10, []string{"a\r", eof}},
		{"spaces kept", " a \n", 10, []string{" a ", eof}},

		{"at the limit", "abc\nd\n", 3, []string{"abc", "d", eof}},
		{"at the limit at EOF", "abc", 3, []string{"abc", eof}},
		{"at the limit CRLF", "abc\r\nd\r\n", 3, []string{"abc", "d", eof}},
		{"one over", "abcd\nx\n", 3, []string{tooLong}},
		{"one over at EOF", "abcd", 3, []string{tooLong}},
		{"one over CRLF", "abcd\r\n", 3, []string{tooLong}},
		{"CR counts unless before LF", "abc\r", 3, []string{tooLong}},
		{"over after good lines", "a\nbb\nccccc\n", 3, []string{"a", "bb", tooLong}},
		{"zero limit", "\n\r\nx\n", 0, []string{"", "", tooLong}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.in)},
				{"bytewise", iotest.OneByteReader(strings.NewReader(tt.in))},
				{"data with EOF", iotest.DataErrReader(strings.NewReader(tt.in))},
			} {
				got := readAll(NewLineReader(r.r, tt.max))
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("%s: got %q, want %q", r.name, got, tt.want)
				}
			}
		})
	}
}

// TestLineReaderBig checks the limit with lines longer than the reader's
// buffer, so that a line spans several reads of it.
func TestLineReaderBig(t *testing.T) {
	const max = 200 << 10
	line := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		in   string
		want []int // line lengths; -1 for ErrLineTooLong
	}{
		{"at the limit", line(max) + "\n" + line(1) + "\n", []int{max, 1}},
		{"at the limit CRLF", line(max) + "\r\n", []int{max}},
		{"at the limit at EOF", line(max), []int{max}},
		{"one over", line(max+1) + "\n", []int{-1}},
		{"one over at EOF", line(max + 1), []int{-1}},
		{"one over CRLF", line(max+1) + "\r\n", []int{-1}},
		{"buffer boundaries", line(64<<10-1) + "\n" + line(64<<10) + "\n" + line(64<<10+1) + "\n", []int{64<<10 - 1, 64 << 10, 64<<10 + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := NewLineReader(strings.NewReader(tt.in), max)
			for i, n := range tt.want {
				got, err := lr.ReadLine()
				if n < 0 {
					if !errors.Is(err, ErrLineTooLong) {
						t.Fatalf("line %d: %d bytes, %v; want ErrLineTooLong", i, len(got), err)
					}
					return
				}
				if err != nil || len(got) != n || strings.Trim(string(got), "x") != "" {
					t.Fatalf("line %d: %d bytes, %v; want %d x's", i, len(got), err, n)
				}
			}
			if _, err := lr.ReadLine(); err != io.EOF {
				t.Fatalf("after the last line: %v, want io.EOF", err)
			}
		})
	}
}

// TestLineReaderNoLimit checks that a limit too large to matter, such as
// math.MaxInt for "no limit", does not overflow into refusing every line.
func TestLineReaderNoLimit(t *testing.T) {
	for _, max := range []int{math.MaxInt, math.MaxInt - 1, math.MaxInt - 2} {
		lr := NewLineReader(strings.NewReader("a\r\nbb\n"+strings.Repeat("c", 100<<10)), max)
		if got := readAll(lr); len(got) != 4 || got[0] != "a" || got[1] != "bb" || len(got[2]) != 100<<10 || got[3] != "error: EOF" {
			t.Errorf("max %d: got %d lines, first %.20q", max, len(got), got)
		}
	}
}

// countingReader is an endless line: it counts what it hands out.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += int64(len(p))
	return len(p), nil
}

// TestLineReaderHuge checks that a line far over the limit is refused
// after reading about the limit, not the whole line.
func TestLineReaderHuge(t *testing.T) {
	for _, max := range []int{DefaultMaxLine, 100, 0} {
		r := &countingReader{}
		lr := NewLineReader(io.LimitReader(r, 64<<20), max)
		line, err := lr.ReadLine()
		if !errors.Is(err, ErrLineTooLong) || !errors.Is(err, ErrRequestTooLarge) || line != nil {
			t.Fatalf("max %d: ReadLine = %d bytes, %v; want ErrLineTooLong", max, len(line), err)
		}
		if limit := int64(max) + 64<<10 + 1; r.n > limit {
			t.Errorf("max %d: read %d bytes before refusing, want at most %d", max, r.n, limit)
		}
	}
}

func TestLineReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	lr := NewLineReader(io.MultiReader(strings.NewReader("a\npartial"), iotest.ErrReader(boom)), 100)
	if line, err := lr.ReadLine(); err != nil || string(line) != "a" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	if line, err := lr.ReadLine(); !errors.Is(err, boom) {
		t.Fatalf("second line = %q, %v; want %v", line, err, boom)
	}
}

// TestLineReaderEOFRepeats checks that EOF is sticky.
func TestLineReaderEOFRepeats(t *testing.T) {
	lr := NewLineReader(strings.NewReader("a"), 10)
	if line, err := lr.ReadLine(); err != nil || string(line) != "a" {
		t.Fatalf("ReadLine = %q, %v", line, err)
	}
	for range 3 {
		if line, err := lr.ReadLine(); err != io.EOF || line != nil {
			t.Fatalf("ReadLine = %q, %v; want io.EOF", line, err)
		}
	}
}

// TestLineReaderPipelined feeds many lines, as pipelined requests arrive,
// and checks each is returned whole.
func TestLineReaderPipelined(t *testing.T) {
	var in bytes.Buffer
	var want []string
	for i := range 5000 {
		l := strings.Repeat(string(rune('a'+i%26)), i%300)
		want = append(want, l)
		in.WriteString(l + "\n")
	}
	got := readAll(NewLineReader(iotest.HalfReader(&in), 299))
	if len(got) != len(want)+1 {
		t.Fatalf("got %d lines, want %d", len(got)-1, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// stepReader returns its steps one per Read: data, or an error.
type stepReader struct{ steps []any }

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := r.steps[0]
	r.steps = r.steps[1:]
	if err, ok := s.(error); ok {
		return 0, err
	}
	return copy(p, s.(string)), nil
}

var errTimeout = errors.New("i/o timeout")

// TestLineReaderResumes checks that after a read error mid-line (a read
// deadline) the next call continues the same line, within the same limit.
func TestLineReaderResumes(t *testing.T) {
	tests := []struct {
		name  string
		steps []any
		max   int
		want  []string
	}{
		{"resume", []any{"ab", errTimeout, "c\nd\n"}, 10, []string{"error: i/o timeout", "abc", "d", "error: EOF"}},
		{"twice", []any{"a", errTimeout, "b", errTimeout, "c\n"}, 10, []string{"error: i/o timeout", "error: i/o timeout", "abc", "error: EOF"}},
		{"between lines", []any{"a\n", errTimeout, "b\n"}, 10, []string{"a", "error: i/o timeout", "b", "error: EOF"}},
		{"limit spans the pause", []any{"ab", errTimeout, "cd\n"}, 3, []string{"error: i/o timeout", "error: request too large: line longer than the limit"}},
		{"CRLF split by the pause", []any{"abc\r", errTimeout, "\n"}, 3, []string{"error: i/o timeout", "abc", "error: EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := NewLineReader(&stepReader{steps: tt.steps}, tt.max)
			var got []string
			for range 10 {
				line, err := lr.ReadLine()
				if err != nil {
					got = append(got, "error: "+err.Error())
					if err != errTimeout {
						break
					}
					continue
				}
				got = append(got, string(line))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
