package agent

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/attestd/attestd/packaging/plists"
)

// BundleOf returns the .app directory exe is the main executable of
// (X.app/Contents/MacOS/exe), or "".
func BundleOf(exe string) string {
	macos := filepath.Dir(exe)
	contents := filepath.Dir(macos)
	app := filepath.Dir(contents)
	if filepath.Base(macos) == "MacOS" && filepath.Base(contents) == "Contents" && strings.HasSuffix(app, ".app") {
		return app
	}
	return ""
}

// Own returns the LaunchAgent label and socket key that the Info.plist of
// the bundle exe runs from names (make bundle writes them), or "" when exe
// runs outside a bundle or its Info.plist names none.
func Own(exe string) (label, key string) {
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	info, err := infoPlist(BundleOf(exe))
	if err != nil {
		return "", ""
	}
	label, _ = info[plists.InfoKeyLabel].(string)
	key, _ = info[plists.InfoKeySocketKey].(string)
	return label, key
}

// infoPlist reads app's Contents/Info.plist.
func infoPlist(app string) (map[string]any, error) {
	if app == "" {
		return nil, os.ErrNotExist
	}
	data, err := os.ReadFile(filepath.Join(app, "Contents", "Info.plist"))
	if err != nil {
		return nil, err
	}
	return plists.Dict(data)
}
