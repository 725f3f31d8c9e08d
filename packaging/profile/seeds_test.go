package profile_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile/profiletest"
)

// fuzzSeeds are the files under testdata/fuzzseed: a test CA's root
// (root.cer) and profiles it signed. FuzzParse reads them instead of
// making a CA, because generating RSA keys in every fuzz worker, with the
// fuzzer's instrumentation, stalls the workers.
// ATTESTD_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds rewrites them.
var fuzzSeeds = []struct {
	name string
	make func(ca *profiletest.CA) ([]byte, error)
}{
	{"developer-id-app-attest.der", func(ca *profiletest.CA) ([]byte, error) {
		return ca.Profile(profiletest.Fields{TeamID: teamID, BundleID: bundleID,
			Entitlements: map[string]any{plists.AppAttestEnvironment: []any{"development", "production"}}})
	}},
	{"development.der", func(ca *profiletest.CA) ([]byte, error) {
		return ca.Profile(profiletest.Fields{TeamID: teamID, BundleID: bundleID, Devices: []string{"00008103-001A"}})
	}},
	{"no-signed-attributes.der", func(ca *profiletest.CA) ([]byte, error) {
		plist, _ := profiletest.Fields{TeamID: teamID, BundleID: bundleID}.Plist()
		return ca.Sign(plist, profiletest.SignOptions{NoSignedAttrs: true})
	}},
	{"tampered.der", func(ca *profiletest.CA) ([]byte, error) {
		plist, _ := profiletest.Fields{TeamID: teamID, BundleID: bundleID}.Plist()
		return ca.Sign(plist, profiletest.SignOptions{SigningTime: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), TamperContent: true})
	}},
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ATTESTD_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("ATTESTD_WRITE_FUZZ_SEEDS=1 rewrites testdata/fuzzseed")
	}
	ca := testCA(t)
	dir := filepath.Join("testdata", "fuzzseed")
	if err := os.WriteFile(filepath.Join(dir, "root.cer"), ca.Root.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range fuzzSeeds {
		data, err := s.make(ca)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
