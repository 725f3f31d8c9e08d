package appattest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattesttest"
)

// vector is one entry of testdata/vectors.json (see testdata/README.md).
type vector struct {
	Name                string            `json:"name"`
	Source              string            `json:"source"`
	AppID               string            `json:"app_id"`
	Environment         string            `json:"environment"`
	KeyID               string            `json:"key_id_b64"`
	ClientDataHash      string            `json:"client_data_hash_b64"`
	LeafNotBefore       time.Time         `json:"leaf_not_before"`
	LeafNotAfter        time.Time         `json:"leaf_not_after"`
	VerifyNow           time.Time         `json:"verify_now"`
	KeyPolicyPresent    bool              `json:"key_policy_present"`
	Attestation         string            `json:"attestation_b64"`
	AuthDataExtensions  map[string]string `json:"authdata_extensions"`
	Assertions          []vectorAssertion `json:"assertions"`
	ClientDataHashBytes []byte            `json:"-"`
	Object              []byte            `json:"-"`
}

type vectorAssertion struct {
	Assertion      string `json:"assertion_b64"`
	ClientDataHash string `json:"client_data_hash_b64"`
	Counter        uint32 `json:"counter"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 12 {
		t.Fatalf("%d vectors, want at least 12", len(vs))
	}
	for i := range vs {
		vs[i].ClientDataHashBytes = b64(t, vs[i].ClientDataHash)
		vs[i].Object = b64(t, vs[i].Attestation)
	}
	return vs
}

func (v *vector) options() appattest.AttestationOptions {
	return appattest.AttestationOptions{
		AppIDs:         []string{"OTHERTEAM.some.other.app", v.AppID},
		ClientDataHash: v.ClientDataHashBytes,
		Environments:   []appattest.Environment{appattest.Environment(v.Environment)},
		Now:            v.VerifyNow,
	}
}

// TestVectors: every public vector verifies at its verify_now, with what
// its source says, and each of its assertions verifies with the key.
func TestVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			opts := v.options()
			opts.KeyID = b64(t, v.KeyID)
			key, err := appattest.VerifyAttestation(v.Object, opts)
			if err != nil {
				t.Fatalf("VerifyAttestation: %v", err)
			}
			if !bytes.Equal(key.ID, b64(t, v.KeyID)) || key.AppID != v.AppID || string(key.Environment) != v.Environment || key.Root != appattest.AppleRootName || len(key.Receipt) == 0 {
				t.Fatalf("key = id %x, app %q, env %q, root %q, receipt %d bytes", key.ID, key.AppID, key.Environment, key.Root, len(key.Receipt))
			}
			if (key.KeyPolicy != nil) != v.KeyPolicyPresent {
				t.Errorf("key policy %x, want present=%v", key.KeyPolicy, v.KeyPolicyPresent)
			}
			checkExtensions(t, key.Extensions, v.AuthDataExtensions)
			for i, a := range v.Assertions {
				got, err := appattest.VerifyAssertion(b64(t, a.Assertion), key, b64(t, a.ClientDataHash))
				if err != nil {
					t.Fatalf("assertion %d: %v", i, err)
				}
				if got.Counter != a.Counter {
					t.Errorf("assertion %d: counter %d, want %d", i, got.Counter, a.Counter)
				}
			}
		})
	}
}

// checkExtensions compares the decoded map with the vector's ("hex:…"
// for byte strings).
func checkExtensions(t *testing.T, got *appattest.Extensions, want map[string]string) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("extensions %v, want none", got.Values)
		}
		return
	}
	if got == nil {
		t.Fatalf("no extensions, want %v", want)
	}
	w := map[string]any{}
	for k, s := range want {
		if h, ok := strings.CutPrefix(s, "hex:"); ok {
			b, _ := hex.DecodeString(h)
			w[k] = b
		} else {
			w[k] = s
		}
	}
	if !reflect.DeepEqual(got.Values, w) {
		t.Errorf("extensions %v, want %v", got.Values, w)
	}
}

// TestVectorsRefused: every vector is refused a minute outside its
// leaf's window, for another App ID, with one bit flipped in the
// leaf's signature, the nonce (in the certificate, or in the
// clientDataHash), the intermediate, and (assertions) with other client
// data, another App ID or a flipped signature bit.
func TestVectorsRefused(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range vectorMutations(t, &v) {
				_, err := appattest.VerifyAttestation(c.object, c.opts)
				if !errors.Is(err, c.want) {
					t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
				}
			}
			key, err := appattest.VerifyAttestation(v.Object, v.options())
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range v.Assertions {
				obj, cdh := b64(t, a.Assertion), b64(t, a.ClientDataHash)
				other := *key
				other.AppID = "OTHERTEAM.some.other.app"
				sig, ad, err := appattesttest.AssertionParts(obj)
				if err != nil {
					t.Fatal(err)
				}
				sig = bytes.Clone(sig)
				sig[len(sig)-1] ^= 1
				flipped, err := appattesttest.AssertionObject(sig, ad)
				if err != nil {
					t.Fatal(err)
				}
				otherData := sha256.Sum256([]byte("other client data"))
				for _, c := range []struct {
					name   string
					object []byte
					key    *appattest.Key
					cdh    []byte
					want   error
				}{
					{"other client data", obj, key, otherData[:], appattest.ErrBadSignature},
					{"client data hash bit", obj, key, flipBit(cdh, 0), appattest.ErrBadSignature},
					{"other app id", obj, &other, cdh, appattest.ErrBadAppID},
					{"signature bit", flipped, key, cdh, appattest.ErrBadSignature},
				} {
					if _, err := appattest.VerifyAssertion(c.object, c.key, c.cdh); !errors.Is(err, c.want) {
						t.Errorf("assertion %d, %s: err = %v, want %v", i, c.name, err, c.want)
					}
				}
			}
		})
	}
}

type mutation struct {
	name   string
	object []byte
	opts   appattest.AttestationOptions
	want   error
}

func vectorMutations(t *testing.T, v *vector) []mutation {
	t.Helper()
	at := func(now time.Time) appattest.AttestationOptions {
		o := v.options()
		o.Now = now
		return o
	}
	otherApp := v.options()
	otherApp.AppIDs = []string{"OTHERTEAM.some.other.app"}
	otherCDH := v.options()
	otherCDH.ClientDataHash = flipBit(v.ClientDataHashBytes, 0)
	return []mutation{
		{"a minute after the leaf expired", v.Object, at(v.LeafNotAfter.Add(time.Minute)), appattest.ErrExpired},
		{"a minute before the leaf is valid", v.Object, at(v.LeafNotBefore.Add(-time.Minute)), appattest.ErrExpired},
		{"another app id", v.Object, otherApp, appattest.ErrBadAppID},
		{"a bit of clientDataHash", v.Object, otherCDH, appattest.ErrBadNonce},
		{"a bit of the leaf's nonce", editCert(t, v.Object, 0, nonceBit(t, v)), v.options(), appattest.ErrBadNonce},
		{"a bit of the leaf's signature", editCert(t, v.Object, 0, lastBit), v.options(), appattest.ErrBadChain},
		{"a bit of the intermediate's signature", editCert(t, v.Object, 1, lastBit), v.options(), appattest.ErrBadChain},
		{"a bit of the intermediate's key", editCert(t, v.Object, 1, middleBit), v.options(), appattest.ErrBadChain},
	}
}

// editCert applies edit to a copy of certificate i of the object's x5c.
func editCert(t *testing.T, object []byte, i int, edit func([]byte) []byte) []byte {
	t.Helper()
	o, err := appattesttest.ParseObject(object)
	if err != nil {
		t.Fatal(err)
	}
	o.X5C[i] = edit(bytes.Clone(o.X5C[i]))
	b, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nonceBit flips a bit of the nonce inside the leaf (found by value).
func nonceBit(t *testing.T, v *vector) func([]byte) []byte {
	o, err := appattesttest.ParseObject(v.Object)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(o.AuthData)
	h.Write(v.ClientDataHashBytes)
	nonce := h.Sum(nil)
	return func(der []byte) []byte {
		i := bytes.Index(der, nonce)
		if i < 0 {
			t.Fatal("nonce not found in the leaf")
		}
		return flipBit(der, i+31)
	}
}
