package verify

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

// settleTimeout bounds what a check does to the token's record after
// asking Apple (extending or removing it). It runs on a budget of its
// own, not cut short by a caller that hangs up or a check whose time ran
// out: the record must match what the caller is told.
const settleTimeout = time.Second

// record is one check's entry for a token in a ReplayCache. A nil
// *record (replays allowed) does nothing.
type record struct {
	cache       ReplayCache
	key, id     string
	fingerprint string
	observe     func(error)
}

// record adds a's token to the replay cache for ttl, under an id of its
// own: the record, or an error wrapping ErrReplay when the token is
// already recorded, or ErrReplayStore when the store fails. When the
// store fails the record may have been made all the same (its reply
// lost), so it is removed, if it is ours, before the check answers: a
// 503 does not spend the token. With AllowReplays it returns a nil
// record and no error.
func (v *Verifier) record(ctx context.Context, a *Attestation, ttl time.Duration) (*record, error) {
	replays := v.replays()
	if replays == nil {
		return nil, nil
	}
	rec := &record{cache: replays, key: recordKey(a), id: rand.Text(), fingerprint: a.Fingerprint(), observe: v.observeStoreError}
	added, err := replays.Add(ctx, rec.key, rec.id, ttl)
	if err != nil {
		rec.observe(err)
		rec.remove(ctx)
		return nil, fmt.Errorf("token %s: %w: %w", rec.fingerprint, ErrReplayStore, err)
	}
	if !added {
		return nil, fmt.Errorf("token %s: %w", rec.fingerprint, ErrReplay)
	}
	return rec, nil
}

// recordKey is the key a's token is recorded under: ReplayKey of the
// token, or, for an App Attest value, of what its assertion's signature
// covers (the value's clientDataHash, after a domain of its own), since
// the assertion's bytes can be changed without breaking the signature
// (ECDSA's s for n-s, CBOR spelled otherwise) and so could not name it.
func recordKey(a *Attestation) string {
	if a.Kind != header.KindAppAttest {
		return ReplayKey(a.Token)
	}
	cdh := header.AppAttestClientDataHash(a.KeyID, a.GeneratedAt, a.Nonce)
	return ReplayKey(append([]byte("attestd-aa-spent:"), cdh[:]...))
}

// extend keeps the record for ttl from now. When that fails (the store,
// or the record lost: expired or evicted meanwhile), the token cannot be
// known to be spent, so the record is removed if it is still ours and
// the error wraps ErrReplayStore: the check fails closed.
func (r *record) extend(ctx context.Context, ttl time.Duration) error {
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	err := r.cache.Extend(ctx, r.key, r.id, ttl)
	if err == nil {
		return nil
	}
	r.observe(err)
	r.remove(ctx)
	return fmt.Errorf("token %s: %w: keep the record: %w", r.fingerprint, ErrReplayStore, err)
}

// remove deletes the record if it is still ours, on a budget of its own.
func (r *record) remove(ctx context.Context) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := r.cache.Remove(ctx, r.key, r.id); err != nil {
		r.observe(err)
	}
}
