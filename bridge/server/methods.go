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
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/socket"
)

// Method names served.
const (
	MethodGenerate   = "attestation/generate"
	MethodInitialize = "initialize"
	MethodStatus     = "attestation/status"
	MethodWarm       = "attestation/warm"
)

// ProtocolVersion is reported by initialize.
const ProtocolVersion = 1

// socketCheckPeerUID is a seam for tests that prove the uid check.
var socketCheckPeerUID = socket.CheckPeerUID

// GenerateResult is the result of attestation/generate, the same shape as
// the app-server's AttestationGenerateResponse.
type GenerateResult struct {
	Token string `json:"token"`
}

// InitializeResult is the result of initialize.
type InitializeResult struct {
	ServerInfo      ServerInfo `json:"serverInfo"`
	Provider        string     `json:"provider"`
	ProtocolVersion int        `json:"protocolVersion"`
}

// ServerInfo names the server.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// StatusResult is the result of attestation/status.
type StatusResult struct {
	Version  string      `json:"version"`
	Provider string      `json:"provider"`
	Pool     pool.Status `json:"pool"`
	Server   ServerStats `json:"server"`
}

// ServerStats counts connections and requests since start.
type ServerStats struct {
	Uptime            string `json:"uptime"`
	ActiveConnections int64  `json:"activeConnections"`
	Accepted          int64  `json:"accepted"`
	Refused           int64  `json:"refused"`
	Evicted           int64  `json:"evicted"`
	Requests          int64  `json:"requests"`
	TokensServed      int64  `json:"tokensServed"`
	Errors            int64  `json:"errors"`
}

// ErrorData is the data member of an attestation failure.
type ErrorData struct {
	Reason      string `json:"reason"`
	DCErrorCode *int   `json:"dcErrorCode,omitempty"`
	Hint        string `json:"hint,omitempty"`
}

// answer runs one call and returns its answer line.
func (s *Server) answer(ctx context.Context, req *jsonrpc.Request) []byte {
	start := time.Now()
	result, err := s.call(ctx, req)
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
		var d ErrorData
		if json.Unmarshal(e.Data, &d) == nil && d.Reason != "" {
			return d.Reason
		}
	}
	return ""
}

func (s *Server) call(ctx context.Context, req *jsonrpc.Request) (any, error) {
	if err := checkParams(req.Params); err != nil {
		return nil, err
	}
	switch req.Method {
	case MethodGenerate:
		return s.generate(ctx, req)
	case MethodInitialize:
		s.cfg.Tokens.Warm()
		return InitializeResult{
			ServerInfo:      ServerInfo{Name: "attestd", Version: s.cfg.Version},
			Provider:        s.cfg.Tokens.Status().Provider,
			ProtocolVersion: ProtocolVersion,
		}, nil
	case MethodStatus:
		return s.status(), nil
	case MethodWarm:
		s.cfg.Tokens.Warm()
		return struct{}{}, nil
	}
	return nil, fmt.Errorf("%w: %q", jsonrpc.ErrMethodNotFound, req.Method)
}

// notify handles a notification: hints are acted on, the rest ignored.
func (s *Server) notify(req *jsonrpc.Request) {
	switch req.Method {
	case MethodWarm, MethodInitialize:
		s.cfg.Tokens.Warm()
	}
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

func (s *Server) generate(ctx context.Context, req *jsonrpc.Request) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Deadline)
	defer cancel()
	start := time.Now()
	tok, err := s.cfg.Tokens.Token(ctx)
	if err != nil {
		data := ErrorData{Reason: provider.ReasonOf(err), Hint: provider.HintOf(err)}
		if code, ok := provider.DCErrorCodeOf(err); ok {
			data.DCErrorCode = &code
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeAttestation, "attestation failed: "+err.Error(), data)
	}
	s.served(req, tok, start)
	return GenerateResult{Token: tok}, nil
}

func (s *Server) served(req *jsonrpc.Request, tok string, start time.Time) {
	s.stats.tokens.Add(1)
	if s.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		s.cfg.Logger.Debug("token served", "id", req.ID.String(), "fingerprint", header.Fingerprint(tok), "took", time.Since(start))
	}
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
	if !ok || req.Method != MethodGenerate || checkParams(req.Params) != nil {
		return nil, false
	}
	start := time.Now()
	tok, ok := rt.TryToken()
	if !ok {
		return nil, false
	}
	s.served(req, tok, start)
	return appendTokenAnswer(nil, req.ID, tok), true
}

// appendTokenAnswer appends {"id":ID,"result":{"token":"TOK"}} and a
// newline. It writes the JSON by hand: the id is already JSON text, and a
// header value ("v1." and base64url) needs no escaping, which is checked.
func appendTokenAnswer(b []byte, id jsonrpc.ID, tok string) []byte {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			line, err := jsonrpc.EncodeResult(id, GenerateResult{Token: tok})
			if err != nil {
				return jsonrpc.EncodeError(id, err)
			}
			return append(b, line...)
		}
	}
	b = append(b, `{"id":`...)
	b = append(b, id.String()...)
	b = append(b, `,"result":{"token":"`...)
	b = append(b, tok...)
	return append(b, "\"}}\n"...)
}

func (s *Server) status() StatusResult {
	ps := s.cfg.Tokens.Status()
	return StatusResult{
		Version:  s.cfg.Version,
		Provider: ps.Provider,
		Pool:     ps,
		Server: ServerStats{
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
