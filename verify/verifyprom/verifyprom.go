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
//	attestd_verify_checks_total{kind, outcome, reason}       counter
//	attestd_verify_apple_request_duration_seconds{op, code}  histogram
//	attestd_verify_apple_retries_total{op, reason}           counter
//	attestd_verify_replay_store_errors_total                 counter
//
// kind is the value's kind: "dc" (DeviceCheck), "aa" (App Attest), "dev",
// or "none" when nothing could be parsed; outcome is "valid", "rejected"
// (the attestation is bad: verify.Rejected) or "not_checked" (the check
// could not be made); reason is verify.Reason of the error (App Attest
// adds unknown_key, revoked_key, dev_key, key_store and the assertion's
// bad_signature, bad_format, bad_auth_data, bad_app_id), "none" when
// valid; code is Apple's HTTP status when the
// API documents it (200, 400, 401, 403, 405, 429, 500, 503), else its
// class (1xx … 5xx), "other" for a number outside 100–599, and "none"
// when no answer came. Each label takes a small, fixed set of values,
// whatever an upstream sends.
package verifyprom

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestd/attestd/bridge/header"
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
			Help: "Attestation checks by kind (dc, aa, dev, none), outcome (valid, rejected, not_checked) and reason.",
		}, []string{"kind", "outcome", "reason"}),
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

// ObserveCheck implements verify.Observer; a Verifier calls
// ObserveCheckKind instead, and ObserveCheck counts its check under kind
// "none".
func (c *Collector) ObserveCheck(err error, elapsed time.Duration) {
	c.ObserveCheckKind("", err, elapsed)
}

// ObserveCheckKind implements verify.KindObserver.
func (c *Collector) ObserveCheckKind(kind string, err error, _ time.Duration) {
	outcome, reason := "valid", "none"
	switch {
	case err == nil:
	case verify.Rejected(err):
		outcome, reason = "rejected", verify.Reason(err)
	default:
		outcome, reason = "not_checked", verify.Reason(err)
	}
	c.checks.WithLabelValues(kindLabel(kind), outcome, reason).Inc()
}

// kindLabel is the kind label: one of the kinds package header defines,
// or "none".
func kindLabel(kind string) string {
	switch kind {
	case header.KindDeviceCheck, header.KindAppAttest, header.KindDev:
		return kind
	}
	return "none"
}

// ObserveAppleRequest implements verify.Observer.
func (c *Collector) ObserveAppleRequest(op string, status int, elapsed time.Duration) {
	c.apple.WithLabelValues(op, codeLabel(status)).Observe(elapsed.Seconds())
}

// appleCodes are the statuses Apple's DeviceCheck API documents (and 405,
// which it sends for a wrong method): each gets its own code label.
var appleCodes = map[int]string{200: "200", 400: "400", 401: "401", 403: "403", 405: "405", 429: "429", 500: "500", 503: "503"}

// codeLabel returns the code label for an answer's status: the status
// itself when Apple documents it, else its class (StatusLabel), whatever
// an upstream or a proxy sends.
func codeLabel(status int) string { return StatusLabel(status, appleCodes) }

// StatusLabel returns a bounded Prometheus label for an HTTP status: the
// status itself when known lists it, else its class ("2xx" … "5xx"),
// "other" for a number outside 100–599, and "none" for no answer (0).
// Whatever a peer sends, the label takes one of len(known)+7 values.
func StatusLabel(status int, known map[int]string) string {
	if code, ok := known[status]; ok {
		return code
	}
	switch {
	case status == 0:
		return "none"
	case status >= 100 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return "other"
}

// ObserveRetry implements verify.Observer.
func (c *Collector) ObserveRetry(op string, err error) {
	c.retries.WithLabelValues(op, verify.Reason(err)).Inc()
}

// ObserveReplayStoreError implements verify.Observer.
func (c *Collector) ObserveReplayStoreError(error) { c.storeErrors.Inc() }

var (
	_ verify.KindObserver  = (*Collector)(nil)
	_ prometheus.Collector = (*Collector)(nil)
)
