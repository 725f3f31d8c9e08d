package darwin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
)

// fakeKeychain stands in for Security's SecItem functions with a map of
// items, keyed by service and account, and behaves as they are
// documented to: add refuses an existing item, update and remove a
// missing one.
type fakeKeychain struct {
	mu     sync.Mutex
	items  map[[2]string][]byte
	labels map[[2]string]string
	calls  []string
	fail   map[string]int32 // call -> OSStatus it fails with
	// block, when set, makes every call wait until it is closed; entered
	// receives a value as each blocked call starts waiting, exited as
	// each returns.
	block          chan struct{}
	entered, exits chan struct{}
}

func newFakeKeychain() *fakeKeychain {
	return &fakeKeychain{items: map[[2]string][]byte{}, labels: map[[2]string]string{}, fail: map[string]int32{}}
}

func (f *fakeKeychain) enter(call, service, account string) (int32, bool) {
	if f.block != nil {
		f.entered <- struct{}{}
		<-f.block
		defer func() { f.exits <- struct{}{} }()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	st, failing := f.fail[call]
	return st, failing
}

func (f *fakeKeychain) copyData(service, account string) ([]byte, error) {
	if st, failing := f.enter("copy", service, account); failing {
		return nil, keychainError(service, account, "SecItemCopyMatching", st, "")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.items[[2]string{service, account}]
	if !ok {
		return nil, keychainError(service, account, "SecItemCopyMatching", errSecItemNotFound, "")
	}
	return append([]byte(nil), data...), nil
}

func (f *fakeKeychain) add(service, account, label string, data []byte) error {
	if st, failing := f.enter("add", service, account); failing {
		return keychainError(service, account, "SecItemAdd", st, "")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{service, account}
	if _, ok := f.items[k]; ok {
		return keychainError(service, account, "SecItemAdd", errSecDuplicateItem, "")
	}
	f.items[k], f.labels[k] = append([]byte(nil), data...), label
	return nil
}

func (f *fakeKeychain) update(service, account string, data []byte) error {
	if st, failing := f.enter("update", service, account); failing {
		return keychainError(service, account, "SecItemUpdate", st, "")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{service, account}
	if _, ok := f.items[k]; !ok {
		return keychainError(service, account, "SecItemUpdate", errSecItemNotFound, "")
	}
	f.items[k] = append([]byte(nil), data...)
	return nil
}

func (f *fakeKeychain) remove(service, account string) error {
	if st, failing := f.enter("remove", service, account); failing {
		return keychainError(service, account, "SecItemDelete", st, "")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{service, account}
	if _, ok := f.items[k]; !ok {
		return keychainError(service, account, "SecItemDelete", errSecItemNotFound, "")
	}
	delete(f.items, k)
	return nil
}

func (f *fakeKeychain) callLog() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.Join(f.calls, ",")
	f.calls = nil
	return s
}

func newTestKeychain(t *testing.T, f *fakeKeychain, opts KeychainOptions) *Keychain {
	t.Helper()
	k, err := newKeychainWith(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeychainRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakeKeychain()
	k := newTestKeychain(t, f, KeychainOptions{Service: "com.example.host.attestd"})
	if k.Service() != "com.example.host.attestd" {
		t.Errorf("Service = %q", k.Service())
	}

	if id, err := k.Get(ctx); !errors.Is(err, ErrNotFound) || id != "" {
		t.Fatalf("Get of an empty Keychain = %q, %v; want ErrNotFound", id, err)
	}
	if err := k.Delete(ctx); err != nil {
		t.Fatalf("Delete of a missing item = %v, want nil", err)
	}
	if got := f.callLog(); got != "copy,remove" {
		t.Errorf("calls %s", got)
	}

	if err := k.Set(ctx, testKeyID); err != nil {
		t.Fatal(err)
	}
	if got := f.callLog(); got != "add" {
		t.Errorf("first Set made calls %s, want add", got)
	}
	item := [2]string{"com.example.host.attestd", KeychainAccount}
	if f.labels[item] != keychainLabel || string(f.items[item]) != testKeyID {
		t.Errorf("item %q = %q labelled %q", item, f.items[item], f.labels[item])
	}
	if id, err := k.Get(ctx); err != nil || id != testKeyID {
		t.Fatalf("Get = %q, %v; want %q", id, err, testKeyID)
	}

	other := FormatKeyID([KeyIDSize]byte{1, 2, 3})
	if err := k.Set(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got := f.callLog(); got != "copy,add,update" {
		t.Errorf("replacing Set made calls %s, want add then update", got)
	}
	if id, err := k.Get(ctx); err != nil || id != other {
		t.Fatalf("Get after replacing = %q, %v; want %q", id, err, other)
	}

	if err := k.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if id, err := k.Get(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %q, %v; want ErrNotFound", id, err)
	}
}

func TestKeychainRefusesBadKeyIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakeKeychain()
	k := newTestKeychain(t, f, KeychainOptions{})
	if err := k.Set(ctx, "not a key id"); !errors.Is(err, ErrBadKeyID) {
		t.Fatalf("Set of a bad key id = %v, want ErrBadKeyID", err)
	}
	if got := f.callLog(); got != "" {
		t.Fatalf("a bad key id reached the Keychain: %s", got)
	}

	// An item someone else wrote, or one damaged: Get says what to do.
	f.items[[2]string{DefaultKeychainService, KeychainAccount}] = []byte("garbage\n")
	id, err := k.Get(ctx)
	if !errors.Is(err, ErrBadKeyID) || id != "" {
		t.Fatalf("Get of a bad item = %q, %v; want ErrBadKeyID", id, err)
	}
	if h := hint.Of(err); !strings.Contains(h, `security delete-generic-password -s "attestd" -a "appattest-key-id"`) {
		t.Errorf("hint = %q, want the command that deletes the item", h)
	}
	if err := k.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestKeychainFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		call     string // the fake's call that fails
		status   int32
		op       func(k *Keychain) error
		wantHint string // substring, "" for none
	}{
		{"locked keychain on Get", "copy", errSecInteractionNotAllowed,
			func(k *Keychain) error { _, err := k.Get(ctx); return err }, "unlock the login keychain"},
		{"no keychain on Set", "add", errSecNoSuchKeychain,
			func(k *Keychain) error { return k.Set(ctx, testKeyID) }, "Aqua session"},
		{"denied update", "update", errSecAuthFailed,
			func(k *Keychain) error { return k.Set(ctx, testKeyID) }, "security delete-generic-password"},
		{"user cancelled delete", "remove", errSecUserCanceled,
			func(k *Keychain) error { return k.Delete(ctx) }, "unlock"},
		{"other status", "copy", -67671,
			func(k *Keychain) error { _, err := k.Get(ctx); return err }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKeychain()
			f.items[[2]string{"svc", KeychainAccount}] = []byte(testKeyID) // so Set updates
			f.fail[tt.call] = tt.status
			k := newTestKeychain(t, f, KeychainOptions{Service: "svc"})
			err := tt.op(k)
			var ke *KeychainError
			var se *OSStatusError
			if !errors.As(err, &ke) || !errors.As(err, &se) || se.Status != tt.status || ke.Service != "svc" {
				t.Fatalf("err = %v; want a *KeychainError with OSStatus %d", err, tt.status)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("%v matches ErrNotFound", err)
			}
			if provider.ReasonOf(err) != provider.ReasonProviderError {
				t.Errorf("ReasonOf = %q", provider.ReasonOf(err))
			}
			h := hint.Of(err)
			if tt.wantHint == "" && h != "" || !strings.Contains(h, tt.wantHint) {
				t.Errorf("hint = %q, want one containing %q", h, tt.wantHint)
			}
		})
	}
}

func TestKeychainError(t *testing.T) {
	t.Parallel()
	err := keychainError("svc", "acct", "SecItemCopyMatching", errSecItemNotFound, "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `service "svc", account "acct"`) {
		t.Fatalf("errSecItemNotFound = %v; want ErrNotFound naming the item", err)
	}
	err = keychainError("svc", "acct", "SecItemAdd", errSecInteractionNotAllowed, "")
	want := `keychain item (service "svc", account "acct"): SecItemAdd: OSStatus -25308: User interaction is not allowed.`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	err = keychainError("svc", "acct", "SecItemAdd", -1, "Apple's own text")
	if !strings.HasSuffix(err.Error(), "SecItemAdd: OSStatus -1: Apple's own text") {
		t.Errorf("Error() = %q, want Apple's text", err.Error())
	}
	if !isStatus(fmtWrap(keychainError("s", "a", "SecItemAdd", errSecDuplicateItem, "")), errSecDuplicateItem) {
		t.Error("isStatus does not see a wrapped errSecDuplicateItem")
	}
	if isStatus(errors.New("x"), errSecDuplicateItem) {
		t.Error("isStatus of a plain error")
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }

// A Keychain call that never returns (a prompt nobody answers) times
// out; later calls wait for it rather than pile up; once it returns, the
// store works again.
func TestKeychainTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakeKeychain()
	f.block, f.entered, f.exits = make(chan struct{}), make(chan struct{}, 4), make(chan struct{}, 4)
	k := newTestKeychain(t, f, KeychainOptions{Timeout: time.Second})
	timers := make(chan chan time.Time, 4)
	k.calls.timer = func(time.Duration) (<-chan time.Time, func()) {
		ch := make(chan time.Time)
		timers <- ch
		return ch, func() {}
	}

	got := make(chan error, 1)
	go func() { _, err := k.Get(ctx); got <- err }()
	first := <-timers
	<-f.entered // the call reached Security, which hangs
	close(first)
	if err := <-got; provider.ReasonOf(err) != provider.ReasonTimeout || !strings.Contains(err.Error(), "keychain: no answer from the Keychain after 1s") {
		t.Fatalf("Get while Security hangs = %v, want a timeout", err)
	}

	go func() { got <- k.Set(ctx, testKeyID) }()
	close(<-timers)
	if err := <-got; provider.ReasonOf(err) != provider.ReasonTimeout || !strings.Contains(err.Error(), "still outstanding") {
		t.Fatalf("Set while Get hangs = %v, want a timeout", err)
	}
	select {
	case <-f.entered:
		t.Fatal("a second call reached Security while the first hung")
	default:
	}

	close(f.block) // Security returns at last; its late answer is dropped
	<-f.exits
	go func() { got <- k.Set(ctx, testKeyID) }()
	<-timers // never fires
	<-f.entered
	<-f.exits
	if err := <-got; err != nil {
		t.Fatalf("Set after the hung call returned = %v", err)
	}
}

func TestNewKeychainOptions(t *testing.T) {
	t.Parallel()
	f := newFakeKeychain()
	for _, opts := range []KeychainOptions{
		{Timeout: -time.Second},
		{Service: " attestd"},
		{Service: "a\x00b"},
	} {
		if _, err := newKeychainWith(f, opts); err == nil {
			t.Errorf("newKeychainWith(%+v) accepted", opts)
		}
	}
	k := newTestKeychain(t, f, KeychainOptions{})
	if k.Service() != DefaultKeychainService || k.calls.timeout != DefaultKeychainTimeout {
		t.Errorf("defaults: service %q, timeout %v", k.Service(), k.calls.timeout)
	}
}

func TestKeychainService(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ label, bundle, want string }{
		{"com.example.host.attestd", "com.example.attestd", "com.example.host.attestd"},
		{"", "com.example.attestd", "com.example.attestd"},
		{"  ", " com.example.attestd\n", "com.example.attestd"},
		{"", "", "attestd"},
	} {
		if got := KeychainService(tt.label, tt.bundle); got != tt.want {
			t.Errorf("KeychainService(%q, %q) = %q, want %q", tt.label, tt.bundle, got, tt.want)
		}
	}
}
