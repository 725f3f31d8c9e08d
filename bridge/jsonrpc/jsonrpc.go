// Package jsonrpc implements the newline-delimited "JSON-RPC lite" that
// codex app-server speaks and attestd serves: JSON-RPC 2.0 shapes, one
// message per line, with the "jsonrpc" member optional, ids that are
// integers of any size or strings echoed byte for byte, and no batches.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/attestd/attestd/bridge/internal/jsonscan"
)

// ID is a request id exactly as it appeared on the wire (a JSON integer or
// string), so that it can be echoed unchanged whatever its size. The zero
// ID is JSON null, used when a request's id could not be read.
type ID struct{ raw string }

// IntID returns the ID for an integer.
func IntID(n int64) ID { return ID{raw: fmt.Sprint(n)} }

// StringID returns the ID for a string.
func StringID(s string) ID {
	b, _ := json.Marshal(s)
	return ID{raw: string(b)}
}

// IsZero reports whether id is the null id.
func (id ID) IsZero() bool { return id.raw == "" }

// String returns the id's JSON text.
func (id ID) String() string {
	if id.raw == "" {
		return "null"
	}
	return id.raw
}

// MarshalJSON returns the id's original JSON text.
func (id ID) MarshalJSON() ([]byte, error) { return []byte(id.String()), nil }

// parseID validates raw JSON as an id: a string, or a number with no
// fraction or exponent.
func parseID(raw json.RawMessage) (ID, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ID{}, false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ID{}, false
		}
		return ID{raw: string(raw)}, true
	case c == '-' || (c >= '0' && c <= '9'):
		digits := raw
		if c == '-' {
			digits = raw[1:]
		}
		if len(digits) == 0 {
			return ID{}, false
		}
		for _, d := range digits {
			if d < '0' || d > '9' {
				return ID{}, false
			}
		}
		if len(digits) > 1 && digits[0] == '0' {
			return ID{}, false
		}
		return ID{raw: string(raw)}, true
	}
	return ID{}, false
}

// Request is a call (with an id) or a notification (without).
type Request struct {
	ID     ID
	Method string
	// Params is the raw params member; nil when absent.
	Params json.RawMessage
	// IsCall reports whether the request had an id and wants an answer.
	IsCall bool
}

// Response is an answer to a call: exactly one of Result and Error is set.
type Response struct {
	ID     ID
	Result json.RawMessage
	Error  *Error
}

// Message is a decoded line: a *Request or a *Response.
type Message interface{ isMessage() }

func (*Request) isMessage()  {}
func (*Response) isMessage() {}

// Decode parses one line. On failure it returns an *Error carrying the
// standard code, and the id when one could be read, so the caller can
// answer it; the returned ID is the zero ID otherwise.
//
// Member names and string values are compared decoded, never as raw bytes:
// "jsonrpc":"2\u002e0" is "2.0", and a key written "m\u0065thod" is
// "method". Names are matched exactly (case matters).
//
// Repeated names follow the rule of codex app-server's decoder (serde's
// derived Deserialize, which refuses a field named twice, and ignores
// names it does not know): a line that names one of the members a message
// is read by (jsonrpc, id, method, params, result, error; in an error
// object code, message, data) more than once is an invalid request, and
// other members are ignored however often they appear. What params and
// result hold is not looked into here.
func Decode(line []byte) (Message, ID, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, ID{}, fmt.Errorf("%w: empty line", ErrParse)
	}
	if !json.Valid(line) {
		return nil, ID{}, fmt.Errorf("%w: invalid JSON", ErrParse)
	}
	switch line[0] {
	case '[':
		return nil, ID{}, fmt.Errorf("%w: batches are not supported; send one message per line", ErrInvalidRequest)
	case '{':
	default:
		return nil, ID{}, fmt.Errorf("%w: a message must be a JSON object", ErrInvalidRequest)
	}
	var env [numEnvelope]json.RawMessage
	repeated, err := readMembers(line, envelopeNames[:], env[:])
	if err != nil { // cannot happen once json.Valid has passed
		return nil, ID{}, fmt.Errorf("%w: %v", ErrParse, err)
	}
	var id ID
	rawID, hasID := env[memberID], env[memberID] != nil
	// A null id is allowed only in an error answer to a request whose id
	// could not be read, which is how EncodeError(ID{}, …) writes it.
	nullID := hasID && isNull(rawID)
	if hasID && !nullID && repeated != memberID {
		var ok bool
		if id, ok = parseID(rawID); !ok {
			return nil, ID{}, fmt.Errorf("%w: id must be an integer or a string", ErrInvalidRequest)
		}
	}
	if repeated >= 0 {
		return nil, id, fmt.Errorf("%w: member %q appears more than once", ErrInvalidRequest, envelopeNames[repeated])
	}
	if v := env[memberJSONRPC]; v != nil && !jsonscan.Equal(v, "2.0") {
		return nil, id, fmt.Errorf(`%w: jsonrpc must be "2.0" when present`, ErrInvalidRequest)
	}
	if rawMethod := env[memberMethod]; rawMethod != nil {
		if nullID {
			return nil, id, fmt.Errorf("%w: id must be an integer or a string", ErrInvalidRequest)
		}
		method, err := jsonscan.String(rawMethod)
		if err != nil || method == "" {
			return nil, id, fmt.Errorf("%w: method must be a non-empty string", ErrInvalidRequest)
		}
		req := &Request{ID: id, Method: method, IsCall: hasID}
		if p := env[memberParams]; p != nil && !isNull(p) {
			req.Params = bytes.Clone(p)
		}
		return req, id, nil
	}
	rawResult, hasResult := env[memberResult], env[memberResult] != nil
	rawErr, hasErr := env[memberError], env[memberError] != nil
	if nullID && hasResult {
		return nil, id, fmt.Errorf("%w: id must be an integer or a string", ErrInvalidRequest)
	}
	if !hasID || hasResult == hasErr {
		return nil, id, fmt.Errorf("%w: neither a request (method) nor a response (id with result or error)", ErrInvalidRequest)
	}
	resp := &Response{ID: id}
	if hasResult {
		resp.Result = bytes.Clone(rawResult)
	} else {
		e, err := decodeError(rawErr)
		if err != nil {
			return nil, id, fmt.Errorf("%w: error member: %v", ErrInvalidRequest, err)
		}
		resp.Error = e
	}
	return resp, id, nil
}

// The members of a message that Decode reads, by index in envelopeNames.
const (
	memberJSONRPC = iota
	memberID
	memberMethod
	memberParams
	memberResult
	memberError
	numEnvelope
)

var envelopeNames = [numEnvelope]string{"jsonrpc", "id", "method", "params", "result", "error"}

// The members of an error object, by index in errorNames.
const (
	errorCode = iota
	errorMessage
	errorData
	numError
)

var errorNames = [numError]string{"code", "message", "data"}

// readMembers stores the raw value of each member of the object b that
// is named in names at the same index of vals, and returns the index of
// the first name that appears more than once, or -1. b must be valid
// JSON; other members are skipped. The values alias b: a caller that
// keeps one must copy it, since a line reader reuses its buffer. Each
// key is decoded at most once, however many names it is compared with.
func readMembers(b []byte, names []string, vals []json.RawMessage) (repeated int, err error) {
	repeated = -1
	_, err = jsonscan.Object(b, 0, func(b []byte, m jsonscan.Member) bool {
		key := b[m.KeyStart+1 : m.KeyEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			decoded, err := jsonscan.String(b[m.KeyStart:m.KeyEnd])
			if err != nil {
				return true // names no member
			}
			key = []byte(decoded)
		}
		for i, name := range names {
			if string(key) == name {
				if vals[i] != nil && repeated < 0 {
					repeated = i
				}
				vals[i] = b[m.Start:m.End:m.End]
				break
			}
		}
		return true
	})
	return repeated, err
}

// decodeError decodes an error object: an integer code and a string
// message (either missing means zero) and any data, each named at most
// once.
func decodeError(raw json.RawMessage) (*Error, error) {
	if raw[0] != '{' {
		return nil, errors.New("not an object")
	}
	var vals [numError]json.RawMessage
	repeated, err := readMembers(raw, errorNames[:], vals[:])
	if err != nil {
		return nil, err
	}
	if repeated >= 0 {
		return nil, fmt.Errorf("%q appears more than once", errorNames[repeated])
	}
	e := &Error{}
	if c := vals[errorCode]; c != nil && json.Unmarshal(c, &e.Code) != nil {
		return nil, errors.New("code must be an integer")
	}
	if m := vals[errorMessage]; m != nil {
		if e.Message, err = jsonscan.String(m); err != nil {
			return nil, errors.New("message must be a string")
		}
	}
	e.Data = bytes.Clone(vals[errorData])
	return e, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// wireResponse fixes the member order of encoded answers.
type wireResponse struct {
	ID     ID     `json:"id"`
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// marshalLine returns v as JSON followed by a newline. It does not escape
// <, >, & and U+2028/U+2029 as json.Marshal does: json.Marshal applies
// that to the text ID.MarshalJSON returns too, which would change a string
// id such as "<1>" on its way back to the client.
func marshalLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// EncodeResult returns the line answering id with result, newline included.
// A nil result is sent as null.
func EncodeResult(id ID, result any) ([]byte, error) {
	if result == nil {
		// wireResponse omits a nil result, which would leave an answer
		// with neither result nor error.
		result = json.RawMessage("null")
	}
	b, err := marshalLine(wireResponse{ID: id, Result: result})
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return b, nil
}

// EncodeError returns the line answering id with err, newline included. An
// err that is not an *Error is sent as an internal error.
func EncodeError(id ID, err error) []byte {
	b, mErr := marshalLine(wireResponse{ID: id, Error: AsError(err)})
	if mErr != nil { // only if Data is not valid JSON
		b, _ = marshalLine(wireResponse{ID: id, Error: &Error{Code: CodeInternal, Message: "cannot encode error"}})
	}
	return b
}

// EncodeRequest returns a request line, newline included. A zero id makes
// a notification.
func EncodeRequest(id ID, method string, params any) ([]byte, error) {
	type call struct {
		ID     *ID    `json:"id,omitempty"`
		Method string `json:"method"`
		Params any    `json:"params,omitempty"`
	}
	c := call{Method: method, Params: params}
	if !id.IsZero() {
		c.ID = &id
	}
	b, err := marshalLine(c)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}
