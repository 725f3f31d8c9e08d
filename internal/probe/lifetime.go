package probe

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

// AgeResult is one validation of the lifetime search.
type AgeResult struct {
	// Age is the age the token was meant to have; MeasuredAge what it
	// had when the request left (later by the waits and Apple's speed).
	Age         string `json:"age"`
	MeasuredAge string `json:"measuredAge"`
	Fingerprint string `json:"fingerprint"`
	Answer
}

// Lifetime is the lifetime half of the probe.
type Lifetime struct {
	Environment string      `json:"environment"`
	Ages        []AgeResult `json:"ages"`
	// Reuse is the fresh token validated a second time; Bad is a made-up
	// token of the same size.
	Reuse *AgeResult `json:"reuse,omitempty"`
	Bad   *AgeResult `json:"bad,omitempty"`
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
	Answers map[string]Answer `json:"answers"`
	// Aborted says why the search stopped early.
	Aborted string `json:"aborted,omitempty"`
}

// lifetimeSearch is one run of searchLifetime: what it asks with and
// the report it fills.
type lifetimeSearch struct {
	ctx     context.Context
	apple   *appleProbe
	clock   Clock
	timeout time.Duration
	r       Lifetime
}

// searchLifetime makes one token per age (the oldest first, so the age-0
// token is the freshest), validates the age-0 token at once, again
// (reuse), and a made-up token (bad), then each other token once it is
// that old, in ascending order, until Apple refuses one.
func searchLifetime(ctx context.Context, p provider.Provider, apple *appleProbe, clock Clock, ages []time.Duration, timeout time.Duration) Lifetime {
	s := &lifetimeSearch{ctx: ctx, apple: apple, clock: clock, timeout: timeout, r: Lifetime{Answers: map[string]Answer{}}}
	toks, made, ok := s.makeTokens(p, ages)
	if !ok || !s.checkFresh(toks[0], made[0]) {
		return s.r
	}
	s.checkReuseAndBad(toks[0], made[0])
	longest := s.checkAges(toks, made, ages)
	s.r.LongestValid = shortDuration(longest)
	s.r.judge(longest, ages)
	return s.r
}

// makeTokens makes one token per age, the oldest first, and notes when
// each was made. It reports false, with the report filled, when one
// could not be made.
func (s *lifetimeSearch) makeTokens(p provider.Provider, ages []time.Duration) ([][]byte, []time.Time, bool) {
	toks := make([][]byte, len(ages))
	made := make([]time.Time, len(ages))
	for i := len(ages) - 1; i >= 0; i-- {
		cctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		ans, err := p.Generate(cctx)
		cancel()
		if err != nil {
			s.r.Aborted = fmt.Sprintf("could not make a token for age %s: %v", shortDuration(ages[i]), err)
			s.r.Lifetime = "not measured"
			s.r.Recommendation = "fix token generation first (attestd selftest)"
			if h := hint.Of(err); h != "" {
				s.r.Recommendation += "; " + h
			}
			return nil, nil, false
		}
		toks[i], made[i] = ans.Token, s.clock.Now()
	}
	return toks, made, true
}

// check validates tok, which was made at madeAt to be age old.
func (s *lifetimeSearch) check(tok []byte, age time.Duration, madeAt time.Time) AgeResult {
	cctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	measured := s.clock.Now().Sub(madeAt)
	return AgeResult{Age: shortDuration(age), MeasuredAge: measured.Round(time.Millisecond).String(),
		Fingerprint: header.Fingerprint(tok), Answer: s.apple.validate(cctx, tok)}
}

// note keeps a as the answer of its kind, unless one was kept already.
func (s *lifetimeSearch) note(kind string, a Answer) {
	if _, seen := s.r.Answers[kind]; !seen {
		s.r.Answers[kind] = a
	}
}

// checkFresh validates the fresh token and reports whether Apple said
// yes; otherwise the report says why nothing more can be measured.
func (s *lifetimeSearch) checkFresh(tok []byte, made time.Time) bool {
	fresh := s.check(tok, 0, made)
	s.r.Ages = append(s.r.Ages, fresh)
	switch fresh.Outcome {
	case OutcomeValid:
		s.note("valid", fresh.Answer)
		return true
	case OutcomeAuth:
		s.r.Aborted = fmt.Sprintf("Apple refused the key (HTTP %d %q)", fresh.HTTPStatus, fresh.Body)
	case OutcomeRefused:
		s.r.Aborted = fmt.Sprintf("Apple refused a fresh token (HTTP %d %q), so no lifetime can be measured", fresh.HTTPStatus, fresh.Body)
	default:
		s.r.Aborted = fmt.Sprintf("Apple's answer to a fresh token was inconclusive (HTTP %d %q %s)", fresh.HTTPStatus, fresh.Body, fresh.Error)
	}
	s.r.Lifetime = "not measured"
	s.r.Recommendation = "fix what Apple refused, then run the probe again"
	return false
}

// checkReuseAndBad validates the fresh token a second time, and a
// made-up token of its size.
func (s *lifetimeSearch) checkReuseAndBad(tok []byte, made time.Time) {
	reuse := s.check(tok, 0, made)
	s.r.Reuse = &reuse
	s.note("reused", reuse.Answer)
	if reuse.Outcome == OutcomeValid || reuse.Outcome == OutcomeRefused {
		accepted := reuse.Outcome == OutcomeValid
		s.r.ReuseAccepted = &accepted
	}
	badTok := make([]byte, len(tok))
	rand.Read(badTok)
	bad := s.check(badTok, 0, s.clock.Now())
	bad.Age, bad.MeasuredAge = "", ""
	s.r.Bad = &bad
	s.note("bad", bad.Answer)
}

// checkAges validates each token but the fresh one once it is its age,
// until Apple refuses one, and returns the greatest age Apple accepted.
func (s *lifetimeSearch) checkAges(toks [][]byte, made []time.Time, ages []time.Duration) time.Duration {
	longest := time.Duration(0)
	for i := 1; i < len(ages); i++ {
		if err := s.clock.Sleep(s.ctx, made[i].Add(ages[i]).Sub(s.clock.Now())); err != nil {
			s.r.Aborted = fmt.Sprintf("stopped before age %s: %v", shortDuration(ages[i]), err)
			return longest
		}
		res := s.check(toks[i], ages[i], made[i])
		s.r.Ages = append(s.r.Ages, res)
		switch res.Outcome {
		case OutcomeValid:
			longest = ages[i]
			s.note("valid", res.Answer)
		case OutcomeAuth:
			s.r.Aborted = fmt.Sprintf("Apple refused the key at age %s (HTTP %d %q)", shortDuration(ages[i]), res.HTTPStatus, res.Body)
			return longest
		case OutcomeRefused:
			s.r.FirstRefused = shortDuration(ages[i])
			s.note("tooOld", res.Answer)
			return longest
		}
		// Inconclusive: this age says nothing; try the next one.
	}
	return longest
}

// judge words the lifetime and the recommended --max-age.
func (r *Lifetime) judge(longest time.Duration, ages []time.Duration) {
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
