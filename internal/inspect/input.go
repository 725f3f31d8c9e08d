package inspect

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
)

// MaxInput bounds what ReadValue takes: the longest envelope, plus room for
// white space and a leading "x-oai-attestation:".
const MaxInput = header.MaxEnvelopeLen + 1024

// ErrInputTooLong is the error for input past MaxInput: refused whole,
// never cut to its first part.
var ErrInputTooLong = fmt.Errorf("input longer than %d bytes: not one attestation header value", MaxInput)

// ErrEmpty is the error for input that holds nothing but white space.
var ErrEmpty = errors.New("nothing to decode: give a header value or an envelope")

// ReadValue returns arg, or what stdin holds when arg is "" or "-". Input
// longer than MaxInput is refused with ErrInputTooLong.
func ReadValue(stdin io.Reader, arg string) (string, error) {
	if arg != "" && arg != "-" {
		if len(arg) > MaxInput {
			return "", ErrInputTooLong
		}
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, MaxInput+1))
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > MaxInput {
		return "", fmt.Errorf("standard input: %w", ErrInputTooLong)
	}
	return string(b), nil
}

// TrimHeaderName drops white space and a leading "x-oai-attestation:", so
// a header line copied from a log can be pasted as it is.
func TrimHeaderName(s string) string {
	s = strings.TrimSpace(s)
	if name, rest, ok := strings.Cut(s, ":"); ok && strings.EqualFold(strings.TrimSpace(name), verify.HeaderName) {
		return strings.TrimSpace(rest)
	}
	return s
}
