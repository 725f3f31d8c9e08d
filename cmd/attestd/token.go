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
			return err
		}
		fmt.Fprintln(s.out, tok)
		return nil
	}
	register(c)
}

// tokenWithRetry asks until a token comes or ctx ends. The daemon answers
// within its short deadline, so a cold pool says "timeout" while it makes
// the first token; the request itself warmed it, and a retry soon succeeds.
func tokenWithRetry(ctx context.Context, cl *client.Client) (string, error) {
	cl.Warm()
	for {
		tok, err := cl.Token(ctx)
		if err == nil {
			return tok, nil
		}
		if provider.ReasonOf(err) != provider.ReasonTimeout || ctx.Err() != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
