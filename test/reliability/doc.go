// Package reliability holds attestd's reliability and security suite: load
// with faults, a corpus of bad input kept as data under testdata/, process
// faults against the real binary (signals, socket ownership and stale
// sockets, the socket's directory, a lost stderr reader, the size of the
// log), peer and permission checks, and a fuzz target for the server's
// line handling. It has no code of its own; see the _test.go files.
package reliability
