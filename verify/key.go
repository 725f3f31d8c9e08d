package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
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

// Errors about a key file's permissions, carried by a *KeyFileError. Test
// with errors.Is.
var (
	// ErrKeyWritable: users other than the owner can write the key file,
	// and so replace the team's key. LoadPrivateKey refuses it.
	ErrKeyWritable = errors.New("key file is writable by group or others")
	// ErrKeyReadable: every user of the machine can read the key file.
	// LoadPrivateKey loads the key all the same and returns this error
	// with it, for the caller to log or ignore.
	ErrKeyReadable = errors.New("key file is readable by every user")
)

// KeyFileError reports a key file whose permissions are too open. It
// unwraps to ErrKeyWritable or ErrKeyReadable.
type KeyFileError struct {
	Path string
	Mode fs.FileMode // the permission bits
	Err  error
}

// Error names the file, its mode and the fix.
func (e *KeyFileError) Error() string {
	return fmt.Sprintf("%s: %v (mode %04o); chmod 600 %s", e.Path, e.Err, uint32(e.Mode), e.Path)
}

// Unwrap returns ErrKeyWritable or ErrKeyReadable.
func (e *KeyFileError) Unwrap() error { return e.Err }

// LoadPrivateKey reads and parses a .p8 key file; see ParsePrivateKey.
// It refuses a file that group or others can write (*KeyFileError,
// ErrKeyWritable). For a file every user can read it returns the key
// and a *KeyFileError wrapping ErrKeyReadable, which the caller may log
// or ignore:
//
//	key, err := verify.LoadPrivateKey(path)
//	if errors.Is(err, verify.ErrKeyReadable) {
//		log.Print(err) // key is set
//	} else if err != nil {
//		log.Fatal(err)
//	}
//
// (Permissions are not checked on Windows.)
func LoadPrivateKey(path string) (*ecdsa.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat() // of the file opened, not of what the path names later
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	mode := info.Mode().Perm()
	windows := runtime.GOOS == "windows"
	if !windows && mode&0o022 != 0 {
		return nil, &KeyFileError{Path: path, Mode: mode, Err: ErrKeyWritable}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !windows && mode&0o004 != 0 {
		return k, &KeyFileError{Path: path, Mode: mode, Err: ErrKeyReadable}
	}
	return k, nil
}

// maxKeyFile bounds what LoadPrivateKey reads; a .p8 file is about 250
// bytes.
const maxKeyFile = 64 << 10
