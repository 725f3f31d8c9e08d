//go:build !linux && !darwin

package socket

import (
	"fmt"
	"runtime"
)

func peerUID(int) (int, error) {
	return -1, fmt.Errorf("peer credentials are not implemented on %s", runtime.GOOS)
}

func runtimeDir(func(string) string) string { return "" }

// MaxPathLen is the longest socket path bind accepts: the BSDs' sun_path
// is 104 bytes, one of which Go keeps for the final NUL.
const MaxPathLen = 103
