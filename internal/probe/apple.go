package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/attestd/attestd/verify"
)

// Outcomes of one validation, decided on the raw HTTP answer.
const (
	OutcomeValid   = "valid"   // 200 with an empty body: Apple's only "yes"
	OutcomeRefused = "refused" // a 4xx about the request (400, 404, 405, …): Apple said no
	// OutcomeInconclusive is any other answer (200 with a body, 3xx,
	// 429, 5xx, no answer): it says nothing about the token's age.
	OutcomeInconclusive = "inconclusive"
	// OutcomeAuth is 401 or 403: the key is not accepted, so nothing
	// further can be asked.
	OutcomeAuth = "authorization"
)

// Answer is Apple's answer to one validate_device_token request, byte
// for byte as it came (the body cut at 64 KiB).
type Answer struct {
	// Outcome is one of the Outcome constants.
	Outcome     string `json:"outcome"`
	HTTPStatus  int    `json:"httpStatus,omitempty"`
	Body        string `json:"body"`
	ContentType string `json:"contentType,omitempty"`
	// Error is why there was no HTTP answer, or verify's reading of it.
	Error string `json:"error,omitempty"`
}

// maxProbeBody bounds the body the probe keeps of one answer.
const maxProbeBody = 64 << 10

// recorded receives the raw answer the recording transport saw.
type recorded struct {
	status      int
	contentType string
	body        []byte
}

type recordKey struct{}

// recordingTransport keeps the status and body of each answer for the
// recorded value in the request's context, and hands the client an
// identical copy of the body. verify.Client only reports a success as
// nil, so the probe reads Apple's exact bytes here.
type recordingTransport struct{ base http.RoundTripper }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec, _ := req.Context().Value(recordKey{}).(*recorded)
	if rec == nil {
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	resp.Body.Close()
	if rerr != nil {
		return nil, fmt.Errorf("read the answer: %w", rerr)
	}
	rec.status, rec.contentType, rec.body = resp.StatusCode, resp.Header.Get("Content-Type"), body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// appleProbe validates tokens with Apple and records each raw answer.
type appleProbe struct {
	client *verify.Client
}

// newAppleProbe returns a client for cfg whose requests go through base
// (nil: a transport of its own, cloned from http.DefaultTransport).
func newAppleProbe(cfg verify.Config, base http.RoundTripper) (*appleProbe, error) {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	cfg.HTTPClient = &http.Client{
		Transport: recordingTransport{base: base},
		// A redirect is an answer of its own (inconclusive), not a
		// request to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// One request per validation: each answer is recorded as Apple gave
	// it, and a retry could turn a first use into a reuse.
	cfg.MaxAttempts = 1
	c, err := verify.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &appleProbe{client: c}, nil
}

func (a *appleProbe) validate(ctx context.Context, tok []byte) Answer {
	rec := &recorded{}
	err := a.client.ValidateDeviceToken(context.WithValue(ctx, recordKey{}, rec), tok)
	return classifyAnswer(rec, err)
}

// classifyAnswer decides the outcome from the raw answer; err is what the
// client made of it, kept for people.
func classifyAnswer(rec *recorded, err error) Answer {
	a := Answer{HTTPStatus: rec.status, Body: string(rec.body), ContentType: rec.contentType}
	if err != nil {
		a.Error = err.Error()
	}
	switch s := rec.status; {
	case s == 0:
		a.Outcome = OutcomeInconclusive
	case s == http.StatusOK && len(rec.body) == 0:
		a.Outcome = OutcomeValid
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		a.Outcome = OutcomeAuth
	case s == http.StatusTooManyRequests:
		a.Outcome = OutcomeInconclusive
	case s >= 400 && s < 500:
		a.Outcome = OutcomeRefused
	default:
		a.Outcome = OutcomeInconclusive
	}
	return a
}
