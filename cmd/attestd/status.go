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
		usage:   "status [--socket PATH | --agent LABEL|KEY]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error {
		fs := newFlagSet(s, c)
		where := addClientFlags(fs)
		if err := parseFlagsNoArgs(fs, args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		sock, err := where.resolve(ctx, s)
		if err != nil {
			return err
		}
		cl := client.New(sock.Path)
		defer cl.Close()
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	register(c)
}
