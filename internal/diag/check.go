package diag

import (
	"time"

	"github.com/attestd/attestd/bridge/hint"
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
	c.Hint = hint.Of(err)
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
