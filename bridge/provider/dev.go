package provider

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// DevTokenLen is the size of a development token.
const DevTokenLen = 32

// Dev is the development provider: 32 random bytes of kind "dev". It works
// on every OS and proves nothing about the device; verify rejects its tokens
// unless told to allow them.
//
// Latency makes each call take that long, as a real provider would
// (DeviceCheck takes a few hundred milliseconds), so that the cold path of
// the pool, the bridge and the probe can run end to end anywhere. The zero
// value answers at once.
type Dev struct {
	Latency time.Duration
}

var _ Provider = Dev{}

// Name returns "dev", the kind of its tokens.
func (Dev) Name() string { return header.KindDev }

// Generate returns a token of 32 random bytes after Latency, or ctx's
// error if ctx ends first.
func (d Dev) Generate(ctx context.Context) (Answer, error) {
	tok, err := d.token(ctx)
	if err != nil {
		return Answer{}, err
	}
	return Answer{Kind: header.KindDev, Token: tok}, nil
}

func (d Dev) token(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.Latency > 0 {
		t := time.NewTimer(d.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("dev provider: %w", ctx.Err())
		}
	}
	b := make([]byte, DevTokenLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("dev provider: %w", err)
	}
	return b, nil
}
