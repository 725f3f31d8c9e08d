package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	macho "github.com/blacktop/go-macho"
	"github.com/blacktop/go-macho/types"
)

// ErrSlices reports inputs that do not make a universal binary of
// distinct architectures.
var ErrSlices = errors.New("universal binary needs two or more thin Mach-O files of distinct CPU types")

// Fat joins thin Mach-O executables into the universal binary out with
// go-macho's CreateFat, replacing out atomically. It rejects duplicate
// CPU types and inputs that are already universal.
func Fat(out string, thin ...string) error {
	if len(thin) < 2 {
		return fmt.Errorf("%w: got %d", ErrSlices, len(thin))
	}
	seen := map[types.CPU]string{}
	for _, name := range thin {
		f, err := macho.Open(name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cpu := f.CPU
		f.Close()
		if prev, dup := seen[cpu]; dup {
			return fmt.Errorf("%w: %s and %s are both %s", ErrSlices, prev, name, cpu)
		}
		seen[cpu] = name
	}
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp")
	ff, err := macho.CreateFat(tmp, thin...)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create universal binary: %w", err)
	}
	if err := ff.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
