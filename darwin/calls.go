package darwin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/provider"
)

// serialCalls runs requests to one Apple service one at a time, each
// bounded by its caller's context and a timeout. DeviceCheck's
// generateToken, each App Attest method and the Keychain item have one
// each.
//
// The slot is freed when Apple answers, not when the caller gives up, so
// a call that never returns (a hung XPC connection, a Keychain prompt
// nobody answers) holds it: later callers wait for it up to their own
// deadline instead of piling further requests onto Apple. An answer that
// comes after its caller gave up goes into a channel with room for one
// value that nobody reads any more, and is dropped with it.
type serialCalls struct {
	op      string // names the operation in errors: "devicecheck", "appattest generateKey"
	service string // names the service: "DeviceCheck", "App Attest", "the Keychain"
	timeout time.Duration
	// slot holds a value while a request is outstanding.
	slot chan struct{}
	// timer returns a channel that fires once the timeout has passed, and
	// a func that stops it; tests replace it.
	timer func(time.Duration) (<-chan time.Time, func())
}

func newSerialCalls(op, service string, timeout time.Duration) *serialCalls {
	return &serialCalls{op: op, service: service, timeout: timeout, slot: make(chan struct{}, 1), timer: realTimer}
}

// await waits for the slot, starts one request with start, and waits for
// its answer, all bounded by ctx and the timeout. start must return
// without waiting for the answer; unless it returns an error, the answer
// is passed to deliver later, from any goroutine or thread. deliver may be
// called more than once (Apple is not supposed to, but nothing stops it):
// only the first call counts and frees the slot, later ones are dropped
// and never block. A caller whose ctx is already done never reaches
// Apple.
func await[T any](ctx context.Context, s *serialCalls, start func(deliver func(T)) error) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("%s: not asking %s: %w", s.op, s.service, err)
	}
	expired, stop := s.timer(s.timeout)
	defer stop()

	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: waiting for the previous request to %s: %w", s.op, s.service, ctx.Err())
	case <-expired:
		return zero, s.timeoutErr(fmt.Sprintf("the previous request to %s is still outstanding", s.service))
	}

	// Room for one value: an answer that comes after await gave up must
	// never block Apple's thread.
	results := make(chan T, 1)
	var once sync.Once
	deliver := func(r T) {
		once.Do(func() {
			results <- r
			<-s.slot
		})
	}
	if err := start(deliver); err != nil {
		<-s.slot
		return zero, err
	}

	var err error
	select {
	case r := <-results:
		return r, nil
	case <-ctx.Done():
		err = fmt.Errorf("%s: no answer from %s: %w", s.op, s.service, ctx.Err())
	case <-expired:
		err = s.timeoutErr("no answer from " + s.service)
	}
	select {
	case r := <-results: // arrived together with the deadline: use it
		return r, nil
	default:
		return zero, err
	}
}

// timeoutErr reports the calls' own timeout.
func (s *serialCalls) timeoutErr(what string) error {
	return &provider.Error{
		Reason: provider.ReasonTimeout,
		Msg:    fmt.Sprintf("%s: %s after %v", s.op, what, s.timeout),
		Err:    context.DeadlineExceeded,
	}
}

// realTimer is serialCalls.timer outside tests.
func realTimer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
