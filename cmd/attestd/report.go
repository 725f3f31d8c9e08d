package main

import (
	"encoding/json"
	"io"

	"github.com/attestd/attestd/internal/diag"
)

// writeReport prints report as indented JSON, or with render for people.
func writeReport(w io.Writer, asJSON bool, report any, render func(io.Writer)) error {
	if !asJSON {
		render(w)
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// printReport prints a diagnostics report (doctor's, selftest's), as JSON
// or for people, and makes the command exit 1 when a check failed.
func printReport(s *streams, r diag.Report, asJSON bool) error {
	if asJSON {
		if err := r.WriteJSON(s.out); err != nil {
			return err
		}
	} else {
		r.Render(s.out)
	}
	if !r.OK {
		return exitCode(1)
	}
	return nil
}
