package probe

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// Latency is the latency half of the probe. Durations are in
// milliseconds; the statistics cover the calls after the cold one that
// succeeded.
type Latency struct {
	// Count is how many calls were timed after the cold one.
	Count int `json:"count"`
	// ColdMs is the first call, which loads DeviceCheck and opens its
	// connection; ColdError is set when it failed.
	ColdMs     float64 `json:"coldMs"`
	ColdError  string  `json:"coldError,omitempty"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"firstError,omitempty"`
	MinMs      float64 `json:"minMs"`
	P50Ms      float64 `json:"p50Ms"`
	P90Ms      float64 `json:"p90Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	MeanMs     float64 `json:"meanMs"`
	// TokenBytes is the size of the last token (DeviceCheck's vary).
	TokenBytes int `json:"tokenBytes,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measureLatency makes one cold call and then count more, one at a time,
// each bounded by timeout.
func measureLatency(ctx context.Context, p provider.Provider, count int, timeout time.Duration, clock Clock) Latency {
	r := Latency{Count: count}
	call := func() (time.Duration, []byte, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		start := clock.Now()
		ans, err := p.Generate(cctx)
		return clock.Now().Sub(start), ans.Token, err
	}
	cold, tok, err := call()
	r.ColdMs = ms(cold)
	if err != nil {
		r.ColdError = err.Error()
	} else {
		r.TokenBytes = len(tok)
	}
	var took []time.Duration
	for range count {
		if ctx.Err() != nil {
			break
		}
		d, tok, err := call()
		if err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
			continue
		}
		took = append(took, d)
		r.TokenBytes = len(tok)
	}
	r.OK = len(took)
	if r.FirstError == "" && r.OK == 0 {
		r.FirstError = r.ColdError
	}
	if len(took) == 0 {
		return r
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	r.MinMs, r.MaxMs = ms(took[0]), ms(took[len(took)-1])
	r.P50Ms, r.P90Ms, r.P99Ms = ms(percentile(took, 50)), ms(percentile(took, 90)), ms(percentile(took, 99))
	r.MeanMs = ms(sum / time.Duration(len(took)))
	return r
}

// percentile returns the nearest-rank p-th percentile of sorted: the
// smallest value with at least p% of the values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
