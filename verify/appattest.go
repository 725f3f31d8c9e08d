package verify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify/appattest"
)

// Errors of the kinds policy and of App Attest values (kind "aa"). Test
// with errors.Is; the package appattest error that said why is wrapped
// too.
var (
	// ErrKindNotAccepted means the value's kind is not one the Verifier
	// accepts (Verifier.Kinds).
	ErrKindNotAccepted = errors.New("attestation kind not accepted")
	// ErrUnknownKey means no App Attest key with the value's key id is
	// registered: the app must register it.
	ErrUnknownKey = errors.New("app attest key not registered")
	// ErrRevokedKey means the value's App Attest key was revoked.
	ErrRevokedKey = errors.New("app attest key revoked")
	// ErrDevKey means the App Attest key did not come from Apple's root
	// (the development root, a test CA) and the Verifier does not allow
	// development keys (AllowDev).
	ErrDevKey = errors.New("development app attest key not allowed")
	// ErrAssertion means the App Attest assertion did not verify: its
	// signature, its authenticator data or its App ID. Reason names the
	// check (appattest's "bad_signature", …).
	ErrAssertion = errors.New("app attest assertion not valid")
	// ErrKeyStore means the App Attest key store could not say (down,
	// failing, full or misconfigured). The check fails closed: an
	// outage (503), not a rejection.
	ErrKeyStore = errors.New("app attest key store failed")
)

// checkAppAttest checks a value of kind "aa" against the key store, in
// this order: the key is registered (ErrUnknownKey), active
// (ErrRevokedKey) and from Apple's root unless AllowDev (ErrDevKey); the
// assertion verifies with it over header.AppAttestClientDataHash of the
// value (ErrAssertion); and only then is its counter judged by the key's
// window, atomically in the store (ErrReplay). Apple is never asked.
//
// The counter window is the replay protection of kind "aa", so the
// token replay cache is not used: a header sent again carries the same
// counter and is refused by the window, changing g, i or n breaks the
// signature, and the assertion's bytes, which can be spelled otherwise
// without breaking it (ECDSA's s for n-s), carry the same counter. Only
// the key can make another assertion with a new counter.
func (v *Verifier) checkAppAttest(ctx context.Context, a *Attestation, res *Result, keep func(error) bool) error {
	if v.Keys == nil { // Check refuses "aa" without Keys; kept for Kinds listing it
		return fmt.Errorf("%w: %q needs Verifier.Keys, the App Attest key store", ErrKindNotAccepted, a.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(v.Timeout, DefaultTimeout))
	defer cancel()
	name := keyName(a.KeyID)
	rec, err := v.Keys.Get(ctx, a.KeyID)
	if err != nil {
		return v.keyFailure(ctx, a, name, err, keep, nil)
	}
	res.Environment, res.AppID = string(rec.Environment), rec.AppID
	switch {
	case rec.Status == appattest.KeyRevoked:
		return fmt.Errorf("key %s: %w", name, ErrRevokedKey)
	case rec.Development() && !v.AllowDev:
		return fmt.Errorf("key %s from the %q root: %w", name, rec.Root, ErrDevKey)
	}
	cdh := header.AppAttestClientDataHash(a.KeyID, a.GeneratedAt, a.Nonce)
	as, err := appattest.VerifyAssertion(a.Token, rec.Key(), cdh[:])
	if err != nil {
		if !appattest.Rejected(err) { // a stored record VerifyAssertion cannot use
			return v.keyFailure(ctx, a, name, err, keep, nil)
		}
		return fmt.Errorf("key %s, token %s: %w: %w", name, a.Fingerprint(), ErrAssertion, err)
	}
	res.Counter = as.Counter
	check := rand.Text()
	if err := v.Keys.Accept(ctx, a.KeyID, as.Counter, check, v.now()); err != nil {
		// The outcome is unknown when the store failed: the counter may
		// have been accepted. A check that admits nothing gives it back.
		release := func() { v.releaseCounter(ctx, a.KeyID, check) }
		return v.keyFailure(ctx, a, name, err, keep, release)
	}
	res.Valid = true
	return nil
}

// releaseCounter undoes the accept check may have made of a counter of
// key id, on a budget of its own (the check's may be spent, or its
// caller gone): a check that answers "could not check" spends nothing.
// If the store cannot, the counter stays spent: a retry of the same
// header is then refused as a replay, never admitted twice.
func (v *Verifier) releaseCounter(ctx context.Context, id []byte, check string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if _, err := v.Keys.Release(ctx, id, check); err != nil {
		v.observeStoreError(err)
	}
}

// keyFailure turns an error of the key store into the check's: a
// refusal (unknown, revoked, a counter replayed) or a failure to check
// (ErrKeyStore). After a failure the caller may let through (keep), the
// value is spent in the replay cache, under its clientDataHash
// (recordKey), so that the same assertion, however spelled, cannot be
// let through twice; after any other, release (when set) undoes what
// the failed step may have done.
func (v *Verifier) keyFailure(ctx context.Context, a *Attestation, name string, err error, keep func(error) bool, release func()) error {
	switch {
	case errors.Is(err, appattest.ErrUnknownKey):
		return fmt.Errorf("key %s: %w: %w", name, ErrUnknownKey, err)
	case errors.Is(err, appattest.ErrKeyRevoked):
		return fmt.Errorf("key %s: %w: %w", name, ErrRevokedKey, err)
	case errors.Is(err, appattest.ErrReplay):
		return fmt.Errorf("key %s, token %s: %w: %w", name, a.Fingerprint(), ErrReplay, err)
	}
	v.observeStoreError(err)
	err = fmt.Errorf("key %s: %w: %w", name, ErrKeyStore, err)
	switch {
	case keep != nil && keep(err):
		if _, rerr := v.record(ctx, a, v.replayTTL()); rerr != nil {
			return rerr
		}
	case release != nil:
		release()
	}
	return err
}

// keyName is how errors and logs name an App Attest key: its id in
// standard base64, as Apple gives it.
func keyName(id []byte) string { return base64.StdEncoding.EncodeToString(id) }

// accepts reports whether kind is one the Verifier accepts.
func (v *Verifier) accepts(kind string) bool { return slices.Contains(v.kinds(), kind) }

// kinds returns the kinds accepted: Kinds, or by default dc, aa when
// Keys is set, and dev under AllowDev.
func (v *Verifier) kinds() []string {
	if v.Kinds != nil {
		return v.Kinds
	}
	k := []string{header.KindDeviceCheck}
	if v.Keys != nil {
		k = append(k, header.KindAppAttest)
	}
	if v.AllowDev {
		k = append(k, header.KindDev)
	}
	return k
}

// KindObserver is an Observer that is also told each check's kind, for
// metrics by kind (package verifyprom's Collector is one). A Verifier
// calls ObserveCheckKind instead of ObserveCheck when its Observer is
// one.
type KindObserver interface {
	Observer
	// ObserveCheckKind is ObserveCheck with the kind of the value checked
	// (header.KindDeviceCheck, KindAppAttest, KindDev), "" when nothing
	// could be parsed.
	ObserveCheckKind(kind string, err error, elapsed time.Duration)
}
