package plists

import (
	"net/url"
	"strings"
	"testing"
)

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

// FuzzCheckAppAttestRegister: whatever it accepts is an https URL, or
// plain http to this Mac, with a host and nothing a base URL must not have.
func FuzzCheckAppAttestRegister(f *testing.F) {
	for _, s := range []string{"https://gate.example.com/x", "http://127.0.0.1:8080", "http://gate.example.com", "https://u:p@h/", "https://h/?q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckAppAttestRegister(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, " \n") {
			t.Fatalf("accepted %q", raw)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
			t.Fatalf("accepted %q with scheme %q to %q", raw, u.Scheme, u.Hostname())
		}
	})
}
