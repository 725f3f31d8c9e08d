package registration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/attestd/attestd/verify/appattest"
)

// challengeLen is the challenge's length in bytes.
const challengeLen = 32

// challengeResponse is the 200 answer of POST …/challenge.
type challengeResponse struct {
	Challenge   string `json:"challenge"`
	ExpiresInMs int64  `json:"expiresInMs"`
}

// challenge issues a challenge: 32 random bytes, base64url without
// padding, recorded in the ChallengeStore.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) {
	var b [challengeLen]byte
	rand.Read(b[:])
	c := base64.RawURLEncoding.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	if err := h.cfg.Challenges.Put(ctx, c, h.cfg.ChallengeTTL); err != nil {
		h.log(r, slog.LevelWarn, "app attest challenge not issued: the store failed", slog.Any("err", err))
		writeUnavailable(w)
		return
	}
	writeJSON(w, http.StatusOK, challengeResponse{Challenge: c, ExpiresInMs: h.cfg.ChallengeTTL.Milliseconds()})
}

// registerRequest is the body of POST …/register.
type registerRequest struct {
	KeyID       string `json:"keyId"`
	Attestation string `json:"attestation"`
	Challenge   string `json:"challenge"`
}

// keyResponse is what register and keys/{id} answer.
type keyResponse struct {
	KeyID       string `json:"keyId"`
	Environment string `json:"environment"`
	Status      string `json:"status"`
}

// register takes the challenge the request names, verifies the
// attestation against it and stores the key.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	req, keyID, object, challenge, reason := readRegistration(w, r)
	if reason != "" {
		writeError(w, http.StatusBadRequest, "bad_request", reason)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	ok, err := h.cfg.Challenges.Take(ctx, req.Challenge)
	switch {
	case err != nil:
		h.log(r, slog.LevelWarn, "app attest registration not checked: the challenge store failed", slog.Any("err", err))
		writeUnavailable(w)
		return
	case !ok:
		h.refuse(w, r, keyID, "unknown_challenge", errors.New("the challenge was never issued, is used or expired: ask for a new one"))
		return
	}
	cdh := sha256.Sum256(challenge)
	key, err := appattest.VerifyAttestation(object, appattest.AttestationOptions{
		AppIDs: h.cfg.AppIDs, ClientDataHash: cdh[:], Environments: h.cfg.Environments,
		KeyID: keyID, Now: h.cfg.Now(), Roots: h.cfg.Roots,
	})
	if err != nil {
		if !appattest.Rejected(err) { // NewHandler checked the options: not expected
			h.log(r, slog.LevelError, "app attest registration failed", slog.Any("err", err))
			writeError(w, http.StatusInternalServerError, "internal_error", "error")
			return
		}
		h.refuse(w, r, keyID, appattest.Reason(err), err)
		return
	}
	rec, created, err := h.cfg.Keys.Register(ctx, key, h.cfg.Now())
	switch {
	case appattest.Rejected(err):
		h.refuse(w, r, keyID, appattest.Reason(err), err)
		return
	case err != nil:
		h.log(r, slog.LevelWarn, "app attest key not registered: the key store failed", slog.String("keyId", req.KeyID), slog.Any("err", err))
		writeUnavailable(w)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	h.log(r, slog.LevelInfo, "app attest key registered", slog.String("keyId", req.KeyID), slog.Bool("new", created),
		slog.String("environment", string(rec.Environment)), slog.String("root", rec.Root), slog.String("appId", rec.AppID))
	writeJSON(w, code, keyResponse{KeyID: base64.StdEncoding.EncodeToString(rec.ID), Environment: string(rec.Environment), Status: string(rec.Status)})
}

// readRegistration reads and decodes a registration's body; reason names
// what is malformed ("" when nothing is).
func readRegistration(w http.ResponseWriter, r *http.Request) (req registerRequest, keyID, object, challenge []byte, reason string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return req, nil, nil, nil, "too_large"
	case err != nil, json.Unmarshal(body, &req) != nil:
		return req, nil, nil, nil, "bad_json"
	}
	if keyID = decodeStd(req.KeyID); len(keyID) != sha256.Size {
		return req, nil, nil, nil, "bad_key_id"
	}
	if object = decodeStd(req.Attestation); len(object) == 0 || len(object) > appattest.MaxAttestationSize {
		return req, nil, nil, nil, "bad_attestation"
	}
	if challenge = decodeChallenge(req.Challenge); challenge == nil {
		return req, nil, nil, nil, "bad_challenge"
	}
	return req, keyID, object, challenge, ""
}

// decodeStd decodes standard base64, with or without padding (Apple's
// key ids and objects come padded); nil when it is not that.
func decodeStd(s string) []byte {
	if strings.ContainsAny(s, "\r\n") {
		return nil // the decoders skip line breaks
	}
	enc := base64.RawStdEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.StdEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// decodeChallenge decodes a challenge as issued: 32 bytes, base64url
// without padding.
func decodeChallenge(s string) []byte {
	if len(s) != base64.RawURLEncoding.EncodedLen(challengeLen) {
		return nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != challengeLen {
		return nil
	}
	return b
}

// key answers a key's status.
func (h *Handler) key(w http.ResponseWriter, r *http.Request) {
	enc := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	id, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(id) != sha256.Size || len(enc) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		writeError(w, http.StatusBadRequest, "bad_request", "bad_key_id")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	rec, err := h.cfg.Keys.Get(ctx, id)
	switch {
	case errors.Is(err, appattest.ErrUnknownKey):
		writeError(w, http.StatusNotFound, "not_found", "unknown_key")
	case err != nil:
		h.log(r, slog.LevelWarn, "app attest key status unknown: the key store failed", slog.Any("err", err))
		writeUnavailable(w)
	default:
		writeJSON(w, http.StatusOK, keyResponse{KeyID: base64.StdEncoding.EncodeToString(rec.ID), Environment: string(rec.Environment), Status: string(rec.Status)})
	}
}

// refuse answers 403 with reason, and logs it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, keyID []byte, reason string, err error) {
	h.log(r, slog.LevelInfo, "app attest registration refused", slog.String("reason", reason),
		slog.String("keyId", base64.StdEncoding.EncodeToString(keyID)), slog.Any("err", err))
	writeError(w, http.StatusForbidden, "registration_refused", reason)
}

func (h *Handler) log(r *http.Request, level slog.Level, msg string, attrs ...slog.Attr) {
	if h.cfg.Logger == nil {
		return
	}
	attrs = append(attrs, slog.String("client", h.cfg.Client(r)))
	h.cfg.Logger.LogAttrs(r.Context(), level, msg, attrs...)
}

// errorResponse is the body of every answer but a success.
type errorResponse struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func writeError(w http.ResponseWriter, code int, e, reason string) {
	writeJSON(w, code, errorResponse{Error: e, Reason: reason})
}

// writeUnavailable answers 503: a store failed; try again.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "unavailable", "store")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
