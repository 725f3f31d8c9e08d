package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/attestd/attestd/packaging/plists"
)

func TestBundleOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ exe, want string }{
		{"/A/Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd", "/A/Host.app/Contents/Helpers/Attestd.app"},
		{"/usr/local/bin/attestd", ""},
		{"/A/Attestd/Contents/MacOS/attestd", ""},
		{"/A/Attestd.app/Contents/Resources/attestd", ""},
	} {
		if got := BundleOf(tc.exe); got != tc.want {
			t.Errorf("BundleOf(%q) = %q, want %q", tc.exe, got, tc.want)
		}
	}
}

// TestOwn: the attestd inside a helper bundle knows its agent from the
// bundle's Info.plist, through a symlink too; one outside a bundle, or
// in a bundle whose Info.plist names none, knows none.
func TestOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe := filepath.Join(dir, "Host.app", "Contents", "Helpers", "Attestd.app", "Contents", "MacOS", "attestd")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(exe, []byte("binary"), 0o755)
	info, err := plists.NewInfoPlist("com.example.Host.attestd", "Attestd", "attestd", "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	info.AttestdLaunchAgentLabel = "com.example.Host.attestd"
	info.AttestdSocketKey = "ATTESTD_SOCKET_com_example_Host_attestd"
	b, _ := plists.Marshal(info)
	os.WriteFile(filepath.Join(dir, "Host.app", "Contents", "Helpers", "Attestd.app", "Contents", "Info.plist"), b, 0o644)
	link := filepath.Join(dir, "attestd")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{exe, link} {
		if label, key := Own(e); label != "com.example.Host.attestd" || key != "ATTESTD_SOCKET_com_example_Host_attestd" {
			t.Errorf("Own(%s) = %q, %q", e, label, key)
		}
	}
	if label, key := Own(filepath.Join(dir, "attestd-elsewhere")); label != "" || key != "" {
		t.Errorf("Own outside a bundle = %q, %q", label, key)
	}
}
