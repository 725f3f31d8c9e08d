package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrKey means a private key could not be used to sign Apple's
// authorization tokens.
var ErrKey = errors.New("not a P-256 EC private key in PKCS#8 (.p8) form")

// ParsePrivateKey parses the .p8 file Apple hands out for a DeviceCheck
// key: a PEM "PRIVATE KEY" block holding a PKCS#8 P-256 key. It also
// accepts a SEC 1 "EC PRIVATE KEY" block and the bare base64 body of a .p8
// file (as kept in environment variables).
func ParsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		der = block.Bytes
	} else if b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), "")); err == nil {
		der = b
	}
	var key any
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		ec, ecErr := x509.ParseECPrivateKey(der)
		if ecErr != nil {
			return nil, fmt.Errorf("parse private key: %w", ErrKey)
		}
		key = ec
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("parse private key: %w: got %T", ErrKey, key)
	}
	return ec, nil
}

// LoadPrivateKey reads and parses a .p8 key file; see ParsePrivateKey.
func LoadPrivateKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
