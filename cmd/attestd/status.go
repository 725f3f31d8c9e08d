package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/attestd/attestd/bridge/client"
)

func init() {
	c := &command{
		name:    "status",
		summary: "Print the daemon's attestation/status as JSON: provider, pool, counters, last error.",
		usage:   "status [--socket PATH]",
	}
	c.run = func(ctx context.Context, s *stdio, args []string) error {
		fs := newFlagSet(s, c)
		sockPath := fs.String("socket", "", "the daemon's socket (default $ATTESTD_SOCKET or the per-user runtime path)")
		if err := parseFlagsNoArgs(fs, args); err != nil {
			return err
		}
		cl := client.New(socketPath(s, *sockPath))
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		if err != nil {
			return clientHint(err)
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	register(c)
}
