package bundlecheck

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzSigningCertificate(f *testing.F) {
	f.Add([]byte{0x30, 0x82, 0x00, 0x01, 0x00})
	f.Add(append([]byte{0x30, 0x80}, timeStampTokenOID...))
	f.Fuzz(func(t *testing.T, cms []byte) {
		signingCertificate(cms)
		(&Signature{CMS: cms}).HasTimestamp()
	})
}

func FuzzReadSlices(f *testing.F) {
	f.Add([]byte("\xca\xfe\xba\xbe\x00\x00\x00\x01"))
	f.Add([]byte("\xcf\xfa\xed\xfe\x0c\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		name := filepath.Join(t.TempDir(), "exe")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ReadSlices(name) // must not panic
	})
}
