package registration_test

import (
	"testing"

	"github.com/attestd/attestd/verify/appattest/registration"
)

// FuzzRegister: whatever body arrives, a registration without a real
// attestation of an issued challenge is refused (400 or 403), never
// registered, and the handler answers JSON.
func FuzzRegister(f *testing.F) {
	dev := newDevKey(f, "")
	f.Add(registerBody(dev.ID(), "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	f.Add(`{"keyId":"","attestation":"","challenge":""}`)
	f.Add(`{"keyId":null}`)
	f.Add(`[]`)
	f.Add(`{"keyId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","attestation":"o2NmbXRvYXBwbGUtYXBwYXR0ZXN0","challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"}`)
	f.Fuzz(func(t *testing.T, body string) {
		s := newServer(t, registration.Config{Burst: 1 << 20})
		code, out, h := s.do(t, "POST", "/appattest/register", body)
		if (code != 400 && code != 403) || h.Get("Content-Type") != "application/json" {
			t.Fatalf("register %q: %d %s", body, code, out)
		}
	})
}
