package verify

import "time"

// Observer receives what a Client and a Verifier do, for metrics. Set the
// same one in Config.Observer and Verifier.Observer; package verifyprom
// provides one that exports Prometheus metrics. Methods are called on the
// request path, from many goroutines at once: they must be safe for
// concurrent use, fast, and must not block.
type Observer interface {
	// ObserveCheck is called once per Verifier.Verify with its error
	// (nil: valid; classify it with Reason, Rejected and AppleDown) and
	// how long the whole check took; and once per request Middleware
	// refuses without calling Verify (no attestation header: ErrMissing;
	// more than one: ErrMalformed), with elapsed zero.
	ObserveCheck(err error, elapsed time.Duration)
	// ObserveAppleRequest is called once per HTTP request sent to Apple:
	// the endpoint (e.g. "validate_device_token"), the answer's status
	// code (0 when no answer came) and how long it took.
	ObserveAppleRequest(op string, status int, elapsed time.Duration)
	// ObserveRetry is called each time a Client retries a request, with
	// the error of the attempt that failed.
	ObserveRetry(op string, err error)
	// ObserveReplayStoreError is called when the replay store fails (the
	// check then fails closed, unless the store falls back itself).
	ObserveReplayStoreError(err error)
}
