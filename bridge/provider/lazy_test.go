package provider

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/internal/clock"
)

// startScript makes a Start func that fails with errs[i] on attempt i and
// succeeds (with the dev provider) once errs runs out.
func startScript(calls *atomic.Int32, errs ...error) func() (Provider, error) {
	return func() (Provider, error) {
		n := int(calls.Add(1)) - 1
		if n < len(errs) {
			return nil, errs[n]
		}
		return Dev{}, nil
	}
}

var errNoSession = &Error{Reason: ReasonNoGUISession, Msg: "no GUI session", HintText: "log in"}

func TestLazyUnsupportedFailsAtOnceAndForGood(t *testing.T) {
	unsupported := &Error{Reason: ReasonUnsupported, Msg: "not here", HintText: "use --provider dev"}
	var calls atomic.Int32
	clk := clock.NewFake(time.Unix(1000, 0))
	l := NewLazy(LazyConfig{Kind: header.KindDeviceCheck, Name: "DeviceCheck", Start: startScript(&calls, unsupported), Now: clk.Now})
	if l.Name() != header.KindDeviceCheck {
		t.Fatalf("Name = %q before start", l.Name())
	}
	<-l.Start()
	for range 3 {
		clk.Advance(time.Hour)
		_, err := l.Generate(context.Background())
		if ReasonOf(err) != ReasonUnsupported || hint.Of(err) != "use --provider dev" || !errors.Is(err, unsupported) {
			t.Fatalf("Generate = %v (reason %q, hint %q), want the start error with its reason and hint", err, ReasonOf(err), hint.Of(err))
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("Start ran %d times; an unsupported provider must not be retried", n)
	}
	st := l.State()
	if st.Started || st.Err == nil || st.Attempts != 1 || !st.RetryAt.IsZero() || !st.At.Equal(time.Unix(1000, 0)) {
		t.Fatalf("State = %+v", st)
	}
}

func TestLazyRetriesWithBackoff(t *testing.T) {
	var calls atomic.Int32
	clk := clock.NewFake(time.Unix(1000, 0))
	var results []error
	var mu sync.Mutex
	l := NewLazy(LazyConfig{
		Kind: header.KindDev, Start: startScript(&calls, errNoSession, errNoSession, errNoSession, errNoSession),
		BackoffMin: time.Second, BackoffMax: 3 * time.Second, Now: clk.Now,
		OnStart: func(err error) { mu.Lock(); results = append(results, err); mu.Unlock() },
	})
	<-l.Start()
	// Each failure allows the next try after 1 s, 2 s, then the 3 s cap.
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		st := l.State()
		if got := st.RetryAt.Sub(clk.Now()); got != wait || st.Attempts != i+1 {
			t.Fatalf("after failure %d: retry in %v (attempts %d), want %v", i+1, got, st.Attempts, wait)
		}
		clk.Advance(wait - time.Millisecond)
		if _, err := l.Generate(context.Background()); ReasonOf(err) != ReasonNoGUISession || hint.Of(err) != "log in" {
			t.Fatalf("Generate during backoff = %v", err)
		}
		if n := int(calls.Load()); n != i+1 {
			t.Fatalf("%d attempts during backoff, want %d", n, i+1)
		}
		clk.Advance(time.Millisecond)
		// Generate makes the next attempt and waits for it.
		tok, err := l.Generate(context.Background())
		if i < 3 {
			if err == nil {
				t.Fatalf("attempt %d succeeded early", i+2)
			}
			continue
		}
		if err != nil || len(tok.Token) != DevTokenLen {
			t.Fatalf("after the last failure: %v", err)
		}
	}
	if st := l.State(); !st.Started || st.Err != nil || !st.RetryAt.IsZero() {
		t.Fatalf("State after starting = %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) != 5 || results[4] != nil || !errors.Is(results[0], errNoSession) {
		t.Fatalf("OnStart saw %v, want four failures then success", results)
	}
}

func TestLazyStartsOnceForConcurrentCallers(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	l := NewLazy(LazyConfig{Kind: header.KindDev, Start: func() (Provider, error) {
		calls.Add(1)
		<-release
		return Dev{}, nil
	}})
	started := l.Start()
	// A caller whose deadline ends while the start runs gets a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Generate(ctx); ReasonOf(err) != ReasonTimeout && !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate with an ended context during start = %v", err)
	}
	if !l.State().Starting {
		t.Fatal("State does not say an attempt is in progress")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := l.Generate(context.Background())
			errs <- err
		})
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	<-started
	if n := calls.Load(); n != 1 {
		t.Fatalf("Start ran %d times, want 1", n)
	}
}

func TestLazyStartPanicIsAnError(t *testing.T) {
	l := NewLazy(LazyConfig{Kind: header.KindDev, Start: func() (Provider, error) { panic("boom") }})
	_, err := l.Generate(context.Background())
	if ReasonOf(err) != ReasonProviderError {
		t.Fatalf("Generate after a panicking start = %v", err)
	}
	l = NewLazy(LazyConfig{Kind: header.KindDev, Start: func() (Provider, error) { return nil, nil }})
	if _, err := l.Generate(context.Background()); ReasonOf(err) != ReasonProviderError {
		t.Fatalf("Generate after a start that returned nothing = %v", err)
	}
}

// A start that does not return (a system call that hangs) fails callers
// at once after StartTimeout, with a reason and a hint, and starts no
// second attempt; if it returns after all, its provider is used.
func TestLazyStartThatHangsFailsCallersAtOnce(t *testing.T) {
	release, ended := make(chan struct{}), make(chan error, 1)
	var calls atomic.Int32
	l := NewLazy(LazyConfig{
		Kind: header.KindDev, Name: "DeviceCheck",
		StartTimeout: time.Nanosecond, // passed as soon as the attempt begins
		Start: func() (Provider, error) {
			calls.Add(1)
			<-release
			return Dev{}, nil
		},
		OnStart: func(err error) { ended <- err },
	})
	for range 3 {
		_, err := l.Generate(context.Background())
		if ReasonOf(err) != ReasonProviderError || hint.Of(err) == "" || !strings.Contains(err.Error(), "starting DeviceCheck has not returned") {
			t.Fatalf("Generate while the start hangs = %v (reason %q, hint %q)", err, ReasonOf(err), hint.Of(err))
		}
	}
	if st := l.State(); !st.Starting || st.Started {
		t.Fatalf("State while the start hangs = %+v", st)
	}
	close(release)
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("Start ran %d times; no second attempt may begin while the first hangs", n)
	}
	if _, err := l.Generate(context.Background()); err != nil {
		t.Fatalf("Generate after the start returned = %v", err)
	}
}
