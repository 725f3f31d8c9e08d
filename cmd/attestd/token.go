package main

import (
	"context"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/provider"
)

func init() {
	c := &command{
		name:    "token",
		summary: "Ask the daemon for one attestation header value and print it.",
		usage:   "token [--socket PATH | --agent LABEL|KEY] [--timeout D]",
	}
	c.run = func(ctx context.Context, s *stdio, args []string) error {
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
		tok, err := tokenWithRetry(ctx, cl)
		if err != nil {
			return clientHint(err)
		}
		fmt.Fprintln(s.out, tok)
		return nil
	}
	register(c)
}

// tokenWithRetry asks until a token comes or ctx ends (client.WaitToken).
func tokenWithRetry(ctx context.Context, cl *client.Client) (string, error) {
	return cl.WaitToken(ctx)
}

// clientHint attaches the hint a failed daemon call carries.
func clientHint(err error) error {
	if h := provider.HintOf(err); h != "" {
		return withHint(err, "%s", h)
	}
	return err
}
