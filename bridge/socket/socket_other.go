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
