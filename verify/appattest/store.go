package appattest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"time"
)

// What a KeyStore refuses. Each is a refusal (Rejected reports true, and
// Reason names it), not a failure of the store.
var (
	// ErrUnknownKey: no key with this id is registered.
	ErrUnknownKey = errors.New("key not registered")
	// ErrKeyRevoked: the key was revoked. Its assertions are refused, and
	// it cannot be registered again: the app must make a new key.
	ErrKeyRevoked = errors.New("key revoked")
	// ErrKeyConflict: a key with this id is registered with another public
	// key, App ID, environment or root. A key id names one key; the
	// stored record is kept.
	ErrKeyConflict = errors.New("key registered differently")
)

// ErrStoreFull is the error of a memory store holding as many entries as
// its bound allows. It is a failure to check (503), not a refusal.
var ErrStoreFull = errors.New("app attest store full")

// KeyStatus is whether a registered key's assertions are accepted.
type KeyStatus string

// The two statuses.
const (
	// KeyActive: assertions are checked and, when good, accepted.
	KeyActive KeyStatus = "active"
	// KeyRevoked: every assertion is refused (ErrKeyRevoked).
	KeyRevoked KeyStatus = "revoked"
)

// KeyRecord is a registered key as a KeyStore keeps it: what
// VerifyAttestation said of it, its status, when it was seen, and its
// counter's Window.
type KeyRecord struct {
	// ID is the key id (32 bytes).
	ID []byte
	// PublicKey is the attested P-256 key.
	PublicKey *ecdsa.PublicKey
	// AppID, Environment, Root, Receipt and KeyPolicy are the Key's (the
	// receipt of its latest registration).
	AppID       string
	Environment Environment
	Root        string
	Receipt     []byte
	KeyPolicy   []byte
	// Status is KeyActive or KeyRevoked.
	Status KeyStatus
	// RevokedAt is when the key was revoked; zero while it is active.
	RevokedAt time.Time
	// FirstSeen is when the key was first registered; LastSeen when it
	// was last registered or last had an assertion accepted.
	FirstSeen, LastSeen time.Time
	// Window is the counter's anti-replay state.
	Window Window
}

// Key returns the record as the Key VerifyAssertion takes.
func (r *KeyRecord) Key() *Key {
	return &Key{ID: r.ID, PublicKey: r.PublicKey, AppID: r.AppID, Environment: r.Environment,
		Root: r.Root, Receipt: r.Receipt, KeyPolicy: r.KeyPolicy}
}

// Development reports whether the key did not come from Apple's root
// (devattest's development root, a test CA): its assertions prove
// nothing, and a server accepts them only when it allows development
// keys.
func (r *KeyRecord) Development() bool { return r.Root != AppleRootName }

// KeyStore keeps registered keys and their counters. Every method is
// atomic for one key, also across the instances that share a store, and
// safe for concurrent use. An error that is not one of the sentinels
// above (or an *Error with ErrReplay) is a failure of the store: the
// caller fails closed (503), it does not refuse.
type KeyStore interface {
	// Register stores key, verified by VerifyAttestation, as attested
	// at now. A new id makes an active record (created is true). An id
	// already stored and active keeps its record, counter window and
	// FirstSeen, and takes the new receipt and LastSeen = now (created is
	// false). A revoked id is ErrKeyRevoked; an id stored with another
	// public key, App ID, environment or root is ErrKeyConflict.
	Register(ctx context.Context, key *Key, now time.Time) (rec *KeyRecord, created bool, err error)
	// Get returns the record of the key id, or ErrUnknownKey.
	Get(ctx context.Context, id []byte) (*KeyRecord, error)
	// Accept judges an assertion's counter, whose signature the caller
	// has verified, in one atomic step: the key must be stored
	// (ErrUnknownKey) and active (ErrKeyRevoked), and its Window must
	// accept counter (else an *Error with ErrReplay, the window left
	// unchanged). Then LastSeen = now. check is the caller's own id for
	// this check (a random string), kept with the key until its next
	// accept, so that Release can undo this one. Any other error means
	// the outcome is unknown: the counter may have been accepted (a
	// shared store ran the step but its reply was lost).
	Accept(ctx context.Context, id []byte, counter uint32, check string, now time.Time) error
	// Release undoes the accept that check made, for a caller that
	// admits nothing after all (Accept's outcome was unknown): when
	// that accept is the key's latest, the Window is put back as it
	// was before it and released is true, so that the counter can be
	// accepted again, once. Otherwise (the accept was never made, or
	// another has been made for the key since) it changes nothing: the
	// counter, if it was accepted, stays spent.
	Release(ctx context.Context, id []byte, check string) (released bool, err error)
	// Revoke marks the key revoked from now on (ErrUnknownKey when
	// there is none); revoking a revoked key does nothing.
	Revoke(ctx context.Context, id []byte, now time.Time) error
	// List calls yield with every record, in no particular order, until
	// it returns false.
	List(ctx context.Context, yield func(*KeyRecord) bool) error
}

// ChallengeStore keeps the registration challenges a server issued, so
// that any instance sharing the store can take the registration. A
// challenge is single-use and short-lived.
type ChallengeStore interface {
	// Put records challenge as issued, for ttl. A store holds a bounded
	// number of unexpired challenges, so that requests for challenges
	// cannot fill it: beyond that Put fails with ErrStoreFull.
	Put(ctx context.Context, challenge string, ttl time.Duration) error
	// Take removes challenge and reports whether it was issued and had
	// not expired: of two calls with one challenge, at most one gets
	// true.
	Take(ctx context.Context, challenge string) (bool, error)
}

// DefaultChallengeTTL is how long a registration challenge stays good.
const DefaultChallengeTTL = 5 * time.Minute

// Storable returns why a KeyStore cannot record key, or nil: a store
// needs its id (32 bytes), P-256 public key, App ID, environment and
// root, as VerifyAttestation returns them. Its error is the caller's
// mistake, not a refusal.
func (key *Key) Storable() error {
	switch {
	case key == nil || key.PublicKey == nil || key.PublicKey.Curve != elliptic.P256():
		return errors.New("appattest: register: the key has no P-256 public key")
	case len(key.ID) != credIDLen:
		return fmt.Errorf("appattest: register: key id of %d bytes, want %d", len(key.ID), credIDLen)
	case key.AppID == "" || key.Root == "":
		return errors.New("appattest: register: the key has no App ID or root: register what VerifyAttestation returned")
	case key.Environment != Development && key.Environment != Production:
		return fmt.Errorf("appattest: register: unknown environment %q", key.Environment)
	}
	return nil
}

// sameKey reports whether a stored record and a key being registered
// again are the same key, attested the same way.
func sameKey(r *KeyRecord, k *Key) bool {
	return r.PublicKey.Equal(k.PublicKey) && r.AppID == k.AppID && r.Environment == k.Environment && r.Root == k.Root
}

// conflict is the ErrKeyConflict for a key registered differently.
func conflict() error {
	return refuse(ErrKeyConflict, nil, "the key id is registered with another key, App ID, environment or root")
}

// revoked is the ErrKeyRevoked refusal.
func revoked() error {
	return refuse(ErrKeyRevoked, nil, "revoked: the app must make and register a new key")
}

// unknown is the ErrUnknownKey refusal.
func unknown() error {
	return refuse(ErrUnknownKey, nil, "no key with this id is registered: the app must register it")
}

// PublicKeyBytes returns key as the X9.62 uncompressed point a store
// keeps; ParsePublicKey reads it back.
func PublicKeyBytes(key *ecdsa.PublicKey) ([]byte, error) { return key.Bytes() }

// ParsePublicKey reads a P-256 public key from its X9.62 uncompressed
// point.
func ParsePublicKey(point []byte) (*ecdsa.PublicKey, error) {
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("appattest: stored public key: %w", err)
	}
	return k, nil
}
