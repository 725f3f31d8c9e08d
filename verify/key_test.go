package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePrivateKey(t *testing.T) {
	key := newKey(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsader, _ := x509.MarshalPKCS8PrivateKey(rsaKey)

	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	good := map[string][]byte{
		".p8 file":            p8,
		".p8 with CRLF":       []byte(string(p8[:len(p8)-1]) + "\r\n"),
		"SEC 1 PEM":           pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"bare base64 body":    []byte(base64.StdEncoding.EncodeToString(pkcs8)),
		"base64 across lines": []byte(base64.StdEncoding.EncodeToString(pkcs8)[:40] + "\n" + base64.StdEncoding.EncodeToString(pkcs8)[40:] + "\n"),
	}
	for name, data := range good {
		got, err := ParsePrivateKey(data)
		if err != nil || !got.Equal(key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string][]byte{
		"empty":  nil,
		"junk":   []byte("not a key"),
		"P-384":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384der}),
		"RSA":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsader}),
		"public": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}),
	}
	for name, data := range bad {
		if _, err := ParsePrivateKey(data); !errors.Is(err, ErrKey) {
			t.Errorf("%s: error %v, want ErrKey", name, err)
		}
	}
}

func TestLoadPrivateKey(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(dir, "AuthKey_ABC123DEFG.p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadPrivateKey(path); err != nil || !got.Equal(key) {
		t.Errorf("LoadPrivateKey: %v", err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing.p8")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// A key file others can write to is refused (whoever can write it can
// swap the team's key); one every user can read is loaded, with an error
// the caller can log or ignore. Each error names the file and its mode.
func TestLoadPrivateKeyPermissions(t *testing.T) {
	key := newKey(t)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, tt := range []struct {
		mode os.FileMode
		want error // nil: loaded without a word
		key  bool  // the key is returned
	}{
		{0o600, nil, true},
		{0o400, nil, true},
		{0o640, nil, true},
		{0o644, ErrKeyReadable, true},
		{0o604, ErrKeyReadable, true},
		{0o620, ErrKeyWritable, false},
		{0o602, ErrKeyWritable, false},
		{0o666, ErrKeyWritable, false},
	} {
		path := filepath.Join(t.TempDir(), "AuthKey_ABC123DEFG.p8")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		got, err := LoadPrivateKey(path)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) || (got != nil) != tt.key || (got != nil && !got.Equal(key)) {
			t.Errorf("mode %v: key %v, error %v; want key %v, error %v", tt.mode, got != nil, err, tt.key, tt.want)
			continue
		}
		var kfe *KeyFileError
		if err != nil && (!errors.As(err, &kfe) || kfe.Path != path || kfe.Mode != tt.mode ||
			!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("%04o", tt.mode))) {
			t.Errorf("mode %v: error %q does not name the file and its mode", tt.mode, err)
		}
	}
}
