package appattestcli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/redisreplay"
)

// KeyReport is one key of the store, as "attestd appattest keys" prints
// it.
type KeyReport struct {
	KeyID       string `json:"keyId"` // standard base64
	Status      string `json:"status"`
	Environment string `json:"environment"`
	AppID       string `json:"appId"`
	// Root is the root its attestation chained to: apple, or development
	// (a key that proves nothing).
	Root      string `json:"root"`
	FirstSeen string `json:"firstSeen"`
	LastSeen  string `json:"lastSeen"`
	RevokedAt string `json:"revokedAt,omitempty"`
	// HighestCounter is the highest counter accepted (absent before the
	// first assertion).
	HighestCounter *uint32 `json:"highestCounter,omitempty"`
	ReceiptBytes   int     `json:"receiptBytes"`
}

func keyReport(r *appattest.KeyRecord) *KeyReport {
	k := &KeyReport{KeyID: base64.StdEncoding.EncodeToString(r.ID), Status: string(r.Status), Environment: string(r.Environment),
		AppID: r.AppID, Root: r.Root, FirstSeen: r.FirstSeen.UTC().Format(time.RFC3339Nano), LastSeen: r.LastSeen.UTC().Format(time.RFC3339Nano),
		ReceiptBytes: len(r.Receipt)}
	if !r.RevokedAt.IsZero() {
		k.RevokedAt = r.RevokedAt.UTC().Format(time.RFC3339Nano)
	}
	if r.Window.Seen != 0 {
		h := r.Window.Highest
		k.HighestCounter = &h
	}
	return k
}

// KeysConfig says which store "attestd appattest keys" works on.
type KeysConfig struct {
	// RedisURL is the Redis of the server's replay and key store
	// (--replay-redis).
	RedisURL string
	// Timeout bounds the whole command.
	Timeout time.Duration
}

// ParseKeyID reads a key id as a person may paste it: standard or
// URL-safe base64, padded or not (Apple's, the registration URL's, the
// X-Attestd-Key-Id header's).
func ParseKeyID(s string) ([]byte, error) {
	b, ok := decodeBase64(strings.TrimSpace(s))
	if !ok || len(b) != 32 {
		return nil, usagef("KEYID: want the 32-byte key id in base64 (as Apple gives it, or base64url), not %q", s)
	}
	return b, nil
}

// DashKeyIDs takes out of args the key ids that start with "-" (base64url
// may, as X-Attestd-Key-Id's value does), which a flag parser would take
// for flags; the command adds them to its positional arguments. No flag
// name is a key id: it would be 43 or 44 base64 characters.
func DashKeyIDs(args []string) (rest, ids []string) {
	for _, a := range args {
		if _, err := ParseKeyID(a); err == nil && strings.HasPrefix(a, "-") {
			ids = append(ids, a)
		} else {
			rest = append(rest, a)
		}
	}
	return rest, ids
}

// RunKeys runs "attestd appattest keys" with its positional arguments:
// list (every key, as a JSON array), show KEYID or revoke KEYID (the key
// as it is then). Its error is a *UsageError for arguments that cannot
// be used.
func RunKeys(ctx context.Context, cfg KeysConfig, args []string) (Verdict, error) {
	sub, want := "", map[string]int{"list": 1, "show": 2, "revoke": 2}
	if len(args) > 0 {
		sub = args[0]
	}
	if want[sub] == 0 || len(args) != want[sub] || cfg.Timeout <= 0 {
		return Verdict{}, usagef("appattest keys: want list, show KEYID or revoke KEYID, and a positive --timeout")
	}
	var id []byte
	if sub != "list" {
		var err error
		if id, err = ParseKeyID(args[1]); err != nil {
			return Verdict{}, err
		}
	}
	keys := []*KeyReport{}
	v, err := Keys(ctx, cfg, sub, id, func(k *KeyReport) error { keys = append(keys, k); return nil })
	if sub == "list" && err == nil && v.Code == Valid {
		v.Report = keys
	}
	return v, err
}

// Keys runs "attestd appattest keys SUB": list, show or revoke. list
// yields each key to emit as it goes; show and revoke answer one.
func Keys(ctx context.Context, cfg KeysConfig, sub string, id []byte, emit func(*KeyReport) error) (Verdict, error) {
	if cfg.RedisURL == "" {
		return Verdict{}, usagef("give --replay-redis URL (or $ATTESTD_REPLAY_REDIS): the Redis the server keeps its App Attest keys in")
	}
	replay, err := redisreplay.Open(cfg.RedisURL, redisreplay.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Verdict{}, usagef("--replay-redis: %v", err)
	}
	defer replay.Close()
	store := appattestredis.New(replay, appattestredis.Options{})
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	switch sub {
	case "list":
		var emitErr error
		err = store.List(ctx, func(r *appattest.KeyRecord) bool {
			emitErr = emit(keyReport(r))
			return emitErr == nil
		})
		if emitErr != nil {
			return Verdict{}, emitErr
		}
		return keysVerdict(nil, err, cfg.RedisURL), nil
	case "revoke":
		if err = store.Revoke(ctx, id, time.Now()); err != nil {
			return keysVerdict(nil, err, cfg.RedisURL), nil
		}
	}
	rec, err := store.Get(ctx, id)
	if err != nil {
		return keysVerdict(nil, err, cfg.RedisURL), nil
	}
	return keysVerdict(keyReport(rec), nil, cfg.RedisURL), nil
}

// keysVerdict is the outcome of a keys command: done (Valid), no such
// key (NotValid) or the store failed (NotChecked).
func keysVerdict(rep *KeyReport, err error, redisURL string) Verdict {
	switch {
	case err == nil:
		return Verdict{Report: rep, Code: Valid}
	case errors.Is(err, appattest.ErrUnknownKey):
		return Verdict{Report: &Report{Outcome: "not_found", Reason: "unknown_key", Error: err.Error()}, Code: NotValid,
			Err: hint.Wrap(err, "no key with this id is registered in this store: check the id and --replay-redis")}
	}
	h := fmt.Sprintf("the key store did not answer: check that Redis runs at %s", redact(redisURL))
	if errors.Is(err, redisreplay.ErrEvictionPolicy) {
		h = "Redis may evict the key records: set maxmemory-policy noeviction on every master (see verify/README.md)"
	}
	err = fmt.Errorf("could not reach the key store: %w", err)
	return Verdict{Report: &Report{Outcome: outcomes[NotChecked], Reason: "key_store", Error: err.Error()}, Code: NotChecked, Err: hint.Wrap(err, h)}
}

// redact shows a Redis URL without its password.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the --replay-redis URL"
	}
	return p.Redacted()
}
