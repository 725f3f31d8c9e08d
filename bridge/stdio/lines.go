package stdio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// readBufSize is the read buffer of each direction. Lines that fit are
// passed on without a copy; longer ones are gathered in a growing buffer.
const readBufSize = 64 << 10

// keepBufMax bounds the gathering buffer kept between lines, so one huge
// line does not pin its memory for the rest of the session.
const keepBufMax = 4 << 20

// lineReader reads newline-terminated lines of any length.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, readBufSize)}
}

// next returns the next line with its newline; only a last line cut short
// by EOF lacks one. The slice is valid until the next call. After the last
// line it returns io.EOF, or the read error; a partial line before a read
// error other than EOF is dropped.
func (l *lineReader) next() ([]byte, error) {
	if cap(l.buf) > keepBufMax {
		l.buf = nil
	}
	line, err := l.r.ReadSlice('\n')
	switch {
	case err == nil:
		return line, nil
	case errors.Is(err, io.EOF) && len(line) > 0:
		return line, nil
	case !errors.Is(err, bufio.ErrBufferFull):
		return nil, err
	}
	l.buf = append(l.buf[:0], line...)
	for {
		line, err = l.r.ReadSlice('\n')
		l.buf = appendGrow(l.buf, line)
		switch {
		case err == nil, errors.Is(err, io.EOF):
			return l.buf, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

// lineBuffered reports whether a whole line is already buffered, so that
// the caller can hold back a flush until it has passed that line on too.
func (l *lineReader) lineBuffered() bool {
	n := l.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := l.r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// appendGrow appends p to b, doubling the capacity when it must grow: the
// runtime grows large slices by only a quarter, which for a line of tens of
// MiB means copying it several times over.
func appendGrow(b, p []byte) []byte {
	if len(b)+len(p) > cap(b) {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+len(p)))
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}
