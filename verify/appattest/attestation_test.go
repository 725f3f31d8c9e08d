package appattest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
)

const testAppID = "ABCDE12345.com.example.app"

func newCA(t testing.TB) *appattesttest.CA {
	t.Helper()
	ca, err := appattesttest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newDevice(t testing.TB, env appattest.Environment) *appattesttest.Device {
	t.Helper()
	d, err := appattesttest.NewDevice(testAppID, env)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t testing.TB, ca *appattesttest.CA, a appattesttest.Attestation) []byte {
	t.Helper()
	b, err := ca.Issue(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editObject takes a good object apart, lets edit change it, and puts
// it back together.
func editObject(t testing.TB, object []byte, edit func(*appattesttest.Object)) []byte {
	t.Helper()
	o, err := appattesttest.ParseObject(object)
	if err != nil {
		t.Fatal(err)
	}
	edit(o)
	b, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var clientDataHash = func() []byte { h := sha256.Sum256([]byte("server challenge")); return h[:] }()

// TestVerifyAttestationAccepts: objects of every shape Apple makes
// verify, and the key says what the object said.
func TestVerifyAttestationAccepts(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	now := time.Now()
	prod, dev := newDevice(t, appattest.Production), newDevice(t, appattest.Development)
	for _, tt := range []struct {
		name    string
		device  *appattesttest.Device
		spec    func(d *appattesttest.Device) appattesttest.Attestation
		envs    []appattest.Environment
		policy  bool
		ext     bool
		extFlag bool
	}{
		{name: "pre-2026 shape", device: prod, spec: func(d *appattesttest.Device) appattesttest.Attestation { return d.Template(clientDataHash, now) }},
		{name: "2026 shape: key policy, EKU, extensions without ED", device: prod, spec: func(d *appattesttest.Device) appattesttest.Attestation { return d.Template2026(clientDataHash, now) }, policy: true, ext: true},
		{name: "extensions with ED set", device: prod, spec: func(d *appattesttest.Device) appattesttest.Attestation {
			a := d.Template2026(clientDataHash, now)
			a.Flags |= 0x80
			return a
		}, policy: true, ext: true, extFlag: true},
		{name: "development, accepted", device: dev, envs: []appattest.Environment{appattest.Development}, spec: func(d *appattesttest.Device) appattesttest.Attestation { return d.Template(clientDataHash, now) }},
		{name: "development among both", device: dev, envs: []appattest.Environment{appattest.Production, appattest.Development}, spec: func(d *appattesttest.Device) appattesttest.Attestation { return d.Template(clientDataHash, now) }},
		{name: "a 21-byte raw challenge as clientDataHash", device: prod, spec: func(d *appattesttest.Device) appattesttest.Attestation {
			return d.Template([]byte("test_server_challenge"), now)
		}},
		{name: "an empty extensions map", device: prod, spec: func(d *appattesttest.Device) appattesttest.Attestation {
			a := d.Template(clientDataHash, now)
			a.Extensions = []byte{0xa0}
			return a
		}, ext: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := tt.spec(tt.device)
			key, err := appattest.VerifyAttestation(issue(t, ca, spec), appattest.AttestationOptions{
				AppIDs: []string{"OTHER.app", testAppID}, ClientDataHash: spec.ClientDataHash, Environments: tt.envs,
				KeyID: tt.device.KeyID(), Now: now, Roots: []*appattest.Root{appattest.AppleRoot(), ca.Root()},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key.ID, tt.device.KeyID()) || !key.PublicKey.Equal(&tt.device.Key.PublicKey) || key.AppID != testAppID ||
				key.Environment != tt.device.Environment || key.Root != appattesttest.RootName || !bytes.Equal(key.Receipt, spec.Receipt) || key.Certificate == nil {
				t.Fatalf("key = %+v", key)
			}
			if tt.policy != bytes.Equal(key.KeyPolicy, appattesttest.MacKeyPolicy) || tt.policy != (key.KeyPolicy != nil) {
				t.Errorf("key policy %x, want present=%v", key.KeyPolicy, tt.policy)
			}
			if tt.ext != (key.Extensions != nil) {
				t.Fatalf("extensions %v, want present=%v", key.Extensions, tt.ext)
			}
			if key.Extensions != nil && spec.Extensions != nil && len(spec.Extensions) > 1 {
				cat, ok1 := key.Extensions.ValidationCategory()
				ver, ok2 := key.Extensions.BundleVersion()
				if cat != 1 || ver != "1" || !ok1 || !ok2 || !bytes.Equal(key.Extensions.Raw, spec.Extensions) {
					t.Errorf("extensions: category %d %v, version %q %v, raw %x", cat, ok1, ver, ok2, key.Extensions.Raw)
				}
			}
		})
	}
}

// refusal is an object (or options) in which exactly one check fails.
type refusal struct {
	name   string
	object []byte
	opts   appattest.AttestationOptions
	want   error
}

// refusalFixture makes refusals from a good 2026-shape object by
// changing one thing.
type refusalFixture struct {
	t                 testing.TB
	ca                *appattesttest.CA
	now               time.Time
	device, devDevice *appattesttest.Device
	other             *ecdsa.PrivateKey
	good, otherCA     []byte
	otherHash         []byte
}

func newRefusalFixture(t testing.TB) *refusalFixture {
	f := &refusalFixture{t: t, ca: newCA(t), now: time.Now(), device: newDevice(t, appattest.Production),
		devDevice: newDevice(t, appattest.Development), other: newKey(t, elliptic.P256())}
	f.good = issue(t, f.ca, f.template())
	f.otherCA = issue(t, newCA(t), f.template())
	h := sha256.Sum256([]byte("other"))
	f.otherHash = h[:]
	return f
}

func (f *refusalFixture) template() appattesttest.Attestation {
	return f.device.Template2026(clientDataHash, f.now)
}

// spec issues the good object with one field of its spec changed.
func (f *refusalFixture) spec(edit func(*appattesttest.Attestation)) []byte {
	a := f.template()
	edit(&a)
	return issue(f.t, f.ca, a)
}

// raw changes the good object after it is issued.
func (f *refusalFixture) raw(edit func(*appattesttest.Object)) []byte {
	return editObject(f.t, f.good, edit)
}

// opts are the options the good object verifies with, with one changed.
func (f *refusalFixture) opts(edit func(*appattest.AttestationOptions)) appattest.AttestationOptions {
	o := appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Now: f.now, Roots: []*appattest.Root{f.ca.Root()}}
	if edit != nil {
		edit(&o)
	}
	return o
}

// structureRefusals fail the checks of the object's layout.
func (f *refusalFixture) structureRefusals() []refusal {
	return []refusal{
		// bad_format
		{"not CBOR", []byte("hello"), f.opts(nil), appattest.ErrBadFormat},
		{"empty", nil, f.opts(nil), appattest.ErrBadFormat},
		{"a CBOR array", []byte{0x80}, f.opts(nil), appattest.ErrBadFormat},
		{"trailing bytes after the object", append(bytes.Clone(f.good), 0), f.opts(nil), appattest.ErrBadFormat},
		{"fmt packed", f.spec(func(a *appattesttest.Attestation) { a.Format = "packed" }), f.opts(nil), appattest.ErrBadFormat},
		{"no receipt", f.spec(func(a *appattesttest.Attestation) { a.Receipt = nil }), f.opts(nil), appattest.ErrBadFormat},
		{"one certificate", f.raw(func(o *appattesttest.Object) { o.X5C = o.X5C[:1] }), f.opts(nil), appattest.ErrBadFormat},
		{"five certificates", f.raw(func(o *appattesttest.Object) { o.X5C = append(o.X5C, o.X5C[1], o.X5C[1], o.X5C[1]) }), f.opts(nil), appattest.ErrBadFormat},
		{"too large", f.spec(func(a *appattesttest.Attestation) { a.Receipt = make([]byte, appattest.MaxAttestationSize) }), f.opts(nil), appattest.ErrBadFormat},
		{"a duplicate key", duplicateFmt(f.good), f.opts(nil), appattest.ErrBadFormat},
		// bad_auth_data
		{"authData too short", f.raw(func(o *appattesttest.Object) { o.AuthData = o.AuthData[:54] }), f.opts(nil), appattest.ErrBadAuthData},
		{"credential id of 31 bytes", f.spec(func(a *appattesttest.Attestation) { a.CredentialID = a.CredentialID[:31] }), f.opts(nil), appattest.ErrBadAuthData},
		{"credential id past the end", f.raw(func(o *appattesttest.Object) { o.AuthData = o.AuthData[:70] }), f.opts(nil), appattest.ErrBadAuthData},
		{"no COSE key", f.spec(func(a *appattesttest.Attestation) { a.COSEKey, a.Extensions = []byte{}, nil }), f.opts(nil), appattest.ErrBadAuthData},
		{"a truncated COSE key", f.spec(func(a *appattesttest.Attestation) { a.COSEKey, a.Extensions = coseOf(a.CredentialKey)[:40], nil }), f.opts(nil), appattest.ErrBadAuthData},
		{"a COSE key of kty OKP", f.spec(func(a *appattesttest.Attestation) { a.COSEKey = editCOSE(coseOf(a.CredentialKey), 2, 0x01) }), f.opts(nil), appattest.ErrBadAuthData},
		{"a COSE key of alg ES384", f.spec(func(a *appattesttest.Attestation) { a.COSEKey = editCOSE(coseOf(a.CredentialKey), 4, 0x38, 0x22) }), f.opts(nil), appattest.ErrBadAuthData},
		{"a COSE key with another label", f.spec(func(a *appattesttest.Attestation) {
			a.COSEKey = append(editCOSE(coseOf(a.CredentialKey), 0, 0xa6), 0x04, 0x01)
		}), f.opts(nil), appattest.ErrBadAuthData},
		{"bytes after the COSE key that are not a map", f.spec(func(a *appattesttest.Attestation) { a.Extensions = []byte{0x01} }), f.opts(nil), appattest.ErrBadAuthData},
		{"two maps after the COSE key", f.spec(func(a *appattesttest.Attestation) { a.Extensions = append(bytes.Clone(a.Extensions), 0xa0) }), f.opts(nil), appattest.ErrBadAuthData},
		{"a truncated extensions map", f.spec(func(a *appattesttest.Attestation) { a.Extensions = a.Extensions[:len(a.Extensions)-1] }), f.opts(nil), appattest.ErrBadAuthData},
		{"an extensions map with an integer key", f.spec(func(a *appattesttest.Attestation) { a.Extensions = []byte{0xa1, 0x01, 0x02} }), f.opts(nil), appattest.ErrBadAuthData},
		{"an extensions map with a duplicate key", f.spec(func(a *appattesttest.Attestation) { a.Extensions = []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02} }), f.opts(nil), appattest.ErrBadAuthData},
	}
}

// bindingRefusals fail the checks that bind the object to the app, the
// key, the challenge and the root.
func (f *refusalFixture) bindingRefusals() []refusal {
	return []refusal{
		// bad_app_id
		{"another app's rpIdHash", f.spec(func(a *appattesttest.Attestation) { a.RPIDHash = f.otherHash }), f.opts(nil), appattest.ErrBadAppID},
		{"the app not accepted", f.good, f.opts(func(o *appattest.AttestationOptions) { o.AppIDs = []string{"ABCDE12345.com.example.other"} }), appattest.ErrBadAppID},
		// bad_counter
		{"counter 1", f.spec(func(a *appattesttest.Attestation) { a.Counter = 1 }), f.opts(nil), appattest.ErrBadCounter},
		// bad_aaguid
		{"an unknown aaguid", f.spec(func(a *appattesttest.Attestation) { a.AAGUID = []byte("appattestxxxxxxx") }), f.opts(nil), appattest.ErrBadAAGUID},
		// bad_environment
		{"production, development accepted", f.good, f.opts(func(o *appattest.AttestationOptions) { o.Environments = []appattest.Environment{appattest.Development} }), appattest.ErrBadEnvironment},
		{"development, by default", issue(f.t, f.ca, f.devDevice.Template(clientDataHash, f.now)), f.opts(nil), appattest.ErrBadEnvironment},
		// bad_key_id
		{"credential id of another key", f.spec(func(a *appattesttest.Attestation) { a.CredentialID = f.otherHash }), f.opts(nil), appattest.ErrBadKeyID},
		{"another key certified", f.spec(func(a *appattesttest.Attestation) { a.CertifiedKey = &f.other.PublicKey }), f.opts(nil), appattest.ErrBadKeyID},
		{"not the key id the client sent", f.good, f.opts(func(o *appattest.AttestationOptions) { o.KeyID = f.otherHash }), appattest.ErrBadKeyID},
		// bad_public_key
		{"another key in the COSE key", f.spec(func(a *appattesttest.Attestation) { a.CredentialKey = &f.other.PublicKey }), f.opts(nil), appattest.ErrBadPublicKey},
		// bad_nonce
		{"another clientDataHash", f.good, f.opts(func(o *appattest.AttestationOptions) { o.ClientDataHash = f.otherHash }), appattest.ErrBadNonce},
		{"another nonce certified", f.spec(func(a *appattesttest.Attestation) { a.Nonce = f.otherHash }), f.opts(nil), appattest.ErrBadNonce},
		{"no nonce extension", f.spec(func(a *appattesttest.Attestation) { a.OmitNonce = true }), f.opts(nil), appattest.ErrBadNonce},
		{"a nonce extension without its wrapping", f.spec(func(a *appattesttest.Attestation) { a.NonceExtension = append([]byte{0x04, 0x20}, f.otherHash...) }), f.opts(nil), appattest.ErrBadNonce},
		{"a 31-byte nonce", f.spec(func(a *appattesttest.Attestation) {
			a.NonceExtension = append([]byte{0x30, 0x23, 0xa1, 0x21, 0x04, 0x1f}, f.otherHash[:31]...)
		}), f.opts(nil), appattest.ErrBadNonce},
		// expired
		{"a minute after the leaf expired", f.good, f.opts(func(o *appattest.AttestationOptions) {
			o.Now = f.now.Add(appattesttest.DefaultLeafLifetime + time.Minute)
		}), appattest.ErrExpired},
		{"a minute before the leaf is valid", f.good, f.opts(func(o *appattest.AttestationOptions) { o.Now = f.now.Add(-2 * time.Minute) }), appattest.ErrExpired},
		// bad_chain
		{"another CA", f.otherCA, f.opts(nil), appattest.ErrBadChain},
		{"Apple's root only (the default)", f.good, f.opts(func(o *appattest.AttestationOptions) { o.Roots = nil }), appattest.ErrBadChain},
		{"another CA's intermediate", f.raw(func(o *appattesttest.Object) { o.X5C[1] = mustParse(f.t, f.otherCA).X5C[1] }), f.opts(nil), appattest.ErrBadChain},
		{"the certificates swapped", f.raw(func(o *appattesttest.Object) { o.X5C[0], o.X5C[1] = o.X5C[1], o.X5C[0] }), f.opts(nil), appattest.ErrBadChain},
		{"a leaf that does not parse", f.raw(func(o *appattesttest.Object) { o.X5C[0] = o.X5C[0][:100] }), f.opts(nil), appattest.ErrBadChain},
		{"a P-384 key certified", f.spec(func(a *appattesttest.Attestation) { a.CertifiedKey = &newKey(f.t, elliptic.P384()).PublicKey }), f.opts(nil), appattest.ErrBadChain},
		{"a bit of the leaf's signature", f.raw(func(o *appattesttest.Object) { o.X5C[0] = lastBit(bytes.Clone(o.X5C[0])) }), f.opts(nil), appattest.ErrBadChain},
	}
}

// TestVerifyAttestationRefuses: for every check, an object (or options)
// in which only that check fails is refused with that check's reason.
func TestVerifyAttestationRefuses(t *testing.T) {
	t.Parallel()
	f := newRefusalFixture(t)
	for _, tt := range append(f.structureRefusals(), f.bindingRefusals()...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := appattest.VerifyAttestation(tt.object, tt.opts)
			if !errors.Is(err, tt.want) || key != nil {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var e *appattest.Error
			if !errors.As(err, &e) || e.Reason != appattest.Reason(err) || !appattest.Rejected(err) || !strings.HasPrefix(err.Error(), "app attest: ") {
				t.Fatalf("err %v: not an *Error with its reason", err)
			}
		})
	}
}

// TestVerifyAttestationMisuse: a caller's mistake is an error, not a
// refusal of the object.
func TestVerifyAttestationMisuse(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	object := issue(t, ca, newDevice(t, appattest.Production).Template2026(clientDataHash, time.Now()))
	fake := *ca.Root()
	fake.Name = appattest.AppleRootName
	for _, tt := range []struct {
		name string
		opts appattest.AttestationOptions
	}{
		{"no app id", appattest.AttestationOptions{ClientDataHash: clientDataHash, Roots: []*appattest.Root{ca.Root()}}},
		{"no clientDataHash", appattest.AttestationOptions{AppIDs: []string{testAppID}, Roots: []*appattest.Root{ca.Root()}}},
		{"an unknown environment", appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Environments: []appattest.Environment{"staging"}}},
		{"a root without a name", appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Roots: []*appattest.Root{{Certificate: ca.Root().Certificate}}}},
		{"a root without a certificate", appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Roots: []*appattest.Root{{Name: "x"}}}},
		{"another root named apple", appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Roots: []*appattest.Root{&fake}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := appattest.VerifyAttestation(object, tt.opts)
			if err == nil || appattest.Rejected(err) || appattest.Reason(err) != "error" {
				t.Fatalf("err = %v (reason %q), want a usage error", err, appattest.Reason(err))
			}
		})
	}
}

// TestVerifyAttestationDefaultNow: a zero Now is the current time.
func TestVerifyAttestationDefaultNow(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	d := newDevice(t, appattest.Production)
	opts := appattest.AttestationOptions{AppIDs: []string{testAppID}, ClientDataHash: clientDataHash, Roots: []*appattest.Root{ca.Root()}}
	if _, err := appattest.VerifyAttestation(issue(t, ca, d.Template(clientDataHash, time.Now())), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := appattest.VerifyAttestation(issue(t, ca, d.Template(clientDataHash, time.Now().Add(-100*time.Hour))), opts); !errors.Is(err, appattest.ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
}

func mustParse(t testing.TB, object []byte) *appattesttest.Object {
	t.Helper()
	o, err := appattesttest.ParseObject(object)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// coseOf is Apple's COSE encoding of pub.
func coseOf(pub *ecdsa.PublicKey) []byte { return appattesttest.COSEKey(pub) }

// editCOSE replaces the bytes of cose at i with b (same length or not).
func editCOSE(cose []byte, i int, b ...byte) []byte {
	out := append(bytes.Clone(cose[:i]), b...)
	return append(out, cose[i+1:]...)
}

// duplicateFmt adds a second "fmt" to the object's map.
func duplicateFmt(object []byte) []byte {
	out := []byte{0xa4, 0x63, 'f', 'm', 't', 0x60}
	return append(out, object[1:]...)
}

// TestAttestedKey: AttestedKey makes every check of VerifyAttestation
// but the nonce's: the refusals of every other check are the same, the
// nonce's pass with the certified key, and no clientDataHash is needed.
func TestAttestedKey(t *testing.T) {
	t.Parallel()
	f := newRefusalFixture(t)
	for _, tt := range append(f.structureRefusals(), f.bindingRefusals()...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := appattest.AttestedKey(tt.object, tt.opts)
			if tt.want != appattest.ErrBadNonce {
				if !errors.Is(err, tt.want) || key != nil {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil || key == nil || !key.PublicKey.Equal(&f.device.Key.PublicKey) {
				t.Fatalf("AttestedKey = %v, %v; want the device's key: the nonce is not checked", key, err)
			}
		})
	}
	key, err := appattest.AttestedKey(f.good, f.opts(func(o *appattest.AttestationOptions) { o.ClientDataHash = nil }))
	if err != nil || !bytes.Equal(key.ID, f.device.KeyID()) {
		t.Fatalf("AttestedKey without a clientDataHash = %v, %v", key, err)
	}
	if _, err := appattest.VerifyAttestation(f.good, f.opts(func(o *appattest.AttestationOptions) { o.ClientDataHash = nil })); err == nil || appattest.Rejected(err) {
		t.Fatalf("VerifyAttestation without a clientDataHash = %v, want a caller's error", err)
	}
}
