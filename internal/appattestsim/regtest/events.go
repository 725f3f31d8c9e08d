package regtest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Events is a slog.Handler that sends each record's message on a
// channel, so a test can wait for an App Attest provider's events (key
// registered, key revoked, …) instead of sleeping.
type Events struct{ msgs chan string }

// NewEvents returns an Events that keeps up to 256 messages nobody has
// waited for yet; past that, new ones are dropped rather than block the
// provider.
func NewEvents() Events { return Events{msgs: make(chan string, 256)} }

// Enabled implements slog.Handler.
func (e Events) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (e Events) Handle(_ context.Context, r slog.Record) error {
	select {
	case e.msgs <- r.Message:
	default: // a test that stopped listening must not block the provider
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (e Events) WithAttrs([]slog.Attr) slog.Handler { return e }

// WithGroup implements slog.Handler.
func (e Events) WithGroup(string) slog.Handler { return e }

// Wait waits for a message starting with prefix, failing the test after
// patience.
func (e Events) Wait(t testing.TB, prefix string, patience time.Duration) {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case m := <-e.msgs:
			if strings.HasPrefix(m, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no log line %q within %v", prefix, patience)
		}
	}
}
