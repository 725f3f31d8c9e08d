package darwin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blacktop/go-macho"
	"github.com/blacktop/go-macho/types"
)

// TestCrossBuild builds cmd/attestd for both Mac architectures with
// CGO_ENABLED=0, as release builds are made from any OS, and checks that
// the binaries link only the system libraries a pure-Go (purego) binary
// needs: no cgo crept in.
func TestCrossBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds cmd/attestd twice; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	allowed := []string{"/usr/lib/libSystem.B.dylib", "/usr/lib/libresolv.9.dylib"}
	for _, tc := range []struct {
		arch string
		cpu  types.CPU
	}{{"arm64", types.CPUArm64}, {"amd64", types.CPUAmd64}} {
		t.Run(tc.arch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "attestd")
			cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, "github.com/attestd/attestd/cmd/attestd")
			cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+tc.arch, "CGO_ENABLED=0", "GOFLAGS=")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=darwin GOARCH=%s CGO_ENABLED=0 go build ./cmd/attestd: %v\n%s", tc.arch, err, b)
			}
			f, err := macho.Open(out)
			if err != nil {
				t.Fatalf("not a thin Mach-O file: %v", err)
			}
			defer f.Close()
			if f.CPU != tc.cpu {
				t.Errorf("CPU = %v, want %v", f.CPU, tc.cpu)
			}
			libs := f.ImportedLibraries()
			if !slices.Contains(libs, "/usr/lib/libSystem.B.dylib") {
				t.Errorf("imports %q, want libSystem among them", libs)
			}
			for _, lib := range libs {
				if !slices.Contains(allowed, lib) {
					t.Errorf("imports %s; only %q are expected (did cgo or a framework link creep in?)", lib, allowed)
				}
			}
			t.Logf("darwin/%s imports %q", tc.arch, libs)
		})
	}
}
