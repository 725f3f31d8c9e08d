package darwin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blacktop/go-macho"
	"github.com/blacktop/go-macho/types"
)

// TestCrossBuild builds cmd/attestd for both Mac architectures with
// CGO_ENABLED=0, as release builds are made from any OS, and checks that
// the binaries link only the system libraries a pure-Go (purego) binary
// needs: libSystem and libresolv, plus Security and CoreFoundation only
// when the standard library's crypto/x509 (which loads them for the
// system's root certificates) is linked in. Anything else means cgo or a
// framework link crept in; the darwin package itself opens frameworks with
// dlopen, at run time.
func TestCrossBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds cmd/attestd twice; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	// What Go's crypto/x509/internal/macos imports with cgo_import_dynamic.
	x509Frameworks := []string{
		"/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
		"/System/Library/Frameworks/Security.framework/Versions/A/Security",
	}
	for _, tc := range []struct {
		arch string
		cpu  types.CPU
	}{{"arm64", types.CPUArm64}, {"amd64", types.CPUAmd64}} {
		t.Run(tc.arch, func(t *testing.T) {
			env := append(os.Environ(), "GOOS=darwin", "GOARCH="+tc.arch, "CGO_ENABLED=0", "GOFLAGS=")
			list := exec.Command(goTool, "list", "-deps", "github.com/attestd/attestd/cmd/attestd")
			list.Env = env
			depsOut, err := list.Output()
			if err != nil {
				t.Fatalf("go list -deps: %v", err)
			}
			deps := strings.Fields(string(depsOut))
			if slices.Contains(deps, "runtime/cgo") {
				t.Error("runtime/cgo is linked in")
			}
			allowed := []string{"/usr/lib/libSystem.B.dylib", "/usr/lib/libresolv.9.dylib"}
			if slices.Contains(deps, "crypto/x509/internal/macos") {
				allowed = append(allowed, x509Frameworks...)
			}

			out := filepath.Join(t.TempDir(), "attestd")
			cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, "github.com/attestd/attestd/cmd/attestd")
			cmd.Env = env
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
