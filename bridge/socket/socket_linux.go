package socket

import "golang.org/x/sys/unix"

func peerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}

func runtimeDir(getenv func(string) string) string { return getenv("XDG_RUNTIME_DIR") }

// MaxPathLen is the longest socket path bind accepts: Linux's sun_path is
// 108 bytes, one of which Go keeps for the final NUL.
const MaxPathLen = 107
