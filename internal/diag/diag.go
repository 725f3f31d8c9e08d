// Package diag is attestd's diagnostics engine: "attestd doctor" and
// "attestd selftest" are two ordered lists of checks, run over one Env
// (what the checks ask the system), that each produce one Report.
//
// A check passes, fails (with a hint saying what to do) or is skipped,
// saying why: a check that depends on an earlier one is skipped when that
// one did not pass, and off macOS every macOS-only check is skipped
// without being run. Tokens appear in a report only as sizes and
// fingerprints.
package diag

import (
	"context"
	"time"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// Status is the outcome of a check.
type Status string

// The statuses, as the reports print them.
const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Skipped Status = "skipped"
)

// Check is one line of a report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Hint says what to do about a check that did not pass.
	Hint string `json:"hint,omitempty"`
	// Millis is how long the check's main call took, in milliseconds;
	// nil when the check does not time one.
	Millis *float64 `json:"ms,omitempty"`
	// Facts holds what the check found, by name, for machines.
	Facts map[string]any `json:"facts,omitempty"`
}

func newCheck(name string) Check { return Check{Name: name} }

func (c *Check) set(status Status, detail string) { c.Status, c.Detail = status, detail }

// fail fails the check with err, and the hint err carries.
func (c *Check) fail(err error) {
	c.set(Fail, err.Error())
	c.Hint = provider.HintOf(err)
}

// osVersion asks env for the macOS version; when it cannot be read, the
// check fails with why.
func (c *Check) osVersion(env Env) (string, bool) {
	v, err := env.OSVersion()
	if err != nil {
		c.set(Fail, err.Error())
		return "", false
	}
	return v, true
}

func (c *Check) fact(name string, v any) {
	if c.Facts == nil {
		c.Facts = map[string]any{}
	}
	c.Facts[name] = v
}

func (c *Check) took(d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	c.Millis = &ms
}

// A step is one check of a list.
type step struct {
	name string
	// macOnly steps are skipped off macOS without being run.
	macOnly bool
	// check makes the check; it may read what the steps before it found.
	check func(r *run) Check
}

// list is an ordered list of checks: what one command runs.
type list struct {
	command string
	// offMac is the detail of a macOS-only check skipped elsewhere.
	offMac string
	steps  []step
}

// run is one pass over a list: the system it asks and what the checks
// found so far.
type run struct {
	ctx    context.Context
	env    Env
	report Report

	sigRead bool
	sig     darwin.Signature
	sigErr  error
}

// runList runs every step of l in order and returns the report, whose
// Attestd, Go and Time the caller may have set in head.
func runList(ctx context.Context, env Env, l list, head Report) Report {
	r := &run{ctx: ctx, env: env, report: head}
	goos, goarch := env.Platform()
	r.report.Command, r.report.Platform = l.command, goos+"/"+goarch
	for _, s := range l.steps {
		var c Check
		if s.macOnly && !env.Native() {
			c.set(Skipped, l.offMac)
		} else {
			c = s.check(r)
		}
		c.Name = s.name
		r.report.Checks = append(r.report.Checks, c)
	}
	r.report.count()
	return r.report
}

// result returns the check named name that ran before, or a zero Check.
func (r *run) result(name string) Check {
	c, _ := r.report.Find(name)
	return c
}

// failures counts the checks that failed so far.
func (r *run) failures() int {
	n := 0
	for _, c := range r.report.Checks {
		if c.Status == Fail {
			n++
		}
	}
	return n
}

// signature reads the own code signature once per run.
func (r *run) signature() (darwin.Signature, error) {
	if !r.sigRead {
		r.sig, r.sigErr = r.env.Signature()
		r.sigRead = true
	}
	return r.sig, r.sigErr
}
