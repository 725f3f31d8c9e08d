package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/verify"
)

// Outcomes of one validation, decided on the raw HTTP answer.
const (
	outcomeValid   = "valid"   // 200 with an empty body: Apple's only "yes"
	outcomeRefused = "refused" // a 4xx about the request (400, 404, 405, …): Apple said no
	// outcomeInconclusive is any other answer (200 with a body, 3xx,
	// 429, 5xx, no answer): it says nothing about the token's age.
	outcomeInconclusive = "inconclusive"
	// outcomeAuth is 401 or 403: the key is not accepted, so nothing
	// further can be asked.
	outcomeAuth = "authorization"
)

// appleAnswer is Apple's answer to one validate_device_token request,
// byte for byte as it came (the body cut at maxProbeBody).
type appleAnswer struct {
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

// defaultProbeTransport is the transport to Apple: its own, never shared.
func defaultProbeTransport() http.RoundTripper {
	return http.DefaultTransport.(*http.Transport).Clone()
}

// appleProbe validates tokens with Apple and records each raw answer.
type appleProbe struct {
	client *verify.Client
}

func newAppleProbe(cfg verify.Config) (*appleProbe, error) {
	cfg.HTTPClient = &http.Client{
		Transport: recordingTransport{base: probeTransport()},
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

func (a *appleProbe) validate(ctx context.Context, tok []byte) appleAnswer {
	rec := &recorded{}
	err := a.client.ValidateDeviceToken(context.WithValue(ctx, recordKey{}, rec), tok)
	return classifyAnswer(rec, err)
}

// classifyAnswer decides the outcome from the raw answer; err is what the
// client made of it, kept for people.
func classifyAnswer(rec *recorded, err error) appleAnswer {
	a := appleAnswer{HTTPStatus: rec.status, Body: string(rec.body), ContentType: rec.contentType}
	if err != nil {
		a.Error = err.Error()
	}
	switch s := rec.status; {
	case s == 0:
		a.Outcome = outcomeInconclusive
	case s == http.StatusOK && len(rec.body) == 0:
		a.Outcome = outcomeValid
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		a.Outcome = outcomeAuth
	case s == http.StatusTooManyRequests:
		a.Outcome = outcomeInconclusive
	case s >= 400 && s < 500:
		a.Outcome = outcomeRefused
	default:
		a.Outcome = outcomeInconclusive
	}
	return a
}

// ageResult is one validation of the lifetime search.
type ageResult struct {
	// Age is the age the token was meant to have; MeasuredAge what it
	// had when the request left (later by the waits and Apple's speed).
	Age         string `json:"age"`
	MeasuredAge string `json:"measuredAge"`
	Fingerprint string `json:"fingerprint"`
	appleAnswer
}

// lifetimeReport is the lifetime half of the probe.
type lifetimeReport struct {
	Environment string      `json:"environment"`
	Ages        []ageResult `json:"ages"`
	// Reuse is the fresh token validated a second time; Bad is a made-up
	// token of the same size.
	Reuse *ageResult `json:"reuse,omitempty"`
	Bad   *ageResult `json:"bad,omitempty"`
	// ReuseAccepted reports whether Apple said yes to the second use.
	ReuseAccepted *bool `json:"reuseAccepted,omitempty"`
	// LongestValid is the greatest age Apple accepted; FirstRefused the
	// first age it refused (unset when it refused none).
	LongestValid string `json:"longestValid,omitempty"`
	FirstRefused string `json:"firstRefused,omitempty"`
	// Lifetime says what the two bracket, in words.
	Lifetime string `json:"lifetime"`
	// RecommendedMaxAge is half of LongestValid, as a --max-age value.
	RecommendedMaxAge string `json:"recommendedMaxAge,omitempty"`
	Recommendation    string `json:"recommendation"`
	// Answers holds the first answer of each kind seen: valid, tooOld,
	// reused, bad.
	Answers map[string]appleAnswer `json:"answers"`
	// Aborted says why the search stopped early.
	Aborted string `json:"aborted,omitempty"`
}

// searchLifetime makes one token per age (the oldest first, so the age-0
// token is the freshest), validates the age-0 token at once, again
// (reuse), and a made-up token (bad), then each other token once it is
// that old, in ascending order, until Apple refuses one.
func searchLifetime(ctx context.Context, p provider.Provider, apple *appleProbe, clock probeClock, ages []time.Duration, timeout time.Duration) lifetimeReport {
	r := lifetimeReport{Answers: map[string]appleAnswer{}}
	toks := make([][]byte, len(ages))
	made := make([]time.Time, len(ages))
	for i := len(ages) - 1; i >= 0; i-- {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		tok, err := p.Generate(cctx)
		cancel()
		if err != nil {
			r.Aborted = fmt.Sprintf("could not make a token for age %s: %v", shortDuration(ages[i]), err)
			r.Lifetime = "not measured"
			r.Recommendation = "fix token generation first (attestd selftest)"
			if h := hint.Of(err); h != "" {
				r.Recommendation += "; " + h
			}
			return r
		}
		toks[i], made[i] = tok, clock.Now()
	}
	check := func(tok []byte, age time.Duration, madeAt time.Time) ageResult {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		measured := clock.Now().Sub(madeAt)
		return ageResult{Age: shortDuration(age), MeasuredAge: measured.Round(time.Millisecond).String(),
			Fingerprint: header.Fingerprint(tok), appleAnswer: apple.validate(cctx, tok)}
	}
	note := func(kind string, a appleAnswer) {
		if _, seen := r.Answers[kind]; !seen {
			r.Answers[kind] = a
		}
	}

	fresh := check(toks[0], 0, made[0])
	r.Ages = append(r.Ages, fresh)
	switch fresh.Outcome {
	case outcomeValid:
		note("valid", fresh.appleAnswer)
	case outcomeAuth:
		r.Aborted = fmt.Sprintf("Apple refused the key (HTTP %d %q)", fresh.HTTPStatus, fresh.Body)
	case outcomeRefused:
		r.Aborted = fmt.Sprintf("Apple refused a fresh token (HTTP %d %q), so no lifetime can be measured", fresh.HTTPStatus, fresh.Body)
	default:
		r.Aborted = fmt.Sprintf("Apple's answer to a fresh token was inconclusive (HTTP %d %q %s)", fresh.HTTPStatus, fresh.Body, fresh.Error)
	}
	if r.Aborted != "" {
		r.Lifetime = "not measured"
		r.Recommendation = "fix what Apple refused, then run the probe again"
		return r
	}

	reuse := check(toks[0], 0, made[0])
	r.Reuse = &reuse
	note("reused", reuse.appleAnswer)
	if reuse.Outcome == outcomeValid || reuse.Outcome == outcomeRefused {
		accepted := reuse.Outcome == outcomeValid
		r.ReuseAccepted = &accepted
	}
	badTok := make([]byte, len(toks[0]))
	rand.Read(badTok)
	bad := check(badTok, 0, clock.Now())
	bad.Age, bad.MeasuredAge = "", ""
	r.Bad = &bad
	note("bad", bad.appleAnswer)

	longest := time.Duration(0)
	for i := 1; i < len(ages); i++ {
		if err := clock.Sleep(ctx, made[i].Add(ages[i]).Sub(clock.Now())); err != nil {
			r.Aborted = fmt.Sprintf("stopped before age %s: %v", shortDuration(ages[i]), err)
			break
		}
		res := check(toks[i], ages[i], made[i])
		r.Ages = append(r.Ages, res)
		if res.Outcome == outcomeValid {
			longest = ages[i]
			note("valid", res.appleAnswer)
			continue
		}
		if res.Outcome == outcomeAuth {
			r.Aborted = fmt.Sprintf("Apple refused the key at age %s (HTTP %d %q)", shortDuration(ages[i]), res.HTTPStatus, res.Body)
			break
		}
		if res.Outcome == outcomeRefused {
			r.FirstRefused = shortDuration(ages[i])
			note("tooOld", res.appleAnswer)
			break
		}
		// Inconclusive: this age says nothing; try the next one.
	}
	r.LongestValid = shortDuration(longest)
	r.judge(longest, ages)
	return r
}

// judge words the lifetime and the recommended --max-age.
func (r *lifetimeReport) judge(longest time.Duration, ages []time.Duration) {
	switch {
	case r.FirstRefused != "" && longest > 0:
		r.Lifetime = fmt.Sprintf("at least %s and less than %s", r.LongestValid, r.FirstRefused)
	case r.FirstRefused != "":
		r.Lifetime = fmt.Sprintf("less than %s", r.FirstRefused)
	case r.Aborted != "":
		r.Lifetime = fmt.Sprintf("at least %s (the search stopped early)", r.LongestValid)
	case longest == ages[len(ages)-1]:
		r.Lifetime = fmt.Sprintf("at least %s: Apple accepted every age asked", r.LongestValid)
	default:
		r.Lifetime = fmt.Sprintf("at least %s (Apple's answers to the older ages were inconclusive)", r.LongestValid)
	}
	rec := (longest / 2).Truncate(time.Second)
	if rec <= 0 {
		r.Recommendation = fmt.Sprintf("tokens may expire within %s: run again with finer ages, e.g. --ages 0s,2s,5s,10s,15s", r.FirstRefused)
		if r.FirstRefused == "" {
			r.Recommendation = "no age beyond 0s was answered: run again"
		}
		return
	}
	r.RecommendedMaxAge = shortDuration(rec)
	r.Recommendation = fmt.Sprintf("--max-age %s: half the longest age Apple accepted, leaving the other half for the trip through app-server to your server and its retries", r.RecommendedMaxAge)
}

// render writes the lifetime half for people.
func (r *lifetimeReport) render(w io.Writer) {
	fmt.Fprintf(w, "lifetime (%s):\n", r.Environment)
	line := func(what string, a ageResult) {
		fmt.Fprintf(w, "  %-12s %-13s HTTP %d %q", what, a.Outcome, a.HTTPStatus, a.Body)
		if a.MeasuredAge != "" {
			fmt.Fprintf(w, " (measured %s)", a.MeasuredAge)
		}
		if a.Error != "" && a.Outcome != outcomeValid && a.Outcome != outcomeRefused {
			fmt.Fprintf(w, " %s", a.Error)
		}
		fmt.Fprintln(w)
	}
	for i, a := range r.Ages {
		line("age "+a.Age, a)
		if i == 0 {
			if r.Reuse != nil {
				line("reuse", *r.Reuse)
			}
			if r.Bad != nil {
				line("bad token", *r.Bad)
			}
		}
	}
	fmt.Fprintf(w, "  lifetime: %s\n", r.Lifetime)
	if r.ReuseAccepted != nil {
		if *r.ReuseAccepted {
			fmt.Fprintf(w, "  reuse: Apple accepted the same token twice\n")
		} else {
			fmt.Fprintf(w, "  reuse: Apple refused the second use of a token\n")
		}
	}
	fmt.Fprintf(w, "  recommended: %s\n", r.Recommendation)
	if r.Aborted != "" {
		fmt.Fprintf(w, "  stopped: %s\n", r.Aborted)
	}
	fmt.Fprintf(w, "answers seen:\n")
	for _, kind := range []string{"valid", "tooOld", "reused", "bad"} {
		if a, ok := r.Answers[kind]; ok {
			fmt.Fprintf(w, "  %-7s HTTP %d %q (%s)\n", kind, a.HTTPStatus, a.Body, a.Outcome)
		}
	}
}
