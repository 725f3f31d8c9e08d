// Package protocol is the wire protocol of attestd's socket: the method
// names, their params and results, the data of an attestation error, and
// the status shape with every type it embeds. The server, the client, the
// stdio bridge and the pool share these types, so a client needs neither
// the server nor the pool to speak to the daemon.
//
// Messages are newline-delimited JSON-RPC 2.0 (package jsonrpc frames
// them); wire_test.go pins the exact JSON of every type, so a change to
// what clients see shows up there first.
package protocol
