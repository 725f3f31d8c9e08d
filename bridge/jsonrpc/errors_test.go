package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestCodes(t *testing.T) {
	// The standard codes are part of the wire protocol; pin them.
	tests := []struct {
		err  *Error
		code int64
		msg  string
	}{
		{ErrParse, -32700, "parse error"},
		{ErrInvalidRequest, -32600, "invalid request"},
		{ErrMethodNotFound, -32601, "method not found"},
		{ErrInvalidParams, -32602, "invalid params"},
		{ErrInternal, -32603, "internal error"},
		{ErrAttestation, -32000, "attestation failed"},
		{ErrRequestTooLarge, -32001, "request too large"},
	}
	for _, tt := range tests {
		if tt.err.Code != tt.code || tt.err.Message != tt.msg || tt.err.Error() != tt.msg {
			t.Errorf("%+v, want code %d message %q", tt.err, tt.code, tt.msg)
		}
		for _, other := range tests {
			if got := errors.Is(tt.err, other.err); got != (tt.code == other.code) {
				t.Errorf("errors.Is(%v, %v) = %v", tt.err, other.err, got)
			}
		}
	}
}

func TestErrorIs(t *testing.T) {
	wrapped := fmt.Errorf("serve: %w", fmt.Errorf("%w: %q", ErrMethodNotFound, "x"))
	if !errors.Is(wrapped, ErrMethodNotFound) {
		t.Errorf("errors.Is(%v, ErrMethodNotFound) = false", wrapped)
	}
	if errors.Is(wrapped, ErrInvalidParams) {
		t.Errorf("errors.Is(%v, ErrInvalidParams) = true", wrapped)
	}
	// Is matches by code, so an error built elsewhere with a standard code
	// matches its sentinel.
	if e := NewError(CodeInvalidParams, "params must be an object", nil); !errors.Is(e, ErrInvalidParams) {
		t.Errorf("errors.Is(%v, ErrInvalidParams) = false", e)
	}
	if errors.Is(errors.New("invalid params"), ErrInvalidParams) {
		t.Error("a plain error with the same text matches ErrInvalidParams")
	}
	if !errors.Is(ErrLineTooLong, ErrRequestTooLarge) {
		t.Error("ErrLineTooLong does not match ErrRequestTooLarge")
	}
}

func TestNewError(t *testing.T) {
	e := NewError(CodeAttestation, "attestation failed", map[string]any{"reason": "no_gui_session", "dcErrorCode": 1})
	if e.Code != CodeAttestation || e.Message != "attestation failed" || string(e.Data) != `{"dcErrorCode":1,"reason":"no_gui_session"}` {
		t.Errorf("NewError = %+v, data %s", e, e.Data)
	}
	if e := NewError(1, "m", nil); e.Data != nil {
		t.Errorf("NewError(nil data).Data = %s, want nil", e.Data)
	}
	if e := NewError(1, "m", func() {}); e.Data != nil {
		t.Errorf("NewError(func data).Data = %s, want nil", e.Data)
	}
}

func TestAsError(t *testing.T) {
	data := NewError(CodeAttestation, "attestation failed", map[string]string{"reason": "timeout"})
	tests := []struct {
		name string
		err  error
		code int64
		msg  string
		data string
	}{
		{"sentinel", ErrMethodNotFound, CodeMethodNotFound, "method not found", ""},
		{"wrapped sentinel", fmt.Errorf("%w: %q", ErrMethodNotFound, "x/y"), CodeMethodNotFound, `method not found: "x/y"`, ""},
		{"twice wrapped", fmt.Errorf("call: %w", fmt.Errorf("%w: want object", ErrInvalidParams)), CodeInvalidParams, "call: invalid params: want object", ""},
		{"data kept", fmt.Errorf("generate: %w", data), CodeAttestation, "generate: attestation failed", `{"reason":"timeout"}`},
		{"joined", errors.Join(errors.New("first"), ErrInternal), CodeInternal, "first\ninternal error", ""},
		{"plain", errors.New("disk on fire"), CodeInternal, "internal error: disk on fire", ""},
		{"plain wrapped", fmt.Errorf("read: %w", errors.New("reset")), CodeInternal, "internal error: read: reset", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsError(tt.err)
			if got.Code != tt.code || got.Message != tt.msg || string(got.Data) != tt.data {
				t.Errorf("AsError = {%d %q %s}, want {%d %q %s}", got.Code, got.Message, got.Data, tt.code, tt.msg, tt.data)
			}
		})
	}
	// AsError copies: the sentinels keep their text.
	if ErrMethodNotFound.Message != "method not found" || data.Message != "attestation failed" {
		t.Errorf("AsError changed its input: %q, %q", ErrMethodNotFound.Message, data.Message)
	}
	if b, err := json.Marshal(AsError(ErrParse)); err != nil || string(b) != `{"code":-32700,"message":"parse error"}` {
		t.Errorf("json.Marshal(AsError(ErrParse)) = %s, %v", b, err)
	}
}
