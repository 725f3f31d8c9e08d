package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
)

func TestReasonCodeAndHintOf(t *testing.T) {
	dc := &Error{Reason: ReasonUnsupported, Msg: "featureUnsupported", DCCode: 1, HasDCCode: true}
	for _, tc := range []struct {
		name   string
		err    error
		reason string
		code   int
		hasDC  bool
		hint   string
	}{
		{"plain error", errors.New("boom"), ReasonProviderError, 0, false, ""},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), ReasonTimeout, 0, false, ""},
		{"no GUI session, wrapped", fmt.Errorf("generate: %w", ErrNoGUISession), ReasonNoGUISession, 0, false, NoGUISessionHint},
		{"apple code, wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", dc)), ReasonUnsupported, 1, true, ""},
		{"reason beats deadline", &Error{Reason: ReasonShuttingDown, Err: context.DeadlineExceeded}, ReasonShuttingDown, 0, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReasonOf(tc.err); got != tc.reason {
				t.Errorf("ReasonOf = %q, want %q", got, tc.reason)
			}
			code, ok := DCErrorCodeOf(tc.err)
			if ok != tc.hasDC || code != tc.code {
				t.Errorf("DCErrorCodeOf = %d, %v", code, ok)
			}
			if got := hint.Of(tc.err); got != tc.hint {
				t.Errorf("HintOf = %q, want %q", got, tc.hint)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Msg: "generate", Err: errors.New("apple said no")}
	if e.Error() != "generate: apple said no" || !errors.Is(e, e.Err) {
		t.Fatalf("%q", e.Error())
	}
	if (&Error{Err: errors.New("only cause")}).Error() != "only cause" {
		t.Fatal("message without Msg")
	}
}

func TestDevTokensAreRandomAndOfKindDev(t *testing.T) {
	var d Dev
	if d.Name() != header.KindDev {
		t.Fatalf("kind %q", d.Name())
	}
	a, err := d.Generate(context.Background())
	if err != nil || len(a.Token) != DevTokenLen || a.Kind != header.KindDev {
		t.Fatalf("%+v, %v", a, err)
	}
	b, _ := d.Generate(context.Background())
	if string(a.Token) == string(b.Token) {
		t.Fatal("two equal dev tokens")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Generate(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

func TestDevLatency(t *testing.T) {
	d := Dev{Latency: 20 * time.Millisecond}
	start := time.Now()
	if _, err := d.Generate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < d.Latency {
		t.Fatalf("answered after %v, before its latency %v", took, d.Latency)
	}
	// A context that ends during the wait ends the call with its error.
	slow := Dev{Latency: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := slow.Generate(ctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled during the latency: %v", err)
	}
}

func TestFuncAdapter(t *testing.T) {
	var p Provider = Func{K: "dc", F: func(context.Context) ([]byte, error) { return []byte{1}, nil }}
	if b, err := p.Generate(context.Background()); p.Name() != "dc" || err != nil || len(b.Token) != 1 || b.Kind != "dc" {
		t.Fatal("Func does not adapt")
	}
}
