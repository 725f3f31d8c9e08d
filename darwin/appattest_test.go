package darwin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

// aaRequest is one request that reached the fake App Attest: which
// method, its arguments, and the completion handler to answer it with.
type aaRequest struct {
	op      AppAttestOp
	keyID   string
	hash    []byte
	respond func(aaResult)
}

// fakeAA stands in for DCAppAttestService: each request is handed to the
// test through requests.
type fakeAA struct {
	gui      bool
	guiErr   error
	sup      bool
	supErr   error
	reqErr   error
	supCalls atomic.Int32
	requests chan aaRequest
}

func newFakeAA() *fakeAA {
	return &fakeAA{gui: true, sup: true, requests: make(chan aaRequest, 16)}
}

func (f *fakeAA) guiSession() (bool, error) { return f.gui, f.guiErr }

func (f *fakeAA) supported() (bool, error) {
	f.supCalls.Add(1)
	return f.sup, f.supErr
}

func (f *fakeAA) request(op AppAttestOp, keyID string, hash []byte, done func(aaResult)) error {
	if f.reqErr != nil {
		return f.reqErr
	}
	f.requests <- aaRequest{op: op, keyID: keyID, hash: hash, respond: func(r aaResult) {
		r.where = Completion{Queue: "fake.appattest", Thread: 8, RequestThread: 2}
		done(r)
	}}
	return nil
}

func (f *fakeAA) generateKey(done func(aaResult)) error {
	return f.request(OpGenerateKey, "", nil, done)
}

func (f *fakeAA) attestKey(keyID string, hash []byte, done func(aaResult)) error {
	return f.request(OpAttestKey, keyID, hash, done)
}

func (f *fakeAA) generateAssertion(keyID string, hash []byte, done func(aaResult)) error {
	return f.request(OpGenerateAssertion, keyID, hash, done)
}

// next waits for the next request, failing the test rather than hanging.
func (f *fakeAA) next(t *testing.T) aaRequest {
	t.Helper()
	select {
	case r := <-f.requests:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no App Attest request arrived")
		return aaRequest{}
	}
}

// noRequest fails the test if a request reached the fake.
func (f *fakeAA) noRequest(t *testing.T) {
	t.Helper()
	select {
	case r := <-f.requests:
		t.Fatalf("a %s request reached App Attest", r.op)
	default:
	}
}

// testKeyID is a key id in Apple's form.
var testKeyID = FormatKeyID(sha256.Sum256([]byte("test key")))

func testHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newTestAppAttest(t *testing.T, f *fakeAA, opts AppAttestOptions) *appAttest {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	a, err := newAppAttestWith(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// aaCall is the result of one App Attest call made on another goroutine.
type aaCall struct {
	keyID string
	data  []byte
	err   error
}

func callAsync(f func() (string, []byte, error)) <-chan aaCall {
	ch := make(chan aaCall, 1)
	go func() {
		k, d, err := f()
		ch <- aaCall{k, d, err}
	}()
	return ch
}

func waitCall(t *testing.T, ch <-chan aaCall) aaCall {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the App Attest call did not return")
		return aaCall{}
	}
}

func TestCheckAppAttest(t *testing.T) {
	t.Parallel()
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
		{name: "isSupported false", gui: true, sup: false,
			wantReason: provider.ReasonUnsupported, wantIs: provider.ErrUnsupported, wantAsked: true},
		{name: "class missing", gui: true, supErr: errAppAttestMissing("DeviceCheck.framework has no DCAppAttestService class"),
			wantReason: provider.ReasonUnsupported, wantIs: provider.ErrUnsupported, wantAsked: true},
		{name: "load failure", gui: true, supErr: boom,
			wantReason: provider.ReasonProviderError, wantIs: boom, wantAsked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAA()
			f.gui, f.guiErr, f.sup, f.supErr = tt.gui, tt.guiErr, tt.sup, tt.supErr
			_, err := newAppAttestWith(f, AppAttestOptions{})
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
			if tt.wantReason != provider.ReasonProviderError && hint.Of(err) == "" {
				t.Errorf("no hint for %v", err)
			}
		})
	}
}

func TestAppAttestSupportedSkipsWithoutGUI(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	a := newTestAppAttest(t, f, AppAttestOptions{})
	f.supCalls.Store(0)
	f.gui = false
	if ok, err := a.Supported(); ok || !errors.Is(err, provider.ErrNoGUISession) {
		t.Fatalf("Supported = %v, %v; want false, ErrNoGUISession", ok, err)
	}
	if ok, err := appAttestSupportedVia(f); ok || !errors.Is(err, provider.ErrNoGUISession) {
		t.Fatalf("appAttestSupportedVia = %v, %v; want false, ErrNoGUISession", ok, err)
	}
	if f.supCalls.Load() != 0 {
		t.Fatal("isSupported was asked without a GUI session")
	}
	f.gui, f.sup = true, false
	if ok, err := a.Supported(); ok || err != nil {
		t.Fatalf("Supported = %v, %v; want false, nil", ok, err)
	}
}

func TestNewAppAttestOptions(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	if _, err := newAppAttestWith(f, AppAttestOptions{Timeout: -time.Second}); err == nil {
		t.Error("negative timeout accepted")
	}
	a, err := newAppAttestWith(f, AppAttestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []AppAttestOp{OpGenerateKey, OpAttestKey, OpGenerateAssertion} {
		c := a.calls[op]
		if c == nil || c.timeout != DefaultTimeout || !strings.Contains(c.op, string(op)) {
			t.Errorf("%s: calls %+v, want its own with the default timeout", op, c)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		answer    aaResult
		wantErrIs error // nil for success
		wantCode  int   // data.dcErrorCode, -1 for none
	}{
		{name: "key id", answer: aaResult{keyID: testKeyID}},
		{name: "invalid key", answer: aaResult{err: NewAppAttestError(OpGenerateKey, DCErrorDomain, DCErrorInvalidKey, "no")},
			wantErrIs: ErrInvalidKey, wantCode: DCErrorInvalidKey},
		{name: "unknown code", answer: aaResult{err: NewAppAttestError(OpGenerateKey, DCErrorDomain, 5, "policy")},
			wantErrIs: ErrUnknownDCErrorCode, wantCode: 5},
		{name: "empty key id", answer: aaResult{}, wantErrIs: ErrBadKeyID, wantCode: -1},
		{name: "key id of another form", answer: aaResult{keyID: strings.TrimRight(testKeyID, "=")}, wantErrIs: ErrBadKeyID, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAA()
			a := newTestAppAttest(t, f, AppAttestOptions{})
			res := callAsync(func() (string, []byte, error) {
				k, err := a.GenerateKey(context.Background())
				return k, nil, err
			})
			req := f.next(t)
			if req.op != OpGenerateKey {
				t.Fatalf("request %s, want generateKey", req.op)
			}
			req.respond(tt.answer)
			r := waitCall(t, res)
			if tt.wantErrIs == nil {
				if r.err != nil || r.keyID != tt.answer.keyID {
					t.Fatalf("GenerateKey = %q, %v; want %q", r.keyID, r.err, tt.answer.keyID)
				}
				return
			}
			if r.keyID != "" || !errors.Is(r.err, tt.wantErrIs) {
				t.Fatalf("GenerateKey = %q, %v; want an error wrapping %v", r.keyID, r.err, tt.wantErrIs)
			}
			code, ok := provider.DCErrorCodeOf(r.err)
			if tt.wantCode >= 0 && (!ok || code != tt.wantCode) || tt.wantCode < 0 && ok {
				t.Errorf("DCErrorCodeOf = %d, %v; want %d", code, ok, tt.wantCode)
			}
		})
	}
}

// signingCalls are AttestKey and GenerateAssertion, which share their
// argument checks and result handling.
var signingCalls = []struct {
	op   AppAttestOp
	call func(a *appAttest, ctx context.Context, keyID string, hash []byte) ([]byte, error)
}{
	{OpAttestKey, (*appAttest).AttestKey},
	{OpGenerateAssertion, (*appAttest).GenerateAssertion},
}

func TestSigningCallArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		keyID  string
		hash   []byte
		wantIs error
	}{
		{"empty key id", "", testHash("x"), ErrBadKeyID},
		{"URL-safe key id", strings.NewReplacer("+", "-", "/", "_").Replace(FormatKeyID([32]byte{0xfb, 0xff})), testHash("x"), ErrBadKeyID},
		{"short key id", FormatKeyID([32]byte{})[:40], testHash("x"), ErrBadKeyID},
		{"nil hash", testKeyID, nil, ErrBadClientDataHash},
		{"raw challenge as hash", testKeyID, []byte("a 24-byte raw challenge!"), ErrBadClientDataHash},
		{"33-byte hash", testKeyID, append(testHash("x"), 0), ErrBadClientDataHash},
	}
	for _, sc := range signingCalls {
		for _, tt := range tests {
			t.Run(string(sc.op)+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := newFakeAA()
				a := newTestAppAttest(t, f, AppAttestOptions{})
				out, err := sc.call(a, context.Background(), tt.keyID, tt.hash)
				if out != nil || !errors.Is(err, tt.wantIs) {
					t.Fatalf("= %x, %v; want an error wrapping %v", out, err, tt.wantIs)
				}
				if !strings.Contains(err.Error(), string(sc.op)) {
					t.Errorf("%v does not name %s", err, sc.op)
				}
				f.noRequest(t)
			})
		}
	}
}

func TestSigningCalls(t *testing.T) {
	t.Parallel()
	for _, sc := range signingCalls {
		t.Run(string(sc.op), func(t *testing.T) {
			t.Parallel()
			f := newFakeAA()
			a := newTestAppAttest(t, f, AppAttestOptions{})
			hash := testHash("challenge")
			want := append([]byte(nil), hash...)
			res := callAsync(func() (string, []byte, error) {
				out, err := sc.call(a, context.Background(), testKeyID, hash)
				return "", out, err
			})
			req := f.next(t)
			hash[0] ^= 0xff // the caller reuses its buffer: App Attest must not see it
			if req.op != sc.op || req.keyID != testKeyID || !bytes.Equal(req.hash, want) {
				t.Fatalf("request %s(%q, %x), want %s(%q, %x)", req.op, req.keyID, req.hash, sc.op, testKeyID, want)
			}
			req.respond(aaResult{data: []byte{0xa2, 0x01}})
			if r := waitCall(t, res); r.err != nil || !bytes.Equal(r.data, []byte{0xa2, 0x01}) {
				t.Fatalf("= %x, %v; want a201", r.data, r.err)
			}

			// Neither an object nor an error.
			res = callAsync(func() (string, []byte, error) {
				out, err := sc.call(a, context.Background(), testKeyID, want)
				return "", out, err
			})
			f.next(t).respond(aaResult{})
			if r := waitCall(t, res); !errors.Is(r.err, errNoResult) || provider.ReasonOf(r.err) != provider.ReasonProviderError {
				t.Fatalf("empty answer = %x, %v; want errNoResult", r.data, r.err)
			}

			// Apple's error comes back as it is, with its sentinel.
			res = callAsync(func() (string, []byte, error) {
				out, err := sc.call(a, context.Background(), testKeyID, want)
				return "", out, err
			})
			f.next(t).respond(aaResult{err: NewAppAttestError(sc.op, DCErrorDomain, DCErrorServerUnavailable, "offline")})
			r := waitCall(t, res)
			var ae *AppAttestError
			if !errors.Is(r.err, ErrServerUnavailable) || !errors.As(r.err, &ae) || ae.Op != sc.op {
				t.Fatalf("= %x, %v; want the *AppAttestError of %s with ErrServerUnavailable", r.data, r.err, sc.op)
			}
		})
	}
}

func TestAppAttestRequestError(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	a := newTestAppAttest(t, f, AppAttestOptions{})
	f.reqErr = errors.New("no service")
	if _, err := a.GenerateAssertion(context.Background(), testKeyID, testHash("x")); !errors.Is(err, f.reqErr) {
		t.Fatalf("GenerateAssertion = %v, want %v", err, f.reqErr)
	}
	f.reqErr = nil
	res := callAsync(func() (string, []byte, error) {
		out, err := a.GenerateAssertion(context.Background(), testKeyID, testHash("x"))
		return "", out, err
	})
	f.next(t).respond(aaResult{data: []byte{1}})
	if r := waitCall(t, res); r.err != nil {
		t.Fatalf("GenerateAssertion after a failed request = %v; the slot was not freed", r.err)
	}
}

// manualAATimers replaces the timers of a's calls: each call's timer is
// sent on the returned channel, and fires when the test closes it.
func manualAATimers(a *appAttest) <-chan chan time.Time {
	timers := make(chan chan time.Time, 16)
	for _, c := range a.calls {
		c.timer = func(time.Duration) (<-chan time.Time, func()) {
			ch := make(chan time.Time)
			timers <- ch
			return ch, func() {}
		}
	}
	return timers
}

// A hung attestKey times out, keeps later attestKey calls from reaching
// Apple, does not hold up assertions, and its late answer is dropped.
func TestAppAttestTimeoutPerMethod(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	a := newTestAppAttest(t, f, AppAttestOptions{Timeout: time.Second})
	timers := manualAATimers(a)
	attest := func() <-chan aaCall {
		return callAsync(func() (string, []byte, error) {
			out, err := a.AttestKey(context.Background(), testKeyID, testHash("c"))
			return "", out, err
		})
	}

	res := attest()
	late := f.next(t)
	close(<-timers)
	r := waitCall(t, res)
	if provider.ReasonOf(r.err) != provider.ReasonTimeout || !errors.Is(r.err, context.DeadlineExceeded) ||
		!strings.Contains(r.err.Error(), "appattest attestKey: no answer from App Attest after 1s") {
		t.Fatalf("AttestKey = %x, %v; want a timeout", r.data, r.err)
	}

	res = attest()
	close(<-timers)
	if r := waitCall(t, res); provider.ReasonOf(r.err) != provider.ReasonTimeout || !strings.Contains(r.err.Error(), "still outstanding") {
		t.Fatalf("second AttestKey while the first is outstanding = %v; want a timeout", r.err)
	}
	f.noRequest(t)

	// Assertions are not held up by the hung attestation.
	res = callAsync(func() (string, []byte, error) {
		out, err := a.GenerateAssertion(context.Background(), testKeyID, testHash("a"))
		return "", out, err
	})
	<-timers // never fires
	req := f.next(t)
	if req.op != OpGenerateAssertion {
		t.Fatalf("request %s, want generateAssertion", req.op)
	}
	req.respond(aaResult{data: []byte("assertion")})
	if r := waitCall(t, res); r.err != nil || string(r.data) != "assertion" {
		t.Fatalf("GenerateAssertion beside a hung AttestKey = %q, %v", r.data, r.err)
	}

	// The late attestation goes nowhere, blocks nothing, and frees the
	// slot.
	late.respond(aaResult{data: []byte("late")})
	res = attest()
	<-timers
	f.next(t).respond(aaResult{data: []byte("fresh")})
	if r := waitCall(t, res); r.err != nil || string(r.data) != "fresh" {
		t.Fatalf("AttestKey after the late answer = %q, %v; want fresh", r.data, r.err)
	}
}

func TestAppAttestRealTimer(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	a := newTestAppAttest(t, f, AppAttestOptions{Timeout: time.Millisecond})
	_, err := a.GenerateKey(context.Background())
	if provider.ReasonOf(err) != provider.ReasonTimeout {
		t.Fatalf("GenerateKey = %v; want a timeout", err)
	}
	select { // answer a request that got through, so nothing is left behind
	case req := <-f.requests:
		req.respond(aaResult{keyID: testKeyID})
	default:
	}
}

func TestAppAttestCallerContext(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	a := newTestAppAttest(t, f, AppAttestOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	res := callAsync(func() (string, []byte, error) {
		out, err := a.GenerateAssertion(ctx, testKeyID, testHash("x"))
		return "", out, err
	})
	req := f.next(t)
	cancel()
	r := waitCall(t, res)
	if !errors.Is(r.err, context.Canceled) || provider.ReasonOf(r.err) == provider.ReasonTimeout {
		t.Fatalf("GenerateAssertion = %v, want it to wrap context.Canceled", r.err)
	}
	req.respond(aaResult{data: []byte("late")})
	if _, err := a.GenerateKey(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GenerateKey with a done context = %v", err)
	}
	f.noRequest(t)
}

func TestAppAttestObservesCompletions(t *testing.T) {
	t.Parallel()
	f := newFakeAA()
	type seen struct {
		op    AppAttestOp
		where Completion
	}
	got := make(chan seen, 8)
	a := newTestAppAttest(t, f, AppAttestOptions{OnCompletion: func(op AppAttestOp, c Completion) { got <- seen{op, c} }})
	res := callAsync(func() (string, []byte, error) {
		k, err := a.GenerateKey(context.Background())
		return k, nil, err
	})
	req := f.next(t)
	req.respond(aaResult{keyID: testKeyID})
	if r := waitCall(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	req.respond(aaResult{keyID: testKeyID}) // a second completion is observed too
	for range 2 {
		select {
		case s := <-got:
			if s.op != OpGenerateKey || s.where.Queue != "fake.appattest" || s.where.Thread != 8 {
				t.Errorf("observed %+v, want the fake's generateKey completion", s)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("completion not observed")
		}
	}
}

func TestParseKeyID(t *testing.T) {
	t.Parallel()
	var id [KeyIDSize]byte
	for i := range id {
		id[i] = byte(0xf0 + i) // bytes that need + and / in base64
	}
	good := FormatKeyID(id)
	if len(good) != 44 || !strings.HasSuffix(good, "=") {
		t.Fatalf("FormatKeyID = %q, want 44 characters ending in =", good)
	}
	got, err := ParseKeyID(good)
	if err != nil || got != id {
		t.Fatalf("ParseKeyID(%q) = %x, %v; want %x", good, got, err, id)
	}
	for _, bad := range []string{
		"",
		strings.TrimRight(good, "="), // no padding
		strings.NewReplacer("+", "-", "/", "_").Replace(good), // URL-safe
		good[:22] + "\n" + good[22:],                          // a line break a decoder would skip
		good + " ",                                            // trailing space
		good[:40] + "AA==",                                    // 31 bytes
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",        // non-zero padding bits
		FormatKeyID(id) + "AAAA",                              // 35 bytes
	} {
		if got, err := ParseKeyID(bad); !errors.Is(err, ErrBadKeyID) || got != ([KeyIDSize]byte{}) {
			t.Errorf("ParseKeyID(%q) = %x, %v; want ErrBadKeyID", bad, got, err)
		}
	}
}

func FuzzParseKeyID(f *testing.F) {
	f.Add(testKeyID)
	f.Add(FormatKeyID([KeyIDSize]byte{}))
	f.Add(strings.TrimRight(testKeyID, "="))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseKeyID(s)
		if err != nil {
			if !errors.Is(err, ErrBadKeyID) {
				t.Fatalf("ParseKeyID(%q): %v does not wrap ErrBadKeyID", s, err)
			}
			return
		}
		if FormatKeyID(id) != s {
			t.Fatalf("ParseKeyID(%q) = %x, which formats as %q", s, id, FormatKeyID(id))
		}
		if err := checkSigningArgs(s, testHash(s)); err != nil {
			t.Fatalf("checkSigningArgs refuses a key id ParseKeyID accepts: %v", err)
		}
	})
}
