package appattest

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// clientDataDomain starts every assertion's client data.
const clientDataDomain = "attestd-aa-v1"

// clientDataHash is what an assertion of the "aa" header signs:
// SHA-256("attestd-aa-v1" ‖ keyID ‖ g as uint64 big-endian Unix
// milliseconds ‖ nonce), recomputed by the server from the header alone.
//
// TODO(header aa): this is PLAN-WAVE2.md's header.AppAttestClientDataHash,
// written here until bridge/header on main has it; then call that and
// drop this.
func clientDataHash(keyID []byte, generatedAt time.Time, nonce []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(clientDataDomain))
	h.Write(keyID)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(generatedAt.UnixMilli())))
	h.Write(nonce)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
