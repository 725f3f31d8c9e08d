package header

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint returns a short, non-reversible name for a token or header
// value, safe to log: the first 12 hex digits of its SHA-256. Never log the
// token itself.
func Fingerprint[T ~string | ~[]byte](token T) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}
