package main

import (
	"context"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/client"
)

func init() {
	c := &command{
		name:    "token",
		summary: "Ask the daemon for one attestation header value and print it.",
		usage:   "token [--socket PATH | --agent LABEL|KEY] [--timeout D]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error {
		fs := newFlagSet(s, c)
		where := addClientFlags(fs)
		timeout := fs.Duration("timeout", 15*time.Second, "give up after this long; a cold daemon may need a moment for its first token")
		if err := parseFlagsNoArgs(fs, args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		sock, err := where.resolve(ctx, s)
		if err != nil {
			return err
		}
		cl := client.New(sock.Path)
		defer cl.Close()
		tok, err := cl.WaitToken(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out, tok)
		return nil
	}
	register(c)
}
