package stdio

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns at most n bytes per Read, so the fuzzer also moves
// where reads split lines.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

// FuzzLineReader checks the bridge's line scanner: the lines it returns,
// joined, are the input byte for byte; each ends at its first newline; only
// the last may lack one; lineBuffered never promises a line that is not
// there. Repeating the input reaches lines longer than the 64 KiB buffer.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"id\":1}\n{\"id\":2}\n"), uint16(1), uint8(7))
	f.Add([]byte("no newline at the end"), uint16(3), uint8(1))
	f.Add([]byte("\n\n\r\n"), uint16(2), uint8(255))
	f.Add([]byte("0123456789abcdef"), uint16(9000), uint8(200)) // one 144 KiB line
	f.Add([]byte("x\n"+string(make([]byte, 70000))), uint16(1), uint8(64))
	f.Fuzz(func(t *testing.T, unit []byte, repeat uint16, chunk uint8) {
		in := bytes.Repeat(unit, int(repeat)%10000+1)
		if len(in) > 4<<20 {
			in = in[:4<<20]
		}
		lr := newLineReader(&chunkReader{b: in, n: int(chunk)%4096 + 1})
		var got []byte
		for i := 0; ; i++ {
			promised := lr.lineBuffered()
			line, err := lr.next()
			if errors.Is(err, io.EOF) {
				if promised {
					t.Fatalf("lineBuffered promised a line, then EOF")
				}
				break
			}
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if len(line) == 0 {
				t.Fatalf("line %d is empty", i)
			}
			if j := bytes.IndexByte(line, '\n'); j >= 0 && j != len(line)-1 {
				t.Fatalf("line %d has a newline inside at %d of %d", i, j, len(line))
			}
			if promised && line[len(line)-1] != '\n' {
				t.Fatalf("lineBuffered promised a whole line; got one without a newline")
			}
			got = append(got, line...)
			if line[len(line)-1] != '\n' && len(got) != len(in) {
				t.Fatalf("line %d lacks a newline but is not the last (%d of %d bytes)", i, len(got), len(in))
			}
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("lines joined (%d bytes) differ from the input (%d bytes)", len(got), len(in))
		}
	})
}
