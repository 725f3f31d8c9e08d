package profile_test

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile"
	"github.com/attestd/attestd/packaging/profile/profiletest"
)

const (
	teamID   = "ABCDE12345"
	bundleID = "com.example.Host.attestd"
)

var (
	caOnce sync.Once
	ca     *profiletest.CA
	caErr  error
)

// testCA is one test certification authority for the package's tests:
// RSA key generation is slow enough to do once.
func testCA(t testing.TB) *profiletest.CA {
	t.Helper()
	caOnce.Do(func() { ca, caErr = profiletest.NewCA() })
	if caErr != nil {
		t.Fatal(caErr)
	}
	return ca
}

func TestAppleRoots(t *testing.T) {
	t.Parallel()
	pool, err := profile.AppleRoots()
	if err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile("AppleRootCA.cer")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if hex.EncodeToString(sum[:]) != profile.AppleRootCASHA256 {
		t.Fatalf("AppleRootCA.cer SHA-256 %x, want the pinned %s", sum, profile.AppleRootCASHA256)
	}
	root, _ := x509.ParseCertificate(der)
	if root.Subject.CommonName != "Apple Root CA" || !root.IsCA {
		t.Errorf("embedded root is %q", root.Subject)
	}
	if _, err := root.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Errorf("the pool does not hold Apple Root CA: %v", err)
	}
}

// TestAppleChain checks the chain logic against Apple's real certificates:
// each Mac profile signing certificate chains through WWDR G5 to the
// embedded Apple Root CA at the time it signed a real profile, and is named
// as a profile signer; the 2022 one has expired since, which is why
// validity is judged at the signing time.
func TestAppleChain(t *testing.T) {
	t.Parallel()
	roots, err := profile.AppleRoots()
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) *x509.Certificate {
		der, err := os.ReadFile(filepath.Join("testdata", "apple", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	g5 := load("wwdr-g5.cer")
	inter := x509.NewCertPool()
	inter.AddCert(g5)
	for _, tc := range []struct {
		file     string
		signedAt time.Time
		later    time.Time // after the certificate expired
	}{
		{"mac-profile-signing-2022.cer", time.Date(2023, 8, 20, 11, 21, 22, 0, time.UTC), time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)},
		{"mac-profile-signing-2024.cer", time.Date(2025, 5, 29, 14, 4, 23, 0, time.UTC), time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		leaf := load(tc.file)
		if leaf.Subject.CommonName != profile.SignerMac || leaf.Subject.Organization[0] != profile.SignerOrganization {
			t.Errorf("%s: subject %q", tc.file, leaf.Subject)
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: tc.signedAt, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("%s at %s: %v", tc.file, tc.signedAt, err)
		}
		opts.CurrentTime = tc.later
		if _, err := leaf.Verify(opts); err == nil {
			t.Errorf("%s verifies at %s, after it expired", tc.file, tc.later)
		}
		opts.CurrentTime, opts.Intermediates = tc.signedAt, nil
		if _, err := leaf.Verify(opts); err == nil {
			t.Errorf("%s verifies without its intermediate", tc.file)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	other, err := profiletest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	plist, err := profiletest.Fields{TeamID: teamID, BundleID: bundleID}.Plist()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	devCert, devKey, err := ca.Issue("Developer ID Application: Example Inc ("+teamID+")", "Example Inc")
	if err != nil {
		t.Fatal(err)
	}
	fakeApple, fakeAppleKey, err := ca.Issue(profile.SignerMac, "Example Inc")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c *profiletest.CA, o profiletest.SignOptions) []byte {
		b, err := c.Sign(plist, o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign(ca, profiletest.SignOptions{SigningTime: at})
	for _, tc := range []struct {
		name      string
		data      []byte
		roots     *x509.CertPool // nil: the test CA's
		parseErr  error
		verifyErr error
	}{
		{name: "as Apple signs (SHA-1, signed attributes)", data: good},
		{name: "SHA-256", data: sign(ca, profiletest.SignOptions{Digest: crypto.SHA256, SigningTime: at})},
		{name: "no signing time: judged at CreationDate", data: sign(ca, profiletest.SignOptions{})},
		{name: "no signed attributes", data: sign(ca, profiletest.SignOptions{NoSignedAttrs: true})},
		{name: "content changed after signing", data: sign(ca, profiletest.SignOptions{SigningTime: at, TamperContent: true}), verifyErr: profile.ErrSignature},
		{name: "content changed, no signed attributes", data: sign(ca, profiletest.SignOptions{NoSignedAttrs: true, TamperContent: true}), verifyErr: profile.ErrSignature},
		{name: "another CA", data: sign(other, profiletest.SignOptions{SigningTime: at}), verifyErr: profile.ErrUntrusted},
		{name: "the test CA against Apple's root", data: good, roots: mustAppleRoots(t), verifyErr: profile.ErrUntrusted},
		{name: "signed before the chain was valid", data: sign(ca, profiletest.SignOptions{SigningTime: profiletest.NotBefore.Add(-time.Hour)}), verifyErr: profile.ErrUntrusted},
		{name: "signed after the chain expired", data: sign(ca, profiletest.SignOptions{SigningTime: profiletest.NotAfter.Add(time.Hour)}), verifyErr: profile.ErrUntrusted},
		{name: "signed by a developer's own certificate", data: sign(ca, profiletest.SignOptions{SigningTime: at, Cert: devCert, Key: devKey}), verifyErr: profile.ErrSigner},
		{name: "Apple's signer name in another organization", data: sign(ca, profiletest.SignOptions{SigningTime: at, Cert: fakeApple, Key: fakeAppleKey}), verifyErr: profile.ErrSigner},
		{name: "a signature over other signed attributes", data: swapSignature(t, good, sign(ca, profiletest.SignOptions{SigningTime: at.Add(time.Second)})), verifyErr: profile.ErrSignature},
		{name: "trailing bytes", data: append(append([]byte{}, good...), 0), parseErr: profile.ErrMalformed},
		{name: "BER indefinite length", data: indefinite(good), parseErr: profile.ErrMalformed},
		{name: "a bare plist", data: plist, parseErr: profile.ErrMalformed},
		{name: "signed content not a plist", data: signBytes(t, ca, []byte("not a plist"), at), parseErr: profile.ErrMalformed},
		{name: "empty", data: nil, parseErr: profile.ErrMalformed},
		{name: "too large", data: make([]byte, profile.MaxSize+1), parseErr: profile.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := profile.Parse(tc.data)
			if tc.parseErr != nil {
				if !errors.Is(err, tc.parseErr) {
					t.Fatalf("Parse err = %v, want %v", err, tc.parseErr)
				}
				var pe *profile.Error
				if !errors.As(err, &pe) || pe.Detail == "" {
					t.Errorf("Parse err %v is not a detailed *profile.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			roots := tc.roots
			if roots == nil {
				roots = ca.Roots()
			}
			err = p.Verify(profile.VerifyOptions{Roots: roots})
			if !errors.Is(err, tc.verifyErr) || (tc.verifyErr == nil) != (err == nil) {
				t.Fatalf("Verify err = %v, want %v", err, tc.verifyErr)
			}
		})
	}
}

func mustAppleRoots(t *testing.T) *x509.CertPool {
	p, err := profile.AppleRoots()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func signBytes(t *testing.T, ca *profiletest.CA, content []byte, at time.Time) []byte {
	b, err := ca.Sign(content, profiletest.SignOptions{SigningTime: at})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// swapSignature returns a with its RSA signature (the last 256 bytes of
// both DER encodings, of the same length) replaced by b's, which signs
// another signing time.
func swapSignature(t *testing.T, a, b []byte) []byte {
	if len(a) != len(b) {
		t.Fatalf("profiles of %d and %d bytes", len(a), len(b))
	}
	out := append([]byte{}, a...)
	copy(out[len(out)-256:], b[len(b)-256:])
	return out
}

// indefinite rewrites the outer SEQUENCE with a BER indefinite length.
func indefinite(der []byte) []byte {
	n := 2
	if der[1]&0x80 != 0 {
		n = 2 + int(der[1]&0x7f)
	}
	out := append([]byte{0x30, 0x80}, der[n:]...)
	return append(out, 0, 0)
}

func TestParseFields(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		f    profiletest.Fields
		kind profile.Kind
	}{
		{"Developer ID", profiletest.Fields{TeamID: teamID, BundleID: bundleID, Created: created}, profile.KindDeveloperID},
		{"development", profiletest.Fields{TeamID: teamID, BundleID: bundleID, Created: created, Devices: []string{"00008103-001A"}}, profile.KindDevelopment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := ca.Profile(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := profile.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind() != tc.kind {
				t.Errorf("Kind = %s, want %s", p.Kind(), tc.kind)
			}
			if len(p.TeamIdentifiers) != 1 || p.TeamIdentifiers[0] != teamID || len(p.Platforms) != 1 || p.Platforms[0] != "OSX" {
				t.Errorf("team %v, platforms %v", p.TeamIdentifiers, p.Platforms)
			}
			if !p.CreationDate.Equal(created) || !p.ExpirationDate.Equal(created.AddDate(18, 0, 0)) || !p.SigningTime.Equal(created) {
				t.Errorf("created %s, expires %s, signed %s", p.CreationDate, p.ExpirationDate, p.SigningTime)
			}
			if p.Entitlements[plists.ApplicationIdentifier] != teamID+"."+bundleID || p.Signer == nil || p.Signer.Subject.CommonName != profile.SignerMac {
				t.Errorf("entitlements %v, signer %v", p.Entitlements, p.Signer)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	const aa = plists.AppAttestEnvironment
	p := &profile.Profile{Entitlements: map[string]any{
		"dev-only":                   "development",
		"both":                       []any{"development", "production"},
		plists.ApplicationIdentifier: teamID + ".com.example.*",
		"keychain-access-groups":     []any{teamID + ".*"},
		"flag":                       true,
		"off":                        false,
		"any":                        "*",
		aa:                           "production",
	}}
	for _, tc := range []struct {
		key     string
		claimed any
		ok      bool
	}{
		{"dev-only", "development", true},
		{"dev-only", "production", false},
		{"both", "development", true},
		{"both", "production", true},
		{"both", "staging", false},
		{"both", []any{"development", "production"}, true},
		{aa, "production", true},
		{aa, "development", false},
		{"missing", "development", false},
		{plists.ApplicationIdentifier, teamID + ".com.example.Host.attestd", true},
		{plists.ApplicationIdentifier, teamID + ".org.other.app", false},
		{plists.ApplicationIdentifier, "ZZZZZ99999.com.example.app", false},
		{"keychain-access-groups", []any{teamID + ".shared", teamID + ".other"}, true},
		{"keychain-access-groups", []any{teamID + ".shared", "ZZZZZ99999.x"}, false},
		{"flag", true, true},
		{"off", true, false},
		{"any", "whatever", true},
		{"dev-only", true, false},
		{"both", uint64(1), false},
	} {
		granted, ok := p.Allows(tc.key, tc.claimed)
		if ok != tc.ok {
			t.Errorf("Allows(%q, %v) = %v (granted %v), want %v", tc.key, tc.claimed, ok, granted, tc.ok)
		}
		if tc.key == "missing" && granted != nil {
			t.Errorf("an absent key grants %v", granted)
		}
	}
}

// TestRealProfile verifies a real profile against Apple Root CA when
// ATTESTD_TEST_PROFILE names one (see testdata/apple/README.md): on a
// developer's machine, with the profile make bundle embeds.
func TestRealProfile(t *testing.T) {
	name := os.Getenv("ATTESTD_TEST_PROFILE")
	if name == "" {
		t.Skip("set ATTESTD_TEST_PROFILE=path/to/x.provisionprofile to verify a real profile")
	}
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(profile.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%q (%s), team %v, signed %s by %q; App Attest: %v", p.Name, p.Kind(), p.TeamIdentifiers,
		p.SigningTime.Format(time.RFC3339), p.Signer.Subject.CommonName, p.Entitlements[plists.AppAttestEnvironment])
	data[len(data)/3] ^= 1
	if q, err := profile.Parse(data); err == nil && q.Verify(profile.VerifyOptions{}) == nil {
		t.Error("the profile still verifies with one byte flipped")
	}
}
