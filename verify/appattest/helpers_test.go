package appattest_test

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// b64 decodes standard base64.
func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipBit flips the low bit of byte i of a copy of b.
func flipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// lastBit flips the last bit of a certificate: of its signature's s.
func lastBit(der []byte) []byte { return flipBit(der, len(der)-1) }

// middleBit flips a bit in the middle of the certificate (its public
// key, for Apple's intermediate).
func middleBit(der []byte) []byte { return flipBit(der, len(der)/2) }
