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

// FuzzLineReader checks the bridge's line reader: the pieces it returns,
// joined, are the input byte for byte; no piece is longer than the read
// buffer; a piece that ends a line ends at its first newline, only the
// last may lack one, and a piece that does not end a line has none;
// lineBuffered never promises a line that is not there; head gathers the
// start of a line up to MaxInspect and no further than it asks. Repeating
// the input reaches lines longer than the 64 KiB buffer.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"id\":1}\n{\"id\":2}\n"), uint16(1), uint8(7), uint16(0))
	f.Add([]byte("no newline at the end"), uint16(3), uint8(1), uint16(0))
	f.Add([]byte("\n\n\r\n"), uint16(2), uint8(255), uint16(5))
	f.Add([]byte("0123456789abcdef"), uint16(9000), uint8(200), uint16(100)) // one 144 KiB line
	f.Add([]byte("x\n"+string(make([]byte, 70000))), uint16(1), uint8(64), uint16(65535))
	f.Fuzz(func(t *testing.T, unit []byte, repeat uint16, chunk uint8, want uint16) {
		in := bytes.Repeat(unit, int(repeat)%10000+1)
		if len(in) > 4<<20 {
			in = in[:4<<20]
		}
		lr := newLineReader(&chunkReader{b: in, n: int(chunk)%4096 + 1})
		// enough asks for want*32 bytes of a line's start.
		need := int(want) * 32
		enough := func(b []byte, whole bool) bool {
			if whole {
				t.Fatalf("enough called with a whole line")
			}
			return len(b) >= need
		}
		var got []byte
		lineStart := true
		for i := 0; ; i++ {
			promised := lineStart && lr.lineBuffered()
			var piece []byte
			var end bool
			var err error
			if lineStart {
				piece, end, err = lr.head(enough)
			} else {
				piece, end, err = lr.next()
			}
			if errors.Is(err, io.EOF) && len(piece) == 0 {
				if promised {
					t.Fatalf("lineBuffered promised a line, then EOF")
				}
				break
			}
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("piece %d: %v", i, err)
			}
			if len(piece) == 0 {
				t.Fatalf("piece %d is empty", i)
			}
			nl := bytes.IndexByte(piece, '\n')
			switch {
			case end && nl >= 0 && nl != len(piece)-1:
				t.Fatalf("piece %d has a newline inside at %d of %d", i, nl, len(piece))
			case !end && nl >= 0:
				t.Fatalf("piece %d does not end its line but has a newline", i)
			case !lineStart && len(piece) > readBufSize:
				t.Fatalf("piece %d is %d bytes, more than the buffer", i, len(piece))
			case lineStart && !end && len(piece) > max(readBufSize, min(need, MaxInspect)+readBufSize):
				t.Fatalf("head %d is %d bytes; asked for %d", i, len(piece), need)
			case lineStart && !end && len(piece) < min(need, MaxInspect):
				t.Fatalf("head %d is %d bytes of a longer line; asked for %d", i, len(piece), need)
			case lineStart && len(piece) > MaxInspect+readBufSize:
				t.Fatalf("head %d is %d bytes, more than MaxInspect", i, len(piece))
			case promised && piece[len(piece)-1] != '\n':
				t.Fatalf("lineBuffered promised a whole line; got a piece without a newline")
			}
			got = append(got, piece...)
			if end && piece[len(piece)-1] != '\n' && len(got) != len(in) {
				t.Fatalf("piece %d ends a line without a newline but is not the last (%d of %d bytes)", i, len(got), len(in))
			}
			lineStart = end
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("pieces joined (%d bytes) differ from the input (%d bytes)", len(got), len(in))
		}
	})
}
