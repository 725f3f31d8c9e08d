// Package testbin cross-builds cmd/attestd for darwin/arm64 and
// darwin/amd64 once per test binary, for tests that need real Mach-O
// files.
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Version is stamped into the test builds.
const Version = "v1.2.3-4-gabcdef0"

var (
	once     sync.Once
	dir      string
	buildErr error
)

// Darwin returns the paths of cmd/attestd built for darwin/arm64 and
// darwin/amd64 (CGO_ENABLED=0, -trimpath, stripped, version stamped). It
// skips the test under -short. Call Cleanup from TestMain.
func Darwin(t testing.TB) (arm64, amd64 string) {
	t.Helper()
	if testing.Short() {
		t.Skip("cross-builds cmd/attestd; skipped with -short")
	}
	once.Do(func() {
		dir, buildErr = os.MkdirTemp("", "attestd-testbin-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		unlock := lockBuilds()
		defer unlock()
		for _, arch := range []string{"arm64", "amd64"} {
			cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
				"-ldflags", "-s -w -X main.version="+Version,
				"-o", filepath.Join(dir, "attestd-darwin-"+arch),
				"github.com/attestd/attestd/cmd/attestd")
			cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build darwin/%s: %v\n%s", arch, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(dir, "attestd-darwin-arm64"), filepath.Join(dir, "attestd-darwin-amd64")
}

// Cleanup removes the builds.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
