//go:build tools

// Package tools pins dependencies that packages being written will import; delete once each is imported.
package tools

import (
	_ "github.com/blacktop/go-macho"
	_ "github.com/ebitengine/purego"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/vmihailenco/msgpack/v5"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sys/unix"
	_ "howett.net/plist"
)
