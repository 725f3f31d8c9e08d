package provider

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/attestd/attestd/bridge/header"
)

// DevTokenLen is the size of a development token.
const DevTokenLen = 32

// Dev is the development provider: 32 random bytes of kind "dev". It works
// on every OS and proves nothing about the device; verify rejects its tokens
// unless told to allow them.
type Dev struct{}

var _ Provider = Dev{}

// Kind returns "dev".
func (Dev) Kind() string { return header.KindDev }

// Generate returns 32 random bytes.
func (Dev) Generate(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := make([]byte, DevTokenLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("dev provider: %w", err)
	}
	return b, nil
}
