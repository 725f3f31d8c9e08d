package reliability

import (
	"errors"
	"syscall"
)

// isReset reports whether err is the peer resetting the connection, which a
// Unix socket reports when the peer closes with unread data: still a close
// of that connection only.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
