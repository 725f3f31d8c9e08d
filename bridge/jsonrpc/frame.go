package jsonrpc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxLine is the longest request line a server accepts: 1 MiB.
const DefaultMaxLine = 1 << 20

// ErrLineTooLong is returned by LineReader.ReadLine for a line over the
// limit. The rest of the stream cannot be trusted: close the connection.
var ErrLineTooLong = fmt.Errorf("%w: line longer than the limit", ErrRequestTooLarge)

// LineReader reads newline-delimited messages with a size limit.
type LineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
	// partial is set when the last call failed mid-line (a read deadline,
	// say): buf then holds the start of the line and the next call goes on.
	partial bool
}

// NewLineReader returns a reader of lines of at most max bytes, newline
// excluded.
func NewLineReader(r io.Reader, max int) *LineReader {
	max = min(max, math.MaxInt-2) // ReadLine adds up to 2 for the line end
	return &LineReader{r: bufio.NewReaderSize(r, min(max+1, 64<<10)), max: max}
}

// ReadLine returns the next line without its newline. The slice is valid
// until the next call. A final line without a newline is returned at EOF;
// after it ReadLine returns io.EOF. A line over the limit gives
// ErrLineTooLong without reading the rest of it. After another error,
// such as a read deadline, the bytes of the line read so far are kept and
// the next call continues the same line.
func (lr *LineReader) ReadLine() ([]byte, error) {
	if !lr.partial {
		lr.buf = lr.buf[:0]
	}
	lr.partial = false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		// The limit excludes the line end, which may be \r\n: max+2 bytes
		// can still make a line of max bytes.
		if len(lr.buf)+len(chunk) > lr.max+2 {
			return nil, ErrLineTooLong
		}
		lr.buf = append(lr.buf, chunk...)
		switch {
		case err == nil:
			line := trimEOL(lr.buf)
			if len(line) > lr.max {
				return nil, ErrLineTooLong
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(lr.buf) > lr.max+1 { // not even a \r\n can make it fit
				return nil, ErrLineTooLong
			}
			continue
		case errors.Is(err, io.EOF) && len(lr.buf) > 0:
			if len(lr.buf) > lr.max { // no line end to drop
				return nil, ErrLineTooLong
			}
			return lr.buf, nil
		default:
			lr.partial = len(lr.buf) > 0
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
