// Package architecture holds the test that keeps ARCHITECTURE.md's layers
// true: nothing imports upward.
package architecture

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/attestd/attestd/"

// layer returns the layer of a package path inside the module, as
// ARCHITECTURE.md's "Layers" lists them: 1 bridge, 2 darwin, verify and
// packaging, 3 internal, 4 cmd; 0 for a path outside them (test/).
func layer(rel string) (int, string) {
	top, _, _ := strings.Cut(rel, "/")
	switch top {
	case "bridge":
		return 1, top
	case "darwin", "verify", "packaging":
		return 2, top
	case "internal":
		return 3, top
	case "cmd":
		return 4, top
	}
	return 0, top
}

// TestLayers fails for an import that runs against the layer order, or
// that joins two folders of the middle layer (darwin, verify, packaging
// import bridge only). Tests are included: a test may use a lower layer's
// test helpers, never a higher layer.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from, fromTop := layer(strings.TrimPrefix(p.ImportPath, module))
		if from == 0 {
			continue
		}
		checked++
		for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to, toTop := layer(strings.TrimPrefix(imp, module))
			switch {
			case to == 0:
				t.Errorf("%s imports %s, which is outside the layers", p.ImportPath, imp)
			case to > from:
				t.Errorf("%s (layer %d) imports %s (layer %d): an import upward", p.ImportPath, from, imp, to)
			case to == 2 && from == 2 && toTop != fromTop:
				t.Errorf("%s imports %s: darwin/, verify/ and packaging/ import only bridge/", p.ImportPath, imp)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d packages; go list found too few", checked)
	}
}
