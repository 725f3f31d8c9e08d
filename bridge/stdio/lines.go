package stdio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// readBufSize is the read buffer of each direction: a line that fits is
// passed on from it without a copy, and a longer one in pieces of this
// size.
const readBufSize = 64 << 10

// MaxInspect bounds how much of one line the bridge ever holds in memory.
// To decide what a line is, the bridge reads its top-level method, and a
// line it acts on (initialize from the client, attestation/generate and
// the turn notifications from the app-server, the calls it warms or holds
// on) it reads whole, up to MaxInspect. A line whose method is not found
// within its first MaxInspect bytes is passed on as one the bridge does
// not act on; a longer line it acts on is judged by its first MaxInspect
// bytes (see the package documentation). Every other byte streams through
// a fixed buffer, so memory does not grow with line length.
const MaxInspect = 1 << 20

// lineReader reads newline-terminated lines in pieces.
type lineReader struct {
	r      *bufio.Reader
	gather []byte // a line's start, gathered when it spans pieces; at most MaxInspect+readBufSize
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, readBufSize)}
}

// next returns the next piece of input: a whole line with its newline when
// it fits in the read buffer, else a piece of the line of the buffer's
// size. end reports whether the piece ends its line, with a newline or,
// for a last line cut short, at EOF or a read error. The slice is valid
// until the next call. After the last piece it returns nil, end and
// io.EOF; a read error is returned with the piece read before it.
func (l *lineReader) next() (piece []byte, end bool, err error) {
	p, err := l.r.ReadSlice('\n')
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return p, false, nil
	case errors.Is(err, io.EOF) && len(p) > 0:
		return p, true, nil // the next call returns io.EOF
	}
	return p, true, err
}

// head returns the start of the next line, as much as enough needs: the
// whole line when it ends within MaxInspect bytes and enough asks for more
// until then. enough is called with the bytes read so far, and whether
// they are the whole line; it may be called several times as the start
// grows. When end is false, the caller passes on the returned start and
// then the rest of the line with next. The slice is valid until the next
// call; err is as for next.
func (l *lineReader) head(enough func(b []byte, whole bool) bool) (b []byte, end bool, err error) {
	p, end, err := l.next()
	if end || len(p) == 0 || enough(p, false) {
		return p, end, err
	}
	if l.gather == nil {
		// Once, at its full size, so that gathering never copies twice.
		l.gather = make([]byte, 0, MaxInspect+readBufSize)
	}
	l.gather = append(l.gather[:0], p...)
	for {
		p, end, err = l.next()
		l.gather = append(l.gather, p...)
		if end || err != nil || len(l.gather) >= MaxInspect || enough(l.gather, false) {
			return l.gather, end, err
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
