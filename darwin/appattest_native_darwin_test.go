package darwin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
)

// These tests call the real DCAppAttestService and the login Keychain.
// Without a GUI login session DeviceCheck would trap the process, so they
// skip; where isSupported is false (every Mac before macOS 27, a CI VM)
// the App Attest calls skip too.

func TestNativeAppAttestWithoutGUI(t *testing.T) {
	ok, err := GUISession()
	if err != nil {
		t.Fatalf("GUISession: %v", err)
	}
	if ok {
		t.Skip("this process has a GUI session; the test checks the refusal without one")
	}
	if _, err := NewAppAttest(AppAttestOptions{}); !errors.Is(err, provider.ErrNoGUISession) {
		t.Fatalf("NewAppAttest without a GUI session = %v, want ErrNoGUISession", err)
	}
	if _, err := AppAttestSupported(); !errors.Is(err, provider.ErrNoGUISession) {
		t.Fatalf("AppAttestSupported without a GUI session = %v, want ErrNoGUISession", err)
	}
}

func TestNativeAppAttestSupported(t *testing.T) {
	requireGUI(t)
	version, _ := OSVersion()
	ok, err := AppAttestSupported()
	if err != nil {
		if provider.ReasonOf(err) != provider.ReasonUnsupported {
			t.Fatalf("AppAttestSupported = %v, want a result or unsupported", err)
		}
		t.Skipf("no usable DCAppAttestService on macOS %s: %v", version, err)
	}
	t.Logf("DCAppAttestService.isSupported = %v on macOS %s", ok, version)
	_, err = NewAppAttest(AppAttestOptions{})
	if ok != (err == nil) {
		t.Fatalf("isSupported = %v, but NewAppAttest = %v", ok, err)
	}
	if !ok && !errors.Is(err, provider.ErrUnsupported) {
		t.Fatalf("NewAppAttest where isSupported is false = %v, want ErrUnsupported", err)
	}
}

// TestNativeAppAttestCalls makes a key, tries to attest it (an unsigned
// test binary is expected to be refused by Apple) and makes an assertion,
// checking that every call is answered, not on the main queue, which this
// test binary does not service.
func TestNativeAppAttestCalls(t *testing.T) {
	requireGUI(t)
	completions := make(chan Completion, 8)
	a, err := NewAppAttest(AppAttestOptions{Timeout: 30 * time.Second,
		OnCompletion: func(_ AppAttestOp, c Completion) {
			select {
			case completions <- c:
			default:
			}
		}})
	if err != nil {
		if provider.ReasonOf(err) != provider.ReasonUnsupported {
			t.Fatalf("NewAppAttest = %v, want success or unsupported", err)
		}
		t.Skipf("App Attest unsupported here: %v", err)
	}
	ctx := context.Background()
	keyID, err := a.GenerateKey(ctx)
	checkAnswered(t, OpGenerateKey, err)
	if err != nil {
		t.Skipf("generateKey refused, nothing more to try: %v", err)
	}
	if _, err := ParseKeyID(keyID); err != nil {
		t.Fatal(err)
	}
	t.Logf("key id %s", keyID)

	att, err := a.AttestKey(ctx, keyID, testHash("attestd native test challenge"))
	checkAnswered(t, OpAttestKey, err)
	t.Logf("attestKey: %d bytes (fingerprint %s), %v", len(att), header.Fingerprint(att), err)

	start := time.Now()
	asr, err := a.GenerateAssertion(ctx, keyID, testHash("attestd native test request"))
	checkAnswered(t, OpGenerateAssertion, err)
	t.Logf("generateAssertion after %v: %d bytes (fingerprint %s), %v", time.Since(start), len(asr), header.Fingerprint(asr), err)

	for n := len(completions); n > 0; n-- { // never closed: a late handler may still send
		c := <-completions
		t.Logf("completion handler ran %v", c)
		if c.MainQueue() {
			t.Errorf("a completion handler ran on the main queue, which this test binary does not service: %v", c)
		}
	}
}

// checkAnswered fails the test when App Attest did not answer: a timeout
// suggests Apple posted the handler to the main queue. Apple's refusals
// are answers.
func checkAnswered(t *testing.T, op AppAttestOp, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if provider.ReasonOf(err) == provider.ReasonTimeout {
		t.Fatalf("%s: %v (is Apple posting the completion handler to the main queue?)", op, err)
	}
	var ae *AppAttestError
	if !errors.As(err, &ae) {
		t.Fatalf("%s = %v, want Apple's answer (an *AppAttestError) or success", op, err)
	}
	code, _ := provider.DCErrorCodeOf(err)
	t.Logf("%s refused: %s %d %q (%v)", op, ae.Domain, code, ae.CodeName(), err)
}

func TestNativeKeychain(t *testing.T) {
	requireGUI(t)
	ctx := context.Background()
	service := fmt.Sprintf("attestd-darwin-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	k, err := NewKeychain(KeychainOptions{Service: service})
	if err != nil {
		t.Fatalf("NewKeychain: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Delete(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if id, err := k.Get(ctx); !errors.Is(err, ErrNotFound) {
		if isStatus(err, errSecInteractionNotAllowed) {
			t.Skipf("the login keychain is locked: %v", err)
		}
		t.Fatalf("Get of a fresh service = %q, %v; want ErrNotFound", id, err)
	}
	first, second := FormatKeyID([KeyIDSize]byte{1}), FormatKeyID([KeyIDSize]byte{2})
	for _, id := range []string{first, second} { // add, then update
		if err := k.Set(ctx, id); err != nil {
			t.Fatalf("Set(%q): %v", id, err)
		}
		if got, err := k.Get(ctx); err != nil || got != id {
			t.Fatalf("Get after Set(%q) = %q, %v", id, got, err)
		}
	}
	if err := k.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
}
