package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/attestd/attestd/internal/inspect"
)

func init() {
	c := &command{
		name: "decode",
		summary: "Decode a \"v1.\" header value, or the app-server's {\"v\":1,\"s\":N,\"t\":…} envelope, to JSON.\n" +
			"Reads VALUE, or standard input when VALUE is - or absent. Nothing is checked with Apple.",
		usage: "decode [VALUE|-]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error {
		fs := newFlagSet(s, c)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 1 {
			return usagef("give one value, or - to read standard input")
		}
		in, err := inspect.ReadValue(s.in, fs.Arg(0))
		if err != nil {
			return withHint(err, "give one header value: a \"v1.\" value or the app-server's envelope")
		}
		out, err := inspect.Decode(in)
		if errors.Is(err, inspect.ErrEmpty) {
			return usagef("%v", err)
		}
		if err != nil {
			return err
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	register(c)
}
