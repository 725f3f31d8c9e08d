package appattest

import (
	"encoding/hex"
	"testing"
	"time"
)

// TestClientDataHashPinned pins the bytes an assertion signs, computed
// apart from this code (Python's hashlib over "attestd-aa-v1" ‖ key id ‖
// g as 8 bytes big-endian ‖ nonce): the server side must compute the same.
func TestClientDataHashPinned(t *testing.T) {
	t.Parallel()
	keyID, nonce := make([]byte, 32), make([]byte, 16)
	for i := range keyID {
		keyID[i] = byte(i + 1)
	}
	for i := range nonce {
		nonce[i] = byte(100 + i)
	}
	g := time.UnixMilli(1_790_000_000_123)
	got := clientDataHash(keyID, g, nonce)
	if want := "20b629a720c57abb8c2c60c0f193de86d0e91d0c23bfa12536dc8e6d2e4b8c4c"; hex.EncodeToString(got[:]) != want {
		t.Fatalf("clientDataHash = %x, want %s", got, want)
	}
}
