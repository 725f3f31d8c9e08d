package diag

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// bounded is the outcome of a call made by callBounded.
type bounded[T any] struct {
	v       T
	err     error
	elapsed time.Duration
	// hung is true when the call did not return in time; it keeps running
	// (an Apple call cannot be interrupted) and its results are dropped.
	hung bool
}

// callBounded runs f on its own goroutine and waits up to d, or until ctx
// ends, for it to return.
func callBounded[T any](ctx context.Context, now func() time.Time, d time.Duration, f func() (T, error)) bounded[T] {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // room for a late answer nobody reads
	start := now()
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-done:
		return bounded[T]{v: r.v, err: r.err, elapsed: now().Sub(start)}
	case <-t.C:
	case <-ctx.Done():
	}
	return bounded[T]{elapsed: now().Sub(start), hung: true, err: context.DeadlineExceeded}
}

func boundedSupportedCheck(ctx context.Context, env Env, gui Check, timeout time.Duration) Check {
	c := newCheck("devicecheck-supported")
	if gui.Status != Pass {
		c.set(Skipped, "not asked: without a GUI session DeviceCheck would trap the process")
		return c
	}
	r := callBounded(ctx, env.Now, timeout, env.DeviceCheckSupported)
	c.took(r.elapsed)
	c.fact("hung", r.hung)
	switch {
	case r.hung:
		c.set(Fail, fmt.Sprintf("DCDevice.isSupported did not return within %v: it can hang; the DeviceCheck calls that follow are skipped", timeout))
		c.Hint = "report this with the macOS version; attestd would hang at start-up on this Mac"
	case r.err != nil:
		c.fail(r.err)
	case !r.v:
		c.set(Fail, fmt.Sprintf("DCDevice.isSupported is false (after %v)", r.elapsed.Round(time.Microsecond)))
		c.Hint = "DeviceCheck works on " + provider.MinMacOS + " or later on real Macs; virtual machines may not support it"
		c.fact("supported", false)
	default:
		c.set(Pass, fmt.Sprintf("DCDevice.isSupported is true (answered in %v)", r.elapsed.Round(time.Microsecond)))
		c.fact("supported", true)
	}
	return c
}

// deviceCheckRun carries what the devicecheck-token check found to the
// completion-queue check, which judges where Apple ran the handler of
// that same call.
type deviceCheckRun struct {
	asked      bool // a token was asked for
	err        error
	completion *darwin.Completion // nil when the handler was not seen
}

// token asks DeviceCheck for one real token.
func (d *deviceCheckRun) token(r *run, timeout time.Duration) Check {
	c := newCheck("devicecheck-token")
	if r.result("devicecheck-supported").Status != Pass {
		c.set(Skipped, "not asked: DeviceCheck is not available here (see devicecheck-supported)")
		return c
	}
	completions := make(chan darwin.Completion, 8)
	p, err := r.env.NewDeviceCheck(darwin.DeviceCheckOptions{Timeout: timeout, OnCompletion: func(c darwin.Completion) {
		select {
		case completions <- c:
		default:
		}
	}})
	if err != nil {
		c.fail(err)
		return c
	}
	// The provider bounds the call by timeout itself; the extra second
	// catches a provider that does not.
	res := callBounded(r.ctx, r.env.Now, timeout+time.Second, func() ([]byte, error) {
		ans, err := p.Generate(r.ctx)
		return ans.Token, err
	})
	sig, sigErr := r.signature()
	c = judgeToken(hasTeam(sig) && sigErr == nil, signingKind(sig), res, timeout)
	d.asked, d.err = true, res.err
	select {
	case got := <-completions:
		d.completion = &got
	default:
	}
	return c
}

// completionQueue reports where Apple ran the completion handler of the
// token call, and, when it never ran, whether the main queue could be why.
func (d *deviceCheckRun) completionQueue(r *run) Check {
	if !d.asked {
		c := newCheck("completion-queue")
		c.set(Skipped, "no token was asked for")
		return c
	}
	running, why := r.env.MainLoopRunning()
	var pingErr error
	if d.completion == nil {
		pctx, cancel := context.WithTimeout(r.ctx, time.Second)
		pingErr = r.env.PingMainQueue(pctx)
		cancel()
	}
	return judgeCompletion(d.completion, d.err, running, why, pingErr)
}

// judgeToken decides the devicecheck-token check. A helper with a Team ID
// must get a token; one without must be refused cleanly, with an NSError
// (Apple's code named), never a hang.
func judgeToken(expectToken bool, signing string, r bounded[[]byte], timeout time.Duration) Check {
	c := newCheck("devicecheck-token")
	c.took(r.elapsed)
	took := r.elapsed.Round(time.Millisecond)
	code, hasCode := provider.DCErrorCodeOf(r.err)
	var dc *darwin.DCError
	isDC := errors.As(r.err, &dc)
	if hasCode {
		c.fact("dcErrorCode", code)
	}
	if isDC {
		c.fact("nsErrorDomain", dc.Domain)
		c.fact("nsErrorCode", dc.Code)
		c.fact("nsErrorDescription", dc.Description)
	}
	switch {
	case r.hung || provider.ReasonOf(r.err) == provider.ReasonTimeout:
		c.set(Fail, fmt.Sprintf("generateToken did not call its completion handler within %v (see completion-queue)", timeout))
		c.Hint = "report this with the whole report; a longer --timeout tells a slow call from a hung one"
	case r.err == nil && len(r.v) > 0:
		c.fact("tokenBytes", len(r.v))
		c.fact("fingerprint", header.Fingerprint(r.v))
		if expectToken {
			c.set(Pass, fmt.Sprintf("a %d-byte token (fingerprint %s) in %v", len(r.v), header.Fingerprint(r.v), took))
		} else {
			c.set(Pass, fmt.Sprintf("a %d-byte token (fingerprint %s) in %v, although this binary is %s: Apple did not require a Team ID to issue it (whether it validates is for attestd probe with a key)", len(r.v), header.Fingerprint(r.v), took, signing))
		}
	case isDC && !expectToken:
		c.set(Pass, fmt.Sprintf("Apple refused this %s binary cleanly in %v: %s [domain %s, code %d]", signing, took, r.err, dc.Domain, dc.Code))
	case isDC:
		c.set(Fail, fmt.Sprintf("Apple refused the token in %v: %s [domain %s, code %d]", took, r.err, dc.Domain, dc.Code))
		c.Hint = hint.Of(r.err)
	case r.err != nil:
		c.set(Fail, fmt.Sprintf("generateToken failed in %v without an NSError: %v", took, r.err))
		c.Hint = hint.Of(r.err)
	default:
		c.set(Fail, "generateToken returned an empty token and no error")
	}
	return c
}

// judgeCompletion decides the completion-queue check: where Apple ran the
// handler, and, when it never ran, whether the main queue could be why.
func judgeCompletion(c *darwin.Completion, tokenErr error, loopRunning bool, why string, pingErr error) Check {
	w := newCheck("completion-queue")
	if c == nil {
		w.fact("called", false)
		switch {
		case tokenErr == nil:
			w.set(Fail, "a token arrived but the completion handler was not observed")
		case !loopRunning && pingErr != nil:
			w.set(Fail, fmt.Sprintf("the completion handler never ran, and this process does not service the main queue (%s): Apple may be posting it to the main queue", why))
			w.Hint = "report this: it means DeviceCheck answers on the main queue and attestd must run the main run loop"
		case pingErr != nil:
			w.set(Fail, "the completion handler never ran, and the main queue is not serviced: "+pingErr.Error())
		default:
			w.set(Fail, "the completion handler never ran, though the main queue is serviced: DeviceCheck itself did not answer")
		}
		return w
	}
	w.fact("called", true)
	w.fact("mainThread", c.MainThread)
	w.fact("queue", c.Queue)
	w.fact("thread", c.Thread)
	w.fact("requestThread", c.RequestThread)
	w.fact("duringRequest", c.DuringRequest)
	w.fact("mainQueue", c.MainQueue())
	if c.MainQueue() {
		w.set(Pass, fmt.Sprintf("MAIN QUEUE: Apple called the completion handler %v. attestd runs the main run loop, so tokens arrive; a Go process that does not would time out on every call", c))
		return w
	}
	w.set(Pass, fmt.Sprintf("Apple called the completion handler %v: the main run loop is not needed for it", c))
	return w
}
