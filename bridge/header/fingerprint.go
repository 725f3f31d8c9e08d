package header

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint returns a short, non-reversible name for a secret, safe to
// log: the first 12 hex digits of its SHA-256. attestd fingerprints the
// whole header value ("v1.…") everywhere it logs one, so log lines from the
// pool, the server and the bridge match "attestd decode" output. Never log
// the token itself.
func Fingerprint[T ~string | ~[]byte](token T) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}
