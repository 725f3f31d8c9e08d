package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
)

// MaxTurns is the most turns one connection holds (see
// protocol.WarmParams); another "started" ends its oldest.
const MaxTurns = 16

// parseWarmParams decodes and checks the params of attestation/warm.
func parseWarmParams(raw json.RawMessage) (protocol.WarmParams, time.Duration, error) {
	var p protocol.WarmParams
	if err := checkParams(raw); err != nil {
		return p, 0, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, 0, fmt.Errorf("%w: %v", jsonrpc.ErrInvalidParams, err)
		}
	}
	switch p.Turn {
	case "", protocol.TurnStarted, protocol.TurnCompleted:
	default:
		return p, 0, fmt.Errorf("%w: turn must be %q or %q", jsonrpc.ErrInvalidParams, protocol.TurnStarted, protocol.TurnCompleted)
	}
	timeout := protocol.DefaultWaitTimeout
	if p.TimeoutMs != nil {
		ms := *p.TimeoutMs
		if ms < 0 || ms > protocol.MaxWaitTimeout.Milliseconds() {
			return p, 0, fmt.Errorf("%w: timeoutMs must be between 0 and %d", jsonrpc.ErrInvalidParams, protocol.MaxWaitTimeout.Milliseconds())
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	return p, timeout, nil
}

// warm handles attestation/warm, a call or a notification, on the reader
// goroutine, so turn signals take effect in the order they were sent; a
// wait is answered on a goroutine of its own. It reports whether to keep
// reading.
func (c *conn) warm(req *jsonrpc.Request) bool {
	p, timeout, err := parseWarmParams(req.Params)
	if err != nil {
		if !req.IsCall {
			c.s.cfg.Logger.Debug("ignored attestation/warm notification with bad params", "err", err)
			return true
		}
		c.s.stats.errors.Add(1)
		return c.write(jsonrpc.EncodeError(req.ID, err))
	}
	tokens := c.s.cfg.Tokens
	switch p.Turn {
	case protocol.TurnStarted:
		if len(c.turns) == MaxTurns {
			c.endOldestTurn()
		}
		c.turns = append(c.turns, tokens.BeginTurn())
	case protocol.TurnCompleted:
		c.endOldestTurn()
	default:
		if !p.Wait || !req.IsCall {
			tokens.Warm()
		}
	}
	if !req.IsCall {
		return true
	}
	if !p.Wait {
		return c.write(encodeResult(req.ID, protocol.WarmResult{}))
	}
	return c.handle(func(ctx context.Context) []byte {
		return encodeResult(req.ID, c.s.waitReady(ctx, req, timeout))
	})
}

func (c *conn) endOldestTurn() {
	if len(c.turns) > 0 {
		c.turns[0].End()
		c.turns[0] = nil
		c.turns = c.turns[1:]
	}
}

// endTurns ends every turn of the connection, once it has closed.
func (c *conn) endTurns() {
	for len(c.turns) > 0 {
		c.endOldestTurn()
	}
}

// waitReady runs the wait of attestation/warm; the result is a
// protocol.WarmResult or an error.
func (s *Server) waitReady(ctx context.Context, req *jsonrpc.Request, timeout time.Duration) any {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(s.draining, cancel) // a draining server answers at once
	defer stop()
	err := s.cfg.Tokens.WaitReady(wctx)
	waited := time.Since(start).Milliseconds()
	switch {
	case err == nil:
		return protocol.WarmResult{Ready: ptr(true), WaitedMs: &waited}
	case s.draining.Err() != nil:
		err = pool.ErrClosed
	case errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil:
		return protocol.WarmResult{Ready: ptr(false), WaitedMs: &waited}
	}
	s.stats.errors.Add(1)
	s.cfg.Logger.Info("wait for a token failed", "id", req.ID.String(), "reason", provider.ReasonOf(err), "err", err)
	return attestationError(err)
}

func ptr[T any](v T) *T { return &v }

// encodeResult answers id with v, which may be an error.
func encodeResult(id jsonrpc.ID, v any) []byte {
	if err, ok := v.(error); ok {
		return jsonrpc.EncodeError(id, err)
	}
	line, err := jsonrpc.EncodeResult(id, v)
	if err != nil {
		return jsonrpc.EncodeError(id, fmt.Errorf("%w: %v", jsonrpc.ErrInternal, err))
	}
	return line
}

// attestationError turns a pool or provider error into the -32000 error
// clients get, with its reason, hint and Apple error code.
func attestationError(err error) *jsonrpc.Error {
	data := protocol.ErrorData{Reason: provider.ReasonOf(err), Hint: hint.Of(err)}
	if code, ok := provider.DCErrorCodeOf(err); ok {
		data.DCErrorCode = &code
	}
	return jsonrpc.NewError(jsonrpc.CodeAttestation, "attestation failed: "+err.Error(), data)
}
