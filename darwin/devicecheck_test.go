package darwin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeNative stands in for Apple: each request hands its completion
// handler to the test through requests.
type fakeNative struct {
	gui       bool
	guiErr    error
	sup       bool
	supErr    error
	reqErr    error
	supCalls  atomic.Int32
	requests  chan func([]byte, *DCError)
	inflight  atomic.Int32
	maxFlight atomic.Int32
}

func newFake() *fakeNative {
	return &fakeNative{gui: true, sup: true, requests: make(chan func([]byte, *DCError), 16)}
}

func (f *fakeNative) guiSession() (bool, error) { return f.gui, f.guiErr }

func (f *fakeNative) supported() (bool, error) {
	f.supCalls.Add(1)
	return f.sup, f.supErr
}

func (f *fakeNative) request(done func(dcResult)) error {
	if f.reqErr != nil {
		return f.reqErr
	}
	n := f.inflight.Add(1)
	for {
		m := f.maxFlight.Load()
		if n <= m || f.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	f.requests <- func(token []byte, err *DCError) {
		f.inflight.Add(-1)
		done(dcResult{token: token, err: err, where: Completion{Queue: "fake.queue", Thread: 7, RequestThread: 3}})
	}
	return nil
}

// next waits for the next request, failing the test rather than hanging.
func (f *fakeNative) next(t *testing.T) func([]byte, *DCError) {
	t.Helper()
	select {
	case done := <-f.requests:
		return done
	case <-time.After(10 * time.Second):
		t.Fatal("no DeviceCheck request arrived")
		return nil
	}
}

func TestCheckDeviceCheck(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		gui        bool
		guiErr     error
		sup        bool
		supErr     error
		wantReason string // "" for no error
		wantIs     error
		wantAsked  bool // whether DeviceCheck was touched
	}{
		{name: "ok", gui: true, sup: true, wantAsked: true},
		{name: "no GUI session", gui: false, sup: true,
			wantReason: provider.ReasonNoGUISession, wantIs: provider.ErrNoGUISession},
		{name: "session unknown", guiErr: boom,
			wantReason: provider.ReasonNoGUISession, wantIs: boom},
		{name: "unsupported", gui: true, sup: false,
			wantReason: provider.ReasonUnsupported, wantIs: provider.ErrUnsupported, wantAsked: true},
		{name: "load failure", gui: true, supErr: boom,
			wantReason: provider.ReasonProviderError, wantIs: boom, wantAsked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.gui, f.guiErr, f.sup, f.supErr = tt.gui, tt.guiErr, tt.sup, tt.supErr
			_, err := newDeviceCheckWith(f, DeviceCheckOptions{})
			if asked := f.supCalls.Load() > 0; asked != tt.wantAsked {
				t.Errorf("DeviceCheck touched = %v, want %v", asked, tt.wantAsked)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("err = nil, want an error")
			}
			if got := provider.ReasonOf(err); got != tt.wantReason {
				t.Errorf("ReasonOf = %q, want %q (err %v)", got, tt.wantReason, err)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if tt.wantReason == provider.ReasonNoGUISession && hint.Of(err) == "" {
				t.Errorf("no hint for %v", err)
			}
		})
	}
}

func TestSupportedViaSkipsDeviceCheckWithoutGUI(t *testing.T) {
	f := newFake()
	f.gui = false
	ok, err := supportedVia(f)
	if ok || !errors.Is(err, provider.ErrNoGUISession) {
		t.Fatalf("supportedVia = %v, %v; want false, ErrNoGUISession", ok, err)
	}
	if f.supCalls.Load() != 0 {
		t.Fatal("isSupported was asked without a GUI session")
	}
	f.gui = true
	if ok, err := supportedVia(f); !ok || err != nil {
		t.Fatalf("supportedVia = %v, %v; want true, nil", ok, err)
	}
}

func newTestProvider(t *testing.T, f *fakeNative, timeout time.Duration) *deviceCheck {
	t.Helper()
	d, err := newDeviceCheckWith(f, DeviceCheckOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type genResult struct {
	token []byte
	err   error
}

func generateAsync(ctx context.Context, d *deviceCheck) <-chan genResult {
	ch := make(chan genResult, 1)
	go func() {
		ans, err := d.Generate(ctx)
		ch <- genResult{ans.Token, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan genResult) genResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Generate did not return")
		return genResult{}
	}
}

func TestGenerate(t *testing.T) {
	dcErr := NewDCError(DCErrorDomain, DCErrorInvalidKey, "bad key")
	tests := []struct {
		name       string
		token      []byte
		err        *DCError
		wantReason string // "" for success
		wantCode   int
	}{
		{name: "token", token: []byte("tok")},
		{name: "DeviceCheck error", err: dcErr, wantReason: provider.ReasonProviderError, wantCode: DCErrorInvalidKey},
		{name: "token and error", token: []byte("tok"), err: dcErr, wantReason: provider.ReasonProviderError, wantCode: DCErrorInvalidKey},
		{name: "neither", wantReason: provider.ReasonProviderError, wantCode: -1},
		{name: "empty token", token: []byte{}, wantReason: provider.ReasonProviderError, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			d := newTestProvider(t, f, time.Minute)
			if d.Name() != header.KindDeviceCheck {
				t.Errorf("Name = %q", d.Name())
			}
			res := generateAsync(context.Background(), d)
			f.next(t)(tt.token, tt.err)
			r := wait(t, res)
			if tt.wantReason == "" {
				if r.err != nil || !bytes.Equal(r.token, tt.token) {
					t.Fatalf("Generate = %q, %v; want %q", r.token, r.err, tt.token)
				}
				return
			}
			if r.err == nil || r.token != nil {
				t.Fatalf("Generate = %q, %v; want an error", r.token, r.err)
			}
			if got := provider.ReasonOf(r.err); got != tt.wantReason {
				t.Errorf("ReasonOf = %q, want %q", got, tt.wantReason)
			}
			code, ok := provider.DCErrorCodeOf(r.err)
			if tt.wantCode >= 0 && (!ok || code != tt.wantCode) {
				t.Errorf("DCErrorCodeOf = %d, %v; want %d", code, ok, tt.wantCode)
			}
			if tt.wantCode < 0 && ok {
				t.Errorf("DCErrorCodeOf = %d, want none", code)
			}
		})
	}
}

// manualTimers replaces d's timer: each Generate call's timer is sent on
// the returned channel, and fires when the test closes it.
func manualTimers(d *deviceCheck) <-chan chan time.Time {
	timers := make(chan chan time.Time, 16)
	d.calls.timer = func(time.Duration) (<-chan time.Time, func()) {
		c := make(chan time.Time)
		timers <- c
		return c, func() {}
	}
	return timers
}

func TestGenerateTimeoutThenLateCompletion(t *testing.T) {
	f := newFake()
	d := newTestProvider(t, f, time.Second)
	timers := manualTimers(d)

	res := generateAsync(context.Background(), d)
	late := f.next(t)
	close(<-timers) // Apple has not answered: the provider's timeout fires
	r := wait(t, res)
	if r.err == nil {
		t.Fatalf("Generate = %q, want a timeout", r.token)
	}
	if got := provider.ReasonOf(r.err); got != provider.ReasonTimeout {
		t.Errorf("ReasonOf = %q, want %q (%v)", got, provider.ReasonTimeout, r.err)
	}
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap DeadlineExceeded", r.err)
	}

	// While Apple still holds the first request, a second call waits for
	// it, and gives up at its own deadline.
	res = generateAsync(context.Background(), d)
	close(<-timers)
	r = wait(t, res)
	if provider.ReasonOf(r.err) != provider.ReasonTimeout || !strings.Contains(r.err.Error(), "still outstanding") {
		t.Fatalf("second Generate while the first is outstanding = %q, %v; want a timeout", r.token, r.err)
	}
	select {
	case <-f.requests:
		t.Fatal("a second request reached Apple while the first was outstanding")
	default:
	}

	// The late completion must neither block nor be delivered anywhere,
	// and it frees the slot.
	late([]byte("late"), nil)
	res = generateAsync(context.Background(), d)
	<-timers // never fires
	f.next(t)([]byte("fresh"), nil)
	if r := wait(t, res); r.err != nil || string(r.token) != "fresh" {
		t.Fatalf("Generate after the late completion = %q, %v; want fresh", r.token, r.err)
	}
}

func TestGenerateRealTimer(t *testing.T) {
	// The provider's own timer fires without help; no Apple answer comes.
	f := newFake()
	d := newTestProvider(t, f, time.Millisecond)
	r := wait(t, generateAsync(context.Background(), d))
	if provider.ReasonOf(r.err) != provider.ReasonTimeout {
		t.Fatalf("Generate = %q, %v; want a timeout", r.token, r.err)
	}
	// Whether the request reached Apple before the timer fired depends on
	// timing; if it did, answer it so nothing is left behind.
	select {
	case done := <-f.requests:
		done(nil, nil)
	default:
	}
}

func TestGenerateCallerContext(t *testing.T) {
	f := newFake()
	d := newTestProvider(t, f, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	res := generateAsync(ctx, d)
	done := f.next(t)
	cancel()
	r := wait(t, res)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Generate = %v, want it to wrap context.Canceled", r.err)
	}
	if provider.ReasonOf(r.err) == provider.ReasonTimeout {
		t.Errorf("a canceled call reported a timeout: %v", r.err)
	}
	done([]byte("late"), nil)

	// A caller whose context is already done never reaches Apple.
	r = wait(t, generateAsync(ctx, d))
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Generate with a done context = %v", r.err)
	}
	select {
	case <-f.requests:
		t.Fatal("a request with a done context reached Apple")
	default:
	}
}

func TestGenerateDoubleCompletion(t *testing.T) {
	f := newFake()
	d := newTestProvider(t, f, time.Minute)
	res := generateAsync(context.Background(), d)
	done := f.next(t)
	done([]byte("first"), nil)
	done([]byte("second"), nil) // must not block, panic or free the slot twice
	done(nil, NewDCError(DCErrorDomain, 0, ""))
	if r := wait(t, res); string(r.token) != "first" {
		t.Fatalf("Generate = %q, %v; want first", r.token, r.err)
	}
	// The slot was freed exactly once: one more call gets through, and
	// only one.
	res = generateAsync(context.Background(), d)
	f.next(t)([]byte("third"), nil)
	if r := wait(t, res); string(r.token) != "third" {
		t.Fatalf("Generate = %q, %v; want third", r.token, r.err)
	}
}

func TestGenerateRequestError(t *testing.T) {
	f := newFake()
	d := newTestProvider(t, f, time.Minute)
	f.reqErr = errors.New("no device")
	if _, err := d.Generate(context.Background()); !errors.Is(err, f.reqErr) {
		t.Fatalf("Generate = %v, want %v", err, f.reqErr)
	}
	f.reqErr = nil
	res := generateAsync(context.Background(), d)
	f.next(t)([]byte("ok"), nil)
	if r := wait(t, res); r.err != nil {
		t.Fatalf("Generate after a failed request = %v; the slot was not freed", r.err)
	}
}

func TestGenerateSerializes(t *testing.T) {
	f := newFake()
	d := newTestProvider(t, f, time.Minute)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := d.Generate(context.Background())
			if err == nil && (len(ans.Token) == 0 || ans.Kind != header.KindDeviceCheck) {
				err = errors.New("empty token")
			}
			errs <- err
		}()
	}
	for range n {
		f.next(t)([]byte("tok"), nil)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m := f.maxFlight.Load(); m != 1 {
		t.Fatalf("%d requests were outstanding at once, want 1", m)
	}
}

func TestNewDeviceCheckOptions(t *testing.T) {
	f := newFake()
	if _, err := newDeviceCheckWith(f, DeviceCheckOptions{Timeout: -time.Second}); err == nil {
		t.Error("negative timeout accepted")
	}
	d := newTestProvider(t, f, 0)
	if d.calls.timeout != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", d.calls.timeout, DefaultTimeout)
	}
}

func TestGenerateObservesCompletion(t *testing.T) {
	f := newFake()
	seen := make(chan Completion, 4)
	d, err := newDeviceCheckWith(f, DeviceCheckOptions{Timeout: time.Minute, OnCompletion: func(c Completion) { seen <- c }})
	if err != nil {
		t.Fatal(err)
	}
	res := generateAsync(context.Background(), d)
	done := f.next(t)
	done([]byte("tok"), nil)
	if r := wait(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	// A second, late completion of the same request is observed too,
	// though its token goes nowhere.
	done([]byte("again"), nil)
	for range 2 {
		select {
		case c := <-seen:
			if c.Queue != "fake.queue" || c.Thread != 7 || c.RequestThread != 3 {
				t.Errorf("observed %+v, want the fake's completion", c)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("completion not observed")
		}
	}
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		c        Completion
		mainQ    bool
		contains string
	}{
		{Completion{Queue: "com.apple.devicecheck.xpc", Thread: 9, RequestThread: 1}, false,
			`on a thread other than the main thread (thread 9; the request was sent from thread 1), dispatch queue "com.apple.devicecheck.xpc"`},
		{Completion{MainThread: true, Queue: "com.apple.main-thread", Thread: 1, RequestThread: 5}, true, "on the main thread"},
		{Completion{Queue: "com.apple.main-thread"}, true, `"com.apple.main-thread"`},
		{Completion{MainThread: true}, true, "no dispatch queue"},
		{Completion{DuringRequest: true}, false, "before the request returned"},
	}
	for _, tt := range tests {
		if got := tt.c.MainQueue(); got != tt.mainQ {
			t.Errorf("%+v.MainQueue() = %v, want %v", tt.c, got, tt.mainQ)
		}
		if s := tt.c.String(); !strings.Contains(s, tt.contains) {
			t.Errorf("String() = %q, want it to contain %q", s, tt.contains)
		}
	}
}
