package socket

import "golang.org/x/sys/unix"

// peerUID reads LOCAL_PEERCRED (struct xucred) from the socket.
func peerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}

// runtimeDir is the per-user temporary directory launchd gives every
// session ($TMPDIR, under /var/folders), which only this user can read.
func runtimeDir(getenv func(string) string) string { return getenv("TMPDIR") }

// MaxPathLen is the longest socket path bind accepts: macOS's sun_path is
// 104 bytes, one of which Go keeps for the final NUL.
const MaxPathLen = 103
