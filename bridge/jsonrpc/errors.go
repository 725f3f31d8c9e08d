package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Standard JSON-RPC error codes, and the application code attestd uses for
// attestation failures.
const (
	CodeParse          = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
	// CodeAttestation marks a failure to produce a token; data.reason says
	// why (see package provider) and data.dcErrorCode carries Apple's code.
	CodeAttestation = -32000
	// CodeRequestTooLarge marks a line over the size limit; the connection
	// is closed after it is sent.
	CodeRequestTooLarge = -32001
)

// Error is a JSON-RPC error object. It is also a Go error; the sentinel
// values below are matched by code with errors.Is.
type Error struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Sentinel errors, one per code; wrap them with detail:
// fmt.Errorf("%w: %q", ErrMethodNotFound, method).
var (
	ErrParse           = &Error{Code: CodeParse, Message: "parse error"}
	ErrInvalidRequest  = &Error{Code: CodeInvalidRequest, Message: "invalid request"}
	ErrMethodNotFound  = &Error{Code: CodeMethodNotFound, Message: "method not found"}
	ErrInvalidParams   = &Error{Code: CodeInvalidParams, Message: "invalid params"}
	ErrInternal        = &Error{Code: CodeInternal, Message: "internal error"}
	ErrAttestation     = &Error{Code: CodeAttestation, Message: "attestation failed"}
	ErrRequestTooLarge = &Error{Code: CodeRequestTooLarge, Message: "request too large"}
)

func (e *Error) Error() string { return e.Message }

// Is matches errors with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// NewError returns an error with code and message, and data marshalled as
// JSON when non-nil.
func NewError(code int64, message string, data any) *Error {
	e := &Error{Code: code, Message: message}
	if data != nil {
		if b, err := json.Marshal(data); err == nil {
			e.Data = b
		}
	}
	return e
}

// AsError converts err to a wire error: an *Error in the chain keeps its code
// and data, and the message becomes err's full text so wrapped detail is
// kept; any other error becomes an internal error.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		out := *e
		out.Message = err.Error()
		return &out
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("internal error: %v", err)}
}
