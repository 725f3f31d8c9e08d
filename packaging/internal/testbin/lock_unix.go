//go:build unix

package testbin

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockBuilds serializes the cross-builds of concurrently running test
// binaries (go test runs packages in parallel): the first one compiles,
// the others wait and then find everything in the build cache. It
// returns the unlock function; on any error it does not lock.
func lockBuilds() func() {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "attestd-testbin.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
