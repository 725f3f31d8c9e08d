// Package verifyprom exports what package verify does as Prometheus
// metrics. It is opt-in and kept apart from verify, so that programs that
// do not want Prometheus do not link it.
//
//	metrics := verifyprom.New()
//	prometheus.MustRegister(metrics)
//	apple, err := verify.NewClient(verify.Config{…, Observer: metrics})
//	v := &verify.Verifier{Client: apple, Observer: metrics}
//
// The metrics:
//
//	attestd_verify_checks_total{outcome, reason}             counter
//	attestd_verify_apple_request_duration_seconds{op, code}  histogram
//	attestd_verify_apple_retries_total{op, reason}           counter
//	attestd_verify_replay_store_errors_total                 counter
//
// outcome is "valid", "rejected" (the attestation is bad: verify.Rejected)
// or "not_checked" (the check could not be made); reason is verify.Reason
// of the error, "none" when valid; code is Apple's HTTP status, "none"
// when no answer came. Each label takes a small, fixed set of values.
package verifyprom

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestd/attestd/verify"
)

// Collector is a verify.Observer and a prometheus.Collector. Create it
// with New; it is safe for concurrent use.
type Collector struct {
	checks      *prometheus.CounterVec
	apple       *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	storeErrors prometheus.Counter
}

// New returns a Collector with every metric at zero.
func New() *Collector {
	return &Collector{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_verify_checks_total",
			Help: "Attestation checks by outcome (valid, rejected, not_checked) and reason.",
		}, []string{"outcome", "reason"}),
		apple: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attestd_verify_apple_request_duration_seconds",
			Help:    "Requests to Apple's DeviceCheck API by endpoint and HTTP status (none: no answer), and how long each took.",
			Buckets: []float64{.025, .05, .1, .2, .4, .8, 1.6, 3.2, 6.4},
		}, []string{"op", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_verify_apple_retries_total",
			Help: "Requests to Apple retried, by endpoint and the reason the attempt failed.",
		}, []string{"op", "reason"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attestd_verify_replay_store_errors_total",
			Help: "Failures of the replay store (each fails its check closed unless the store falls back).",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.checks.Describe(ch)
	c.apple.Describe(ch)
	c.retries.Describe(ch)
	c.storeErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.checks.Collect(ch)
	c.apple.Collect(ch)
	c.retries.Collect(ch)
	c.storeErrors.Collect(ch)
}

// ObserveCheck implements verify.Observer.
func (c *Collector) ObserveCheck(err error, _ time.Duration) {
	outcome, reason := "valid", "none"
	switch {
	case err == nil:
	case verify.Rejected(err):
		outcome, reason = "rejected", verify.Reason(err)
	default:
		outcome, reason = "not_checked", verify.Reason(err)
	}
	c.checks.WithLabelValues(outcome, reason).Inc()
}

// ObserveAppleRequest implements verify.Observer.
func (c *Collector) ObserveAppleRequest(op string, status int, elapsed time.Duration) {
	code := "none"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	c.apple.WithLabelValues(op, code).Observe(elapsed.Seconds())
}

// ObserveRetry implements verify.Observer.
func (c *Collector) ObserveRetry(op string, err error) {
	c.retries.WithLabelValues(op, verify.Reason(err)).Inc()
}

// ObserveReplayStoreError implements verify.Observer.
func (c *Collector) ObserveReplayStoreError(error) { c.storeErrors.Inc() }

var (
	_ verify.Observer      = (*Collector)(nil)
	_ prometheus.Collector = (*Collector)(nil)
)
