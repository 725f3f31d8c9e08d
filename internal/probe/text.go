package probe

import (
	"fmt"
	"io"
)

// WriteText writes the report for people, as "attestd probe" prints it.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "attestd probe (%s, provider %s, attestd %s)\n", r.Platform, r.Provider, r.Attestd)
	if l := r.Latency; l != nil {
		l.writeText(w)
	}
	if l := r.Lifetime; l != nil {
		l.writeText(w)
	}
	if a := r.AppAttest; a != nil {
		a.writeText(w)
	}
}

func (l *Latency) writeText(w io.Writer) {
	fmt.Fprintf(w, "latency: a cold call, then %d calls (%d ok, %d failed)\n", l.Count, l.OK, l.Errors)
	cold := fmt.Sprintf("%.2f ms", l.ColdMs)
	if l.ColdError != "" {
		cold += " (failed: " + l.ColdError + ")"
	}
	fmt.Fprintf(w, "  cold  %s\n", cold)
	if l.OK > 0 {
		fmt.Fprintf(w, "  min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f ms; tokens of %d bytes\n",
			l.MinMs, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.MeanMs, l.TokenBytes)
	}
	if l.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", l.FirstError)
	}
}

func (r *Lifetime) writeText(w io.Writer) {
	fmt.Fprintf(w, "lifetime (%s):\n", r.Environment)
	for i, a := range r.Ages {
		writeAgeLine(w, "age "+a.Age, a)
		if i == 0 {
			if r.Reuse != nil {
				writeAgeLine(w, "reuse", *r.Reuse)
			}
			if r.Bad != nil {
				writeAgeLine(w, "bad token", *r.Bad)
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

// writeAgeLine writes one validation: what was asked, Apple's answer and,
// for an answer that is neither yes nor no, what verify made of it.
func writeAgeLine(w io.Writer, what string, a AgeResult) {
	fmt.Fprintf(w, "  %-12s %-13s HTTP %d %q", what, a.Outcome, a.HTTPStatus, a.Body)
	if a.MeasuredAge != "" {
		fmt.Fprintf(w, " (measured %s)", a.MeasuredAge)
	}
	if a.Error != "" && a.Outcome != OutcomeValid && a.Outcome != OutcomeRefused {
		fmt.Fprintf(w, " %s", a.Error)
	}
	fmt.Fprintln(w)
}
