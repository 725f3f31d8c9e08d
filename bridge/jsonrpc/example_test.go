package jsonrpc_test

import (
	"errors"
	"fmt"

	"github.com/attestd/attestd/bridge/jsonrpc"
)

func ExampleDecode() {
	for _, line := range []string{
		`{"id":123456789012345678901234567890,"method":"attestation/generate","params":{}}`,
		`{"method":"initialized"}`,
		`{"id":7,"method":"attestation/nope"}`,
		`{"id":1.5,"method":"initialize"}`,
	} {
		msg, id, err := jsonrpc.Decode([]byte(line))
		if err != nil {
			// Answer with the id when one could be read (null otherwise).
			fmt.Print(string(jsonrpc.EncodeError(id, err)))
			continue
		}
		req := msg.(*jsonrpc.Request)
		if !req.IsCall {
			fmt.Println("notification:", req.Method)
			continue
		}
		if req.Method != "attestation/generate" {
			err := fmt.Errorf("%w: %q", jsonrpc.ErrMethodNotFound, req.Method)
			fmt.Println(errors.Is(err, jsonrpc.ErrMethodNotFound))
			fmt.Print(string(jsonrpc.EncodeError(req.ID, err)))
			continue
		}
		answer, _ := jsonrpc.EncodeResult(req.ID, map[string]string{"token": "v1.…"})
		fmt.Print(string(answer))
	}
	// Output:
	// {"id":123456789012345678901234567890,"result":{"token":"v1.…"}}
	// notification: initialized
	// true
	// {"id":7,"error":{"code":-32601,"message":"method not found: \"attestation/nope\""}}
	// {"id":null,"error":{"code":-32600,"message":"invalid request: id must be an integer or a string"}}
}
