package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/jsonrpc"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/socket"
)

// socketCheckPeerUID is a seam for tests that prove the uid check.
var socketCheckPeerUID = socket.CheckPeerUID

// answer runs one call and returns its answer line; q is the caller's
// queue for tokens.
func (s *Server) answer(ctx context.Context, req *jsonrpc.Request, q *pool.Queue) []byte {
	start := time.Now()
	result, err := s.call(ctx, req, q)
	if err != nil {
		s.stats.errors.Add(1)
		s.cfg.Logger.Info("request failed", "method", req.Method, "id", req.ID.String(),
			"reason", reasonOf(err), "err", err, "took", time.Since(start))
		return jsonrpc.EncodeError(req.ID, err)
	}
	line, err := jsonrpc.EncodeResult(req.ID, result)
	if err != nil {
		return jsonrpc.EncodeError(req.ID, fmt.Errorf("%w: %v", jsonrpc.ErrInternal, err))
	}
	return line
}

func reasonOf(err error) string {
	var e *jsonrpc.Error
	if errors.As(err, &e) && len(e.Data) > 0 {
		var d protocol.ErrorData
		if json.Unmarshal(e.Data, &d) == nil && d.Reason != "" {
			return d.Reason
		}
	}
	return ""
}

func (s *Server) call(ctx context.Context, req *jsonrpc.Request, q *pool.Queue) (any, error) {
	if err := checkParams(req.Params); err != nil {
		return nil, err
	}
	switch req.Method {
	case protocol.MethodGenerate:
		return s.generate(ctx, req, q)
	case protocol.MethodInitialize:
		s.cfg.Tokens.Warm()
		return protocol.InitializeResult{
			ServerInfo:      protocol.ServerInfo{Name: "attestd", Version: s.cfg.Version},
			Provider:        s.cfg.Tokens.Status().Provider,
			ProtocolVersion: protocol.Version,
		}, nil
	case protocol.MethodStatus:
		return s.status(), nil
	}
	return nil, fmt.Errorf("%w: %q", jsonrpc.ErrMethodNotFound, req.Method)
}

// checkParams accepts absent params or a JSON object; the methods served
// take no params, so an object's members are ignored.
func checkParams(params json.RawMessage) error {
	trimmed := bytes.TrimSpace(params)
	if len(trimmed) == 0 || trimmed[0] == '{' {
		return nil
	}
	return fmt.Errorf("%w: params must be an object", jsonrpc.ErrInvalidParams)
}

func (s *Server) generate(ctx context.Context, req *jsonrpc.Request, q *pool.Queue) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Deadline)
	defer cancel()
	start := time.Now()
	tok, err := s.cfg.Tokens.TokenIn(ctx, q)
	if err != nil {
		return nil, attestationError(err)
	}
	s.served([]byte(req.ID.String()), tok, start)
	return protocol.GenerateResult{Token: tok}, nil
}

// served counts a token handed out and logs its fingerprint at debug
// level; id is the request id's JSON text, start when the request began
// waiting (zero when it never waited).
func (s *Server) served(id []byte, tok string, start time.Time) {
	s.stats.tokens.Add(1)
	if s.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		took := time.Duration(0)
		if !start.IsZero() {
			took = time.Since(start)
		}
		s.cfg.Logger.Debug("token served", "id", string(id), "fingerprint", header.Fingerprint(tok), "took", took)
	}
}

// tryToken takes a ready token without waiting, when the source can.
func (s *Server) tryToken() (string, bool) {
	rt, ok := s.cfg.Tokens.(readyTokens)
	if !ok {
		return "", false
	}
	return rt.TryToken()
}

// readyTokens is implemented by token sources that can hand out a ready
// token without waiting (the pool does).
type readyTokens interface {
	TryToken() (string, bool)
}

// answerReady answers attestation/generate at once when a token is ready,
// so the common case costs no goroutine or timer. It reports false when
// the request must take the ordinary path.
func (s *Server) answerReady(req *jsonrpc.Request) ([]byte, bool) {
	rt, ok := s.cfg.Tokens.(readyTokens)
	if !ok || req.Method != protocol.MethodGenerate || checkParams(req.Params) != nil {
		return nil, false
	}
	start := time.Now()
	tok, ok := rt.TryToken()
	if !ok {
		return nil, false
	}
	s.served([]byte(req.ID.String()), tok, start)
	return appendTokenAnswer(nil, []byte(req.ID.String()), tok), true
}

// appendTokenAnswer appends {"id":ID,"result":{"token":"TOK"}} and a
// newline, where id is the id's JSON text. It writes the JSON by hand: a
// header value ("v1." and base64url) needs no escaping, which is checked;
// any other token is escaped as the encoder would.
func appendTokenAnswer(b, id []byte, tok string) []byte {
	b = append(b, `{"id":`...)
	b = append(b, id...)
	b = append(b, `,"result":{"token":`...)
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.Encode(tok) // a string always encodes
			b = append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
			return append(b, "}}\n"...)
		}
	}
	b = append(b, '"')
	b = append(b, tok...)
	return append(b, "\"}}\n"...)
}

func (s *Server) status() protocol.StatusResult {
	ps := s.cfg.Tokens.Status()
	return protocol.StatusResult{
		Version:  s.cfg.Version,
		Provider: ps.Provider,
		Pool:     ps,
		Server: protocol.ServerStats{
			Uptime:            time.Since(s.started).Round(time.Second).String(),
			ActiveConnections: s.stats.active.Load(),
			Accepted:          s.stats.accepted.Load(),
			Refused:           s.stats.refused.Load(),
			Evicted:           s.stats.evicted.Load(),
			Requests:          s.stats.requests.Load(),
			TokensServed:      s.stats.tokens.Load(),
			Errors:            s.stats.errors.Load(),
		},
	}
}
