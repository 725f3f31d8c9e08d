package client

import (
	"context"

	"github.com/attestd/attestd/bridge/socket"
)

// Resolve returns a client for the helper l names, its socket found as
// socket.Resolve finds it: l.Path; else the agent's socket variable in this
// process's environment; else, on macOS, the user's launchd environment
// (so a host that has just registered its agent reaches it without a
// relaunch); else the per-user default path. Found says which, for logs
// and error messages. A client keeps the path it was made with, so make it
// after the host has registered its agent.
func Resolve(ctx context.Context, l socket.Lookup) (*Client, socket.Found, error) {
	f, err := socket.Resolve(ctx, l)
	if err != nil {
		return nil, f, err
	}
	return New(f.Path), f, nil
}
