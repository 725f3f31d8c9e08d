package hint_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/attestd/attestd/bridge/hint"
)

// advised is an error type with a hint field, as provider.Error is.
type advised struct {
	msg, HintText string
	Err           error
}

func (e *advised) Error() string { return e.msg }
func (e *advised) Unwrap() error { return e.Err }
func (e *advised) Hint() string  { return e.HintText }

var _ hint.Hinter = (*advised)(nil)

// valueHinter has a value receiver, which errors.As would also find.
type valueHinter string

func (v valueHinter) Error() string { return "value" }
func (v valueHinter) Hint() string  { return string(v) }

func TestOf(t *testing.T) {
	t.Parallel()
	inner := &advised{msg: "inner", HintText: "do the inner thing"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"no hinter", io.EOF, ""},
		{"hinter", inner, "do the inner thing"},
		{"wrapped by fmt", fmt.Errorf("op: %w", inner), "do the inner thing"},
		{"outer hint first", hint.Wrap(fmt.Errorf("op: %w", inner), "outer"), "outer"},
		{"empty hint skipped", &advised{msg: "outer", Err: inner}, "do the inner thing"},
		{"empty Wrap skipped", hint.Wrap(inner, ""), "do the inner thing"},
		{"only empty hints", &advised{msg: "a", Err: &advised{msg: "b"}}, ""},
		{"value receiver", fmt.Errorf("x: %w", valueHinter("by value")), "by value"},
		{"joined: first with a hint", errors.Join(io.EOF, &advised{msg: "a"}, inner, hint.Wrap(io.EOF, "later")), "do the inner thing"},
		{"multi %w, depth first", fmt.Errorf("%w; %w", fmt.Errorf("a: %w", hint.Wrap(io.EOF, "deep")), inner), "deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := hint.Of(tc.err); got != tc.want {
				t.Errorf("Of(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	t.Parallel()
	if hint.Wrap(nil, "x") != nil {
		t.Error("Wrap(nil) is not nil")
	}
	err := hint.Wrap(io.EOF, "read less")
	if err.Error() != io.EOF.Error() || !errors.Is(err, io.EOF) {
		t.Errorf("Wrap(io.EOF) = %v, want io.EOF's text and chain", err)
	}
	var h hint.Hinter
	if !errors.As(err, &h) || h.Hint() != "read less" {
		t.Errorf("errors.As finds no Hinter with the hint in %v", err)
	}
}

func ExampleOf() {
	err := hint.Wrap(errors.New("socket path /tmp/x is not a socket"), "remove it, or choose another path with --socket")
	err = fmt.Errorf("listen: %w", err)
	fmt.Println("error:", err)
	fmt.Println("hint:", hint.Of(err))
	// Output:
	// error: listen: socket path /tmp/x is not a socket
	// hint: remove it, or choose another path with --socket
}
