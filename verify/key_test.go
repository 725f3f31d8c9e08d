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
	"io/fs"
	"os"
	"path/filepath"
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
