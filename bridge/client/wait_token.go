package client

import (
	"context"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// retryEvery is how long WaitToken waits between a "timeout" answer and
// the next request.
const retryEvery = 50 * time.Millisecond

// WaitToken asks for a token until one comes or ctx ends, as a command
// that needs one token does. The daemon answers within its short
// deadline, so a cold pool says "timeout" while it makes the first token;
// the request itself (and the Warm hint WaitToken sends first) warmed
// it, and a retry soon succeeds. Any other failure is returned at once.
func (c *Client) WaitToken(ctx context.Context) (string, error) {
	c.Warm()
	for {
		tok, err := c.Token(ctx)
		if err == nil {
			return tok, nil
		}
		if provider.ReasonOf(err) != provider.ReasonTimeout || ctx.Err() != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(retryEvery):
		}
	}
}
