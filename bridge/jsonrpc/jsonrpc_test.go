package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		id     string // ID.String()
		method string
		params string // "" when absent or null
		call   bool
	}{
		{name: "int id", line: `{"id":1,"method":"initialize"}`, id: `1`, method: "initialize", call: true},
		{name: "zero id", line: `{"id":0,"method":"m"}`, id: `0`, method: "m", call: true},
		{name: "negative id", line: `{"id":-42,"method":"m"}`, id: `-42`, method: "m", call: true},
		{name: "huge id", line: `{"id":123456789012345678901234567890,"method":"m"}`, id: `123456789012345678901234567890`, method: "m", call: true},
		{name: "huge negative id", line: `{"id":-98765432109876543210987654321,"method":"m"}`, id: `-98765432109876543210987654321`, method: "m", call: true},
		{name: "string id", line: `{"id":"abc","method":"m"}`, id: `"abc"`, method: "m", call: true},
		{name: "empty string id", line: `{"id":"","method":"m"}`, id: `""`, method: "m", call: true},
		{name: "string id escapes kept", line: `{"id":"a\u00e9\"\/","method":"m"}`, id: `"a\u00e9\"\/"`, method: "m", call: true},
		{name: "string id html", line: `{"id":"<a&b>","method":"m"}`, id: `"<a&b>"`, method: "m", call: true},
		{name: "numeric string id", line: `{"id":"1.5e3","method":"m"}`, id: `"1.5e3"`, method: "m", call: true},
		{name: "id after method", line: `{"method":"m","id":7}`, id: `7`, method: "m", call: true},
		{name: "space around", line: " { \"id\" : 7 , \"method\" : \"m\" }\r\n", id: `7`, method: "m", call: true},
		{name: "jsonrpc 2.0", line: `{"jsonrpc":"2.0","id":1,"method":"m"}`, id: `1`, method: "m", call: true},
		{name: "notification", line: `{"method":"initialized"}`, id: `null`, method: "initialized"},
		{name: "notification with params", line: `{"method":"n","params":{"a":1}}`, id: `null`, method: "n", params: `{"a":1}`},
		{name: "params null", line: `{"id":1,"method":"m","params":null}`, id: `1`, method: "m", call: true},
		{name: "params object", line: `{"id":1,"method":"m","params":{"clientInfo":{"name":"x"}}}`, id: `1`, method: "m", params: `{"clientInfo":{"name":"x"}}`, call: true},
		{name: "params array", line: `{"id":1,"method":"m","params":[1,"two"]}`, id: `1`, method: "m", params: `[1,"two"]`, call: true},
		{name: "params empty object", line: `{"id":1,"method":"m","params":{}}`, id: `1`, method: "m", params: `{}`, call: true},
		{name: "unknown members", line: `{"id":1,"method":"m","trace":{"x":1}}`, id: `1`, method: "m", call: true},
		{name: "method with slash", line: `{"id":1,"method":"attestation/generate"}`, id: `1`, method: "attestation/generate", call: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, id, err := Decode([]byte(tt.line))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.line, err)
			}
			req, ok := msg.(*Request)
			if !ok {
				t.Fatalf("Decode(%s) = %T, want *Request", tt.line, msg)
			}
			if id != req.ID {
				t.Errorf("returned id %s, Request.ID %s", id, req.ID)
			}
			if got := req.ID.String(); got != tt.id {
				t.Errorf("ID = %s, want %s", got, tt.id)
			}
			if req.ID.IsZero() != (tt.id == "null") {
				t.Errorf("ID.IsZero() = %v for %s", req.ID.IsZero(), tt.id)
			}
			if req.Method != tt.method {
				t.Errorf("Method = %q, want %q", req.Method, tt.method)
			}
			if string(req.Params) != tt.params {
				t.Errorf("Params = %q, want %q", req.Params, tt.params)
			}
			if tt.params == "" && req.Params != nil {
				t.Errorf("Params = %q, want nil", req.Params)
			}
			if req.IsCall != tt.call {
				t.Errorf("IsCall = %v, want %v", req.IsCall, tt.call)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		id     string
		result string
		err    *Error
	}{
		{name: "result", line: `{"id":1,"result":{"token":"v1.x"}}`, id: `1`, result: `{"token":"v1.x"}`},
		{name: "null result", line: `{"id":"a","result":null}`, id: `"a"`, result: `null`},
		{name: "jsonrpc 2.0", line: `{"jsonrpc":"2.0","id":2,"result":[]}`, id: `2`, result: `[]`},
		{
			name: "error",
			line: `{"id":3,"error":{"code":-32601,"message":"method not found: \"x\""}}`,
			id:   `3`,
			err:  &Error{Code: CodeMethodNotFound, Message: `method not found: "x"`},
		},
		{
			name: "error with data",
			line: `{"id":4,"error":{"code":-32000,"message":"attestation failed","data":{"reason":"timeout"}}}`,
			id:   `4`,
			err:  &Error{Code: CodeAttestation, Message: "attestation failed", Data: json.RawMessage(`{"reason":"timeout"}`)},
		},
		{
			// A server that could not read a request's id answers with a
			// null id, as the server side of this package does.
			name: "error with null id",
			line: `{"id":null,"error":{"code":-32700,"message":"parse error"}}`,
			id:   `null`,
			err:  &Error{Code: CodeParse, Message: "parse error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, id, err := Decode([]byte(tt.line))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.line, err)
			}
			resp, ok := msg.(*Response)
			if !ok {
				t.Fatalf("Decode(%s) = %T, want *Response", tt.line, msg)
			}
			if id != resp.ID || resp.ID.String() != tt.id {
				t.Errorf("ids %s and %s, want %s", id, resp.ID, tt.id)
			}
			if string(resp.Result) != tt.result {
				t.Errorf("Result = %q, want %q", resp.Result, tt.result)
			}
			switch {
			case tt.err == nil && resp.Error != nil:
				t.Errorf("Error = %+v, want nil", resp.Error)
			case tt.err != nil && (resp.Error == nil || resp.Error.Code != tt.err.Code ||
				resp.Error.Message != tt.err.Message || string(resp.Error.Data) != string(tt.err.Data)):
				t.Errorf("Error = %+v, want %+v", resp.Error, tt.err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want *Error
		id   string // the id Decode still returns, "null" for none
	}{
		{name: "empty line", line: ``, want: ErrParse},
		{name: "blank line", line: " \t\r\n", want: ErrParse},
		{name: "invalid JSON", line: `{"id":1,"method":"m"`, want: ErrParse},
		{name: "not JSON", line: `hello`, want: ErrParse},
		{name: "trailing data", line: `{"id":1,"method":"m"} x`, want: ErrParse},
		{name: "two objects", line: `{"id":1,"method":"m"}{"id":2,"method":"m"}`, want: ErrParse},
		{name: "invalid batch", line: `[{"id":1,"method":"m"}`, want: ErrParse},
		{name: "single quotes", line: `{'id':1,'method':'m'}`, want: ErrParse},
		{name: "id leading zeros", line: `{"id":01,"method":"m"}`, want: ErrParse}, // not JSON
		{name: "id plus sign", line: `{"id":+1,"method":"m"}`, want: ErrParse},     // not JSON

		{name: "batch", line: `[{"id":1,"method":"m"},{"id":2,"method":"m"}]`, want: ErrInvalidRequest},
		{name: "empty batch", line: `[]`, want: ErrInvalidRequest},
		{name: "string", line: `"m"`, want: ErrInvalidRequest},
		{name: "number", line: `1`, want: ErrInvalidRequest},
		{name: "null", line: `null`, want: ErrInvalidRequest},
		{name: "true", line: `true`, want: ErrInvalidRequest},
		{name: "empty object", line: `{}`, want: ErrInvalidRequest},

		{name: "id float", line: `{"id":1.0,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id fraction", line: `{"id":1.5,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id exponent", line: `{"id":1e3,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id upper exponent", line: `{"id":1E3,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id negative exponent", line: `{"id":-1e-3,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id null", line: `{"id":null,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id true", line: `{"id":true,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id false", line: `{"id":false,"method":"m"}`, want: ErrInvalidRequest},
		{name: "id object", line: `{"id":{"n":1},"method":"m"}`, want: ErrInvalidRequest},
		{name: "id array", line: `{"id":[1],"method":"m"}`, want: ErrInvalidRequest},

		{name: "jsonrpc 1.0", line: `{"jsonrpc":"1.0","id":1,"method":"m"}`, want: ErrInvalidRequest, id: `1`},
		{name: "jsonrpc number", line: `{"jsonrpc":2.0,"id":1,"method":"m"}`, want: ErrInvalidRequest, id: `1`},
		{name: "jsonrpc null", line: `{"jsonrpc":null,"id":"x","method":"m"}`, want: ErrInvalidRequest, id: `"x"`},
		{name: "jsonrpc empty", line: `{"jsonrpc":"","id":1,"method":"m"}`, want: ErrInvalidRequest, id: `1`},

		{name: "method number", line: `{"id":1,"method":1}`, want: ErrInvalidRequest, id: `1`},
		{name: "method object", line: `{"id":1,"method":{}}`, want: ErrInvalidRequest, id: `1`},
		{name: "method null", line: `{"id":1,"method":null}`, want: ErrInvalidRequest, id: `1`},
		{name: "method empty", line: `{"id":"q","method":""}`, want: ErrInvalidRequest, id: `"q"`},
		{name: "method empty notification", line: `{"method":""}`, want: ErrInvalidRequest},

		{name: "neither method nor result", line: `{"id":1}`, want: ErrInvalidRequest, id: `1`},
		{name: "only params", line: `{"id":1,"params":{}}`, want: ErrInvalidRequest, id: `1`},
		{name: "result and error", line: `{"id":1,"result":1,"error":{"code":1,"message":"x"}}`, want: ErrInvalidRequest, id: `1`},
		{name: "result without id", line: `{"result":1}`, want: ErrInvalidRequest},
		{name: "error without id", line: `{"error":{"code":1,"message":"x"}}`, want: ErrInvalidRequest},
		{name: "result with null id", line: `{"id":null,"result":1}`, want: ErrInvalidRequest},
		{name: "error not an object", line: `{"id":1,"error":"boom"}`, want: ErrInvalidRequest, id: `1`},
		{name: "error code not a number", line: `{"id":1,"error":{"code":"x","message":"m"}}`, want: ErrInvalidRequest, id: `1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, id, err := Decode([]byte(tt.line))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%s) = %v, %v; want %v", tt.line, msg, err, tt.want)
			}
			if msg != nil {
				t.Errorf("Decode returned message %+v with its error", msg)
			}
			var rpcErr *Error
			if !errors.As(err, &rpcErr) || rpcErr.Code != tt.want.Code {
				t.Errorf("error %v does not carry code %d", err, tt.want.Code)
			}
			wantID := tt.id
			if wantID == "" {
				wantID = "null"
			}
			if id.String() != wantID {
				t.Errorf("id = %s, want %s", id, wantID)
			}
			if !strings.HasPrefix(err.Error(), tt.want.Message+": ") {
				t.Errorf("error %q does not start with %q", err, tt.want.Message)
			}
		})
	}
}

func TestIDConstructors(t *testing.T) {
	tests := []struct {
		id   ID
		want string
	}{
		{ID{}, `null`},
		{IntID(0), `0`},
		{IntID(-7), `-7`},
		{IntID(9007199254740993), `9007199254740993`},
		{StringID(""), `""`},
		{StringID("a\"b"), `"a\"b"`},
		{StringID("<tag>"), `"\u003ctag\u003e"`},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
		b, err := json.Marshal(tt.id)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal = %s, %v; want %s", b, err, tt.want)
		}
		if tt.id.IsZero() != (tt.want == "null") {
			t.Errorf("%s: IsZero() = %v", tt.want, tt.id.IsZero())
		}
	}
	// A constructed id must equal the decoded one, so that a client can
	// match answers to the ids it sent.
	for _, id := range []ID{IntID(5), StringID("x")} {
		line, err := EncodeResult(id, 1)
		if err != nil {
			t.Fatal(err)
		}
		msg, _, err := Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.(*Response).ID; got != id {
			t.Errorf("decoded id %s != %s", got, id)
		}
	}
}

// htmlID is a string id with the characters encoding/json escapes by
// default: <, > and & and a raw U+2028.
const htmlID = "\"<a&b>\u2028\""

func TestEncode(t *testing.T) {
	mustResult := func(id ID, result any) []byte {
		b, err := EncodeResult(id, result)
		if err != nil {
			t.Fatalf("EncodeResult: %v", err)
		}
		return b
	}
	mustRequest := func(id ID, method string, params any) []byte {
		b, err := EncodeRequest(id, method, params)
		if err != nil {
			t.Fatalf("EncodeRequest: %v", err)
		}
		return b
	}
	huge, _, _ := Decode([]byte(`{"id":123456789012345678901234567890,"method":"m"}`))
	html, _, _ := Decode([]byte(`{"id":` + htmlID + `,"method":"m"}`))
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"result", mustResult(IntID(1), map[string]string{"token": "v1.x"}), `{"id":1,"result":{"token":"v1.x"}}`},
		{"result string id", mustResult(StringID("a"), []int{1, 2}), `{"id":"a","result":[1,2]}`},
		{"result huge id", mustResult(huge.(*Request).ID, 0), `{"id":123456789012345678901234567890,"result":0}`},
		{"result html id", mustResult(html.(*Request).ID, true), `{"id":` + htmlID + `,"result":true}`},
		{"result html text", mustResult(IntID(1), "<b>&</b>"), `{"id":1,"result":"<b>&</b>"}`},
		{"result raw", mustResult(IntID(1), json.RawMessage(`{"a": 1}`)), `{"id":1,"result":{"a":1}}`},
		{"result empty object", mustResult(IntID(1), struct{}{}), `{"id":1,"result":{}}`},
		{"result nil", mustResult(IntID(1), nil), `{"id":1,"result":null}`},
		{"result zero id", mustResult(ID{}, 1), `{"id":null,"result":1}`},

		{"error sentinel", EncodeError(IntID(2), ErrMethodNotFound), `{"id":2,"error":{"code":-32601,"message":"method not found"}}`},
		{"error wrapped", EncodeError(IntID(2), fmt.Errorf("%w: %q", ErrMethodNotFound, "x/y")), `{"id":2,"error":{"code":-32601,"message":"method not found: \"x/y\""}}`},
		{"error null id", EncodeError(ID{}, fmt.Errorf("%w: empty line", ErrParse)), `{"id":null,"error":{"code":-32700,"message":"parse error: empty line"}}`},
		{"error with data", EncodeError(StringID("s"), NewError(CodeAttestation, "attestation failed", map[string]any{"reason": "timeout", "dcErrorCode": 2})), `{"id":"s","error":{"code":-32000,"message":"attestation failed","data":{"dcErrorCode":2,"reason":"timeout"}}}`},
		{"error plain", EncodeError(IntID(3), io.ErrUnexpectedEOF), `{"id":3,"error":{"code":-32603,"message":"internal error: unexpected EOF"}}`},
		{"error too large", EncodeError(ID{}, ErrLineTooLong), `{"id":null,"error":{"code":-32001,"message":"request too large: line longer than the limit"}}`},
		{"error html", EncodeError(html.(*Request).ID, fmt.Errorf("%w: <x>", ErrInvalidParams)), `{"id":` + htmlID + `,"error":{"code":-32602,"message":"invalid params: <x>"}}`},

		{"request", mustRequest(IntID(1), "attestation/generate", map[string]any{}), `{"id":1,"method":"attestation/generate","params":{}}`},
		{"request no params", mustRequest(StringID("x"), "attestation/status", nil), `{"id":"x","method":"attestation/status"}`},
		{"request html id", mustRequest(html.(*Request).ID, "m", nil), `{"id":` + htmlID + `,"method":"m"}`},
		{"notification", mustRequest(ID{}, "initialized", nil), `{"method":"initialized"}`},
		{"notification params", mustRequest(ID{}, "n", []int{1}), `{"method":"n","params":[1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.got); got != tt.want+"\n" {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEncodeResultError(t *testing.T) {
	if b, err := EncodeResult(IntID(1), func() {}); err == nil {
		t.Errorf("EncodeResult(func) = %s, want an error", b)
	}
	if b, err := EncodeRequest(IntID(1), "m", make(chan int)); err == nil {
		t.Errorf("EncodeRequest(chan) = %s, want an error", b)
	}
	bad := &Error{Code: 1, Message: "m", Data: json.RawMessage(`{not json`)}
	got := string(EncodeError(IntID(1), bad))
	if want := `{"id":1,"error":{"code":-32603,"message":"cannot encode error"}}` + "\n"; got != want {
		t.Errorf("EncodeError(bad data) = %s, want %s", got, want)
	}
}

// TestEncodeDecode checks that every line the encoders write decodes to
// the same message.
func TestEncodeDecode(t *testing.T) {
	ids := []ID{IntID(0), IntID(-1), StringID(""), StringID("id \u2028 <&>")}
	for _, id := range ids {
		line, _ := EncodeRequest(id, "m", map[string]int{"a": 1})
		msg, gotID, err := Decode(line)
		if err != nil {
			t.Fatalf("Decode(%s): %v", line, err)
		}
		if req := msg.(*Request); gotID != id || req.ID != id || req.Method != "m" || !req.IsCall || string(req.Params) != `{"a":1}` {
			t.Errorf("Decode(%s) = %+v", line, req)
		}

		line, _ = EncodeResult(id, nil)
		msg, _, err = Decode(line)
		if err != nil {
			t.Fatalf("Decode(%s): %v", line, err)
		}
		if resp := msg.(*Response); resp.ID != id || string(resp.Result) != "null" || resp.Error != nil {
			t.Errorf("Decode(%s) = %+v", line, resp)
		}
	}
	for _, id := range append(ids, ID{}) {
		line := EncodeError(id, fmt.Errorf("%w: %s", ErrInvalidParams, "detail"))
		msg, _, err := Decode(line)
		if err != nil {
			t.Fatalf("Decode(%s): %v", line, err)
		}
		resp := msg.(*Response)
		if resp.ID != id || resp.Result != nil || resp.Error == nil || !errors.Is(resp.Error, ErrInvalidParams) || resp.Error.Message != "invalid params: detail" {
			t.Errorf("Decode(%s) = %+v", line, resp)
		}
	}
}

// requestCase is a line that decodes to a request with method and params
// ("" when absent).
type requestCase struct{ name, line, method, params string }

func checkRequests(t *testing.T, cases []requestCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			msg, _, err := Decode([]byte(tt.line))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.line, err)
			}
			req := msg.(*Request)
			if req.Method != tt.method || string(req.Params) != tt.params {
				t.Errorf("Decode(%s) = method %q params %s; want %q, %s", tt.line, req.Method, req.Params, tt.method, tt.params)
			}
		})
	}
}

// Repeated member names follow codex app-server's decoder (serde's derived
// Deserialize): a member the message is read by, named twice, makes the
// line invalid; other members may repeat; inside params nothing is judged.
func TestDecodeRepeatedMembers(t *testing.T) {
	invalid := []struct {
		name, line, id string
	}{
		{"method twice", `{"id":1,"method":"attestation/generate","method":"x"}`, `1`},
		{"method twice, same value", `{"method":"m","id":"a","method":"m"}`, `"a"`},
		{"id twice", `{"id":1,"method":"m","id":2}`, `null`},
		{"params twice", `{"id":1,"method":"m","params":{},"params":null}`, `1`},
		{"jsonrpc twice", `{"jsonrpc":"2.0","id":1,"method":"m","jsonrpc":"2.0"}`, `1`},
		{"result twice", `{"id":1,"result":1,"result":2}`, `1`},
		{"error twice", `{"id":1,"error":{"code":1,"message":"a"},"error":{"code":2,"message":"b"}}`, `1`},
		{"escaped repeat", `{"id":1,"method":"a","m\u0065thod":"b"}`, `1`},
		{"error code twice", `{"id":1,"error":{"code":1,"message":"x","code":2}}`, `1`},
		{"error message twice", `{"id":1,"error":{"code":1,"message":"x","message":"y"}}`, `1`},
		{"error data twice", `{"id":1,"error":{"code":1,"message":"x","data":1,"data":2}}`, `1`},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			msg, id, err := Decode([]byte(tt.line))
			if !errors.Is(err, ErrInvalidRequest) || msg != nil {
				t.Fatalf("Decode(%s) = %+v, %v; want an invalid request", tt.line, msg, err)
			}
			if id.String() != tt.id {
				t.Errorf("id = %s, want %s", id, tt.id)
			}
		})
	}

	valid := []requestCase{
		{"unknown member twice", `{"id":1,"method":"m","x":1,"x":2}`, "m", ""},
		{"repeats inside params", `{"id":1,"method":"m","params":{"a":1,"a":2}}`, "m", `{"a":1,"a":2}`},
		{"names are case-sensitive", `{"id":1,"method":"m","Method":"x","METHOD":"y"}`, "m", ""},
	}
	checkRequests(t, valid)

	// Exact names in error objects too: encoding/json would take "CODE"
	// for "code".
	msg, _, err := Decode([]byte(`{"id":1,"error":{"CODE":5,"code":-32000,"Message":"no","message":"yes"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := msg.(*Response).Error; e.Code != -32000 || e.Message != "yes" {
		t.Errorf("error = %+v, want code -32000 and message yes", e)
	}
}

// Strings are compared decoded: escapes spell the same names and values.
func TestDecodeEscapes(t *testing.T) {
	tests := []requestCase{
		{"jsonrpc escaped dot", `{"jsonrpc":"2\u002e0","id":1,"method":"m"}`, "m", ""},
		{"jsonrpc all escaped", `{"jsonrpc":"\u0032\u002E\u0030","id":1,"method":"m"}`, "m", ""},
		{"escaped key jsonrpc", `{"j\u0073onrpc":"2.0","id":1,"method":"m"}`, "m", ""},
		{"escaped method key and value", `{"id":0,"m\u0065thod":"attestation\/generate"}`, "attestation/generate", ""},
		{"escaped params key", `{"id":0,"method":"m","p\u0061rams":{"a":1}}`, "m", `{"a":1}`},
	}
	checkRequests(t, tests)
	for _, line := range []string{
		`{"jsonrpc":"2.0\u0000","id":1,"method":"m"}`,
		`{"j\u0073onrpc":"1.0","id":1,"method":"m"}`,
		`{"jsonrpc":"2\u002e1","id":1,"method":"m"}`,
	} {
		if _, _, err := Decode([]byte(line)); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Decode(%s) = %v, want an invalid request", line, err)
		}
	}
	msg, _, err := Decode([]byte(`{"id":1,"error":{"c\u006fde":-32000,"message":"\u0061"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := msg.(*Response).Error; e.Code != -32000 || e.Message != "a" {
		t.Errorf("error = %+v, want code -32000 and message a", e)
	}
}

// A line reader reuses its buffer: what Decode returns must not change
// when the line's bytes do.
func TestDecodeDoesNotAliasTheLine(t *testing.T) {
	for _, s := range []string{
		`{"id":1,"method":"m","params":{"a":1}}`,
		`{"id":1,"result":{"token":"v1.x"}}`,
		`{"id":1,"error":{"code":1,"message":"m","data":{"reason":"r"}}}`,
	} {
		line := []byte(s)
		msg, _, err := Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		before := fmt.Sprintf("%+v", msg)
		if r, ok := msg.(*Response); ok && r.Error != nil {
			before = fmt.Sprintf("%+v %s", r, r.Error.Data)
		}
		for i := range line {
			line[i] = 'x'
		}
		after := fmt.Sprintf("%+v", msg)
		if r, ok := msg.(*Response); ok && r.Error != nil {
			after = fmt.Sprintf("%+v %s", r, r.Error.Data)
		}
		if before != after {
			t.Errorf("Decode(%s): message changed with the line: %s -> %s", s, before, after)
		}
	}
}

// BenchmarkDecodeEscapedNames decodes a 1 MiB line of members whose names
// are written with escapes, the decoder's slowest input, against
// encoding/json reading the same line into a map (the decoder before
// issue 14). Each name is decoded once, not once per member name looked
// for (which took 5× the baseline).
func BenchmarkDecodeEscapedNames(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"id":1,"method":"x"`)
	for sb.Len() < 1<<20-16 {
		sb.WriteString(`,"\u0061":0`)
	}
	sb.WriteString(`}`)
	line := []byte(sb.String())
	b.Run("Decode", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, _, err := Decode(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal-map", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
