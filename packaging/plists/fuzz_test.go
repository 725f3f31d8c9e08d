package plists

import "testing"

func FuzzParseEntitlements(f *testing.F) {
	f.Add([]byte(plistXML(`<key>com.apple.security.get-task-allow</key><true/>`)))
	f.Add([]byte(plistXML(`<key>a</key><array><string>$(DEVELOPMENT_TEAM)</string></array>`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEntitlements(data)
		if err != nil {
			return
		}
		e.Problems()
		e.Resolve("ABCDE12345", "com.example.attestd")
	})
}

func FuzzBundleVersion(f *testing.F) {
	f.Add("v1.2.3-4-gabcdef0")
	f.Add("3fcb1b9")
	f.Fuzz(func(t *testing.T, v string) {
		got := BundleVersion(v)
		if BundleVersion("v"+got) != got {
			t.Errorf("BundleVersion(%q) = %q, which does not read back", v, got)
		}
	})
}
