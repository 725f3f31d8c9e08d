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

	"github.com/attestd/attestd/darwin"
)

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
