package diag

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// appAttestRun carries what the App Attest checks found from one to the
// next: the service, the key, and where Apple ran the assertion's
// completion handler.
type appAttestRun struct {
	svc         darwin.AppAttestService
	keyID       string
	completions chan darwin.Completion
}

// supported asks DCAppAttestService.isSupported, bounded, with the GUI
// session's skip rule. False is a skip, not a failure: before macOS 27, or
// without the entitlement, attestd serves DeviceCheck tokens.
func (a *appAttestRun) supported(r *run, timeout time.Duration) Check {
	c := newCheck("appattest-supported")
	if r.result("gui-session").Status != Pass {
		c.set(Skipped, "not asked: without a GUI session DeviceCheck (App Attest's framework) would trap the process")
		return c
	}
	res := callBounded(r.ctx, r.env.Now, timeout, r.env.AppAttestSupported)
	c.took(res.elapsed)
	c.fact("hung", res.hung)
	switch {
	case res.hung:
		c.set(Fail, fmt.Sprintf("DCAppAttestService.isSupported did not return within %v", timeout))
		c.Hint = "report this with the macOS version; the App Attest provider would never start on this Mac"
	case res.err != nil && provider.ReasonOf(res.err) == provider.ReasonUnsupported:
		c.set(Skipped, "App Attest is not available on this macOS ("+res.err.Error()+"): attestd serves DeviceCheck tokens")
		c.fact("supported", false)
	case res.err != nil:
		c.fail(res.err)
	case !res.v:
		c.set(Skipped, "DCAppAttestService.isSupported is false: "+darwin.AppAttestRequirement+"; until then attestd serves DeviceCheck tokens")
		c.fact("supported", false)
	default:
		c.set(Pass, fmt.Sprintf("DCAppAttestService.isSupported is true (answered in %v)", res.elapsed.Round(time.Microsecond)))
		c.fact("supported", true)
	}
	return c
}

// keychain writes, reads and deletes a key id in an item of the
// selftest's own (never the helper's), and says whether the helper's item
// exists.
func (a *appAttestRun) keychain(r *run, timeout time.Duration) Check {
	c := newCheck("appattest-keychain")
	if r.result("gui-session").Status != Pass {
		c.set(Skipped, "not asked: the login Keychain belongs to the GUI session")
		return c
	}
	service := fmt.Sprintf("dev.attestd.selftest.%d", r.env.PID())
	res := callBounded(r.ctx, r.env.Now, timeout+time.Second, func() (string, error) {
		return keychainRoundTrip(r.ctx, r.env, service, timeout)
	})
	c.took(res.elapsed)
	c.fact("service", service)
	if id, err := r.env.Identity(); err == nil {
		c.fact("helperItem", helperItem(r.ctx, r.env, darwin.KeychainService("", id.BundleID), timeout))
	}
	switch {
	case res.hung:
		c.set(Fail, fmt.Sprintf("the Keychain did not answer within %v (a prompt nobody answered?)", timeout))
		c.Hint = "run the selftest in the desktop session and answer any Keychain prompt; report what it asked"
	case res.err != nil:
		c.fail(res.err)
	default:
		c.set(Pass, fmt.Sprintf("a key id was stored, read back and deleted in the login Keychain (service %q, account %q) in %v",
			service, darwin.KeychainAccount, res.elapsed.Round(time.Millisecond)))
	}
	return c
}

// keychainRoundTrip stores a made-up key id in service's item, reads it
// back and deletes the item.
func keychainRoundTrip(ctx context.Context, env Env, service string, timeout time.Duration) (string, error) {
	kc, err := env.NewKeychain(darwin.KeychainOptions{Service: service, Timeout: timeout})
	if err != nil {
		return "", err
	}
	var id [darwin.KeyIDSize]byte
	rand.Read(id[:])
	want := darwin.FormatKeyID(id)
	if err := kc.Set(ctx, want); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	got, err := kc.Get(ctx)
	if derr := kc.Delete(ctx); derr != nil && err == nil {
		err = fmt.Errorf("delete: %w", derr)
	}
	if err == nil && got != want {
		err = fmt.Errorf("read back %q, stored %q", got, want)
	}
	return got, err
}

// helperItem says whether the helper's own item holds a key id, without
// changing it: "present", "absent", or the error.
func helperItem(ctx context.Context, env Env, service string, timeout time.Duration) string {
	kc, err := env.NewKeychain(darwin.KeychainOptions{Service: service, Timeout: timeout})
	if err != nil {
		return err.Error()
	}
	switch _, err := kc.Get(ctx); {
	case err == nil:
		return "present (service " + strconv.Quote(service) + ")"
	case errors.Is(err, darwin.ErrNotFound):
		return "absent (service " + strconv.Quote(service) + ")"
	default:
		return err.Error()
	}
}

// key makes one App Attest key, bounded; it is the selftest's own, never
// stored or registered.
func (a *appAttestRun) key(r *run, timeout time.Duration) Check {
	c := newCheck("appattest-key")
	if r.result("appattest-supported").Status != Pass {
		c.set(Skipped, "not asked: App Attest is not available here (see appattest-supported)")
		return c
	}
	a.completions = make(chan darwin.Completion, 8)
	svc, err := r.env.NewAppAttest(darwin.AppAttestOptions{Timeout: timeout, OnCompletion: func(op darwin.AppAttestOp, w darwin.Completion) {
		if op == darwin.OpGenerateAssertion {
			select {
			case a.completions <- w:
			default:
			}
		}
	}})
	if err != nil {
		c.fail(err)
		return c
	}
	res := callBounded(r.ctx, r.env.Now, timeout+time.Second, func() (string, error) { return svc.GenerateKey(r.ctx) })
	c.took(res.elapsed)
	switch {
	case res.hung || provider.ReasonOf(res.err) == provider.ReasonTimeout:
		c.set(Fail, fmt.Sprintf("generateKey did not call its completion handler within %v", timeout))
		c.Hint = "report this with the whole report"
	case res.err != nil:
		c.set(Fail, fmt.Sprintf("generateKey failed in %v: %v", res.elapsed.Round(time.Millisecond), res.err))
		c.Hint = hint.Of(res.err)
	default:
		a.svc, a.keyID = svc, res.v
		c.fact("key", header.Fingerprint(res.v))
		c.set(Pass, fmt.Sprintf("a key (id fingerprint %s) in the Secure Enclave in %v", header.Fingerprint(res.v), res.elapsed.Round(time.Millisecond)))
	}
	return c
}

// assertion makes one assertion with the key, bounded. A helper with a
// Team ID must get one; one without must be refused cleanly (an NSError),
// never hang.
func (a *appAttestRun) assertion(r *run, timeout time.Duration) Check {
	c := newCheck("appattest-assertion")
	if a.svc == nil {
		c.set(Skipped, "not asked: no key was made (see appattest-key)")
		return c
	}
	h := sha256.Sum256([]byte("attestd selftest"))
	res := callBounded(r.ctx, r.env.Now, timeout+time.Second, func() ([]byte, error) {
		return a.svc.GenerateAssertion(r.ctx, a.keyID, h[:])
	})
	c.took(res.elapsed)
	where := ""
	select {
	case w := <-a.completions:
		c.fact("completion", w.String())
		c.fact("mainQueue", w.MainQueue())
		where = "; Apple called the completion handler " + w.String()
	default:
	}
	sig, sigErr := r.signature()
	expect := hasTeam(sig) && sigErr == nil
	took := res.elapsed.Round(time.Millisecond)
	var ae *darwin.AppAttestError
	switch {
	case res.hung || provider.ReasonOf(res.err) == provider.ReasonTimeout:
		c.set(Fail, fmt.Sprintf("generateAssertion did not call its completion handler within %v", timeout))
		c.Hint = "report this with the whole report"
	case res.err == nil:
		c.fact("assertionBytes", len(res.v))
		c.set(Pass, fmt.Sprintf("a %d-byte assertion (fingerprint %s) in %v, without attesting the key%s", len(res.v), header.Fingerprint(res.v), took, where))
	case errors.As(res.err, &ae) && !expect:
		c.set(Pass, fmt.Sprintf("Apple refused this %s binary cleanly in %v: %s", signingKind(sig), took, res.err))
		c.fact("dcErrorCode", ae.Code)
	default:
		c.set(Fail, fmt.Sprintf("generateAssertion failed in %v: %v", took, res.err))
		c.Hint = joinHints(hint.Of(res.err), "if Apple requires an attested key before an assertion, report it: attestd's provider attests first anyway")
	}
	return c
}
