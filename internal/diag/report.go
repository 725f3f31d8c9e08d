package diag

import (
	"encoding/json"
	"fmt"
	"io"
)

// Report is the outcome of one run of a list of checks: what "attestd
// doctor" and "attestd selftest" print.
type Report struct {
	// Command names the list that made the report ("doctor" or
	// "selftest"); it heads the text form and decides the JSON shape.
	Command string `json:"-"`
	// OK is true when no check failed; skipped checks do not fail.
	OK bool `json:"ok"`
	// Attestd is the version of attestd that ran the checks.
	Attestd string `json:"attestd"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
	// Go and Time, the Go version and when the run started (RFC 3339,
	// UTC), are set by the selftest only.
	Go   string `json:"go"`
	Time string `json:"time"`
	// Failed and Skipped count the checks with those statuses.
	Failed  int     `json:"failed"`
	Skipped int     `json:"skipped"`
	Checks  []Check `json:"checks"`
}

// Find returns the check named name, and whether the report has one.
func (r Report) Find(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// count sets Failed, Skipped and OK from the checks.
func (r *Report) count() {
	r.Failed, r.Skipped = 0, 0
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			r.Failed++
		case Skipped:
			r.Skipped++
		}
	}
	r.OK = r.Failed == 0
}

// MarshalJSON writes the report as --json prints it. A doctor report
// keeps the shape scripts have read since it first shipped, {"ok",
// "platform", "checks"}; a selftest report adds the version, Go, time
// and counts.
func (r Report) MarshalJSON() ([]byte, error) {
	if r.Command == doctorCommand {
		return json.Marshal(struct {
			OK       bool    `json:"ok"`
			Platform string  `json:"platform"`
			Checks   []Check `json:"checks"`
		}{r.OK, r.Platform, r.Checks})
	}
	type plain Report // Report without this method
	return json.Marshal(plain(r))
}

// WriteJSON writes the report as indented JSON, as --json prints it.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Render writes the report for people: a heading, a line for each check
// (with its hint unless it passed, and its duration when it timed one),
// and a summary.
func (r Report) Render(w io.Writer) {
	goVersion := ""
	if r.Go != "" {
		goVersion = ", " + r.Go
	}
	fmt.Fprintf(w, "attestd %s (%s, attestd %s%s)\n", r.Command, r.Platform, r.Attestd, goVersion)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		took := ""
		if c.Millis != nil {
			took = fmt.Sprintf(" [%.1f ms]", *c.Millis)
		}
		fmt.Fprintf(w, "  %-7s  %-*s  %s%s\n", c.Status, width, c.Name, c.Detail, took)
		if c.Hint != "" && c.Status != Pass {
			fmt.Fprintf(w, "  %-7s  %-*s  hint: %s\n", "", width, "", c.Hint)
		}
	}
	fmt.Fprintln(w, r.summary())
}

// summary is the report's last line. The doctor's keeps its first wording:
// it counts skipped checks only when none failed, and says "all checks
// passed" when none was skipped either.
func (r Report) summary() string {
	skipped := fmt.Sprintf(" (%d skipped)", r.Skipped)
	if r.Command == doctorCommand {
		if r.Failed > 0 {
			skipped = ""
		} else if r.Skipped == 0 {
			return "all checks passed"
		}
	}
	switch {
	case r.Failed == 1:
		return "1 check failed" + skipped
	case r.Failed > 1:
		return fmt.Sprintf("%d checks failed", r.Failed) + skipped
	}
	return "no check failed" + skipped
}
