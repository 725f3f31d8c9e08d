// Package appattestredis keeps App Attest keys, their counter windows and
// the registration challenges in Redis (or Valkey), shared by every
// instance of a service: a challenge issued by one instance can be taken
// by another, and a counter accepted by one is a replay for all.
//
// A Store shares the connection of a redisreplay.Store, and its check of
// Redis's eviction policy: a key's record has no TTL, but under an
// allkeys-* policy Redis may evict it, and an evicted counter window is
// a replay hole (the key, registered again, would start a fresh window).
// So every operation fails closed with the replay store's *EvictionError
// while a master's maxmemory-policy may evict, unless the replay store's
// Options.AllowEviction accepts it.
//
// Layout, under Options.Prefix (DefaultPrefix):
//
//	key:<hex key id>     hash: pub (X9.62 point), app, env, root, receipt,
//	                     policy, status (active|revoked), first, last,
//	                     revoked (Unix ms), hi (highest counter) and seen
//	                     (the window's bits as text: character i is "1"
//	                     when counter hi-i was accepted); check, prevhi
//	                     and prevseen: the latest accept's check and the
//	                     window before it, for Release
//	challenges           sorted set: each unexpired challenge, scored by
//	                     its expiry (Unix ms, Redis's clock); at most
//	                     Options.MaxChallenges of them
//
// Each operation on a key is one Lua script, atomic in Redis and in a
// Cluster (one key each). The counter script mirrors appattest.Window
// step for step; storetest runs both on the same table.
//
//	replay, err := redisreplay.Open("redis://redis:6379", redisreplay.Options{})
//	keys := appattestredis.New(replay, appattestredis.Options{})
//	v := &verify.Verifier{Client: apple, Replays: replay, Keys: keys}
package appattestredis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/redisreplay"
)

// DefaultPrefix is put before every key when Options.Prefix is empty.
const DefaultPrefix = "attestd:appattest:"

// Options configures a Store.
type Options struct {
	// Prefix is put before every key. Empty means DefaultPrefix.
	// Instances that share keys and challenges need the same prefix.
	Prefix string
	// WindowSize is the counter window's width (appattest.Window): zero
	// means appattest.DefaultWindowSize. Instances sharing the store must
	// use the same.
	WindowSize int
	// MaxChallenges bounds the unexpired registration challenges held,
	// by every instance together; Put fails with appattest.ErrStoreFull
	// beyond it. Zero means appattest.DefaultMaxChallenges (about 9 MB
	// of Redis's memory).
	MaxChallenges int
}

// Store is an appattest.KeyStore and an appattest.ChallengeStore in
// Redis. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	replay *redisreplay.Store
	opts   Options
}

var (
	_ appattest.KeyStore       = (*Store)(nil)
	_ appattest.ChallengeStore = (*Store)(nil)
)

// New returns a Store on replay's Redis connection, failing closed as
// replay does when Redis may evict. Closing replay closes the connection.
func New(replay *redisreplay.Store, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.WindowSize <= 0 {
		opts.WindowSize = appattest.DefaultWindowSize
	}
	opts.WindowSize = min(opts.WindowSize, appattest.MaxWindowSize)
	if opts.MaxChallenges <= 0 {
		opts.MaxChallenges = appattest.DefaultMaxChallenges
	}
	return &Store{rdb: replay.Client(), replay: replay, opts: opts}
}

func (s *Store) keyName(id []byte) string { return s.opts.Prefix + "key:" + hex.EncodeToString(id) }

// ready fails closed while Redis may evict.
func (s *Store) ready(ctx context.Context) error {
	if err := s.replay.CheckEviction(ctx); err != nil {
		return s.failed(err)
	}
	return nil
}

func (s *Store) failed(err error) error { return fmt.Errorf("app attest redis store: %w", err) }

// registerScript: KEYS[1] the key's hash; ARGV pub, app, env, root,
// receipt, policy, now (ms). It returns {code, HGETALL…}: "created",
// "existing" (receipt and last seen updated), "revoked" or "conflict".
var registerScript = redis.NewScript(`
local cur = redis.call("HMGET", KEYS[1], "status", "pub", "app", "env", "root")
local code = "created"
if cur[1] then
  if cur[1] ~= "active" then return {"revoked"} end
  if cur[2] ~= ARGV[1] or cur[3] ~= ARGV[2] or cur[4] ~= ARGV[3] or cur[5] ~= ARGV[4] then return {"conflict"} end
  redis.call("HSET", KEYS[1], "receipt", ARGV[5], "last", ARGV[7])
  code = "existing"
else
  redis.call("HSET", KEYS[1], "pub", ARGV[1], "app", ARGV[2], "env", ARGV[3], "root", ARGV[4], "receipt", ARGV[5],
    "policy", ARGV[6], "status", "active", "first", ARGV[7], "last", ARGV[7], "hi", "0", "seen", "")
end
local out = redis.call("HGETALL", KEYS[1])
table.insert(out, 1, code)
return out
`)

// Register implements appattest.KeyStore.
func (s *Store) Register(ctx context.Context, key *appattest.Key, now time.Time) (*appattest.KeyRecord, bool, error) {
	if err := key.Storable(); err != nil {
		return nil, false, err
	}
	pub, err := appattest.PublicKeyBytes(key.PublicKey)
	if err != nil {
		return nil, false, err
	}
	if err := s.ready(ctx); err != nil {
		return nil, false, err
	}
	reply, err := registerScript.Run(ctx, s.rdb, []string{s.keyName(key.ID)},
		pub, key.AppID, string(key.Environment), key.Root, key.Receipt, key.KeyPolicy, now.UnixMilli()).StringSlice()
	if err != nil {
		return nil, false, s.failed(err)
	}
	switch {
	case len(reply) == 0:
		return nil, false, s.failed(errors.New("register: empty reply"))
	case reply[0] == "revoked":
		return nil, false, refusal(appattest.ErrKeyRevoked, "revoked: the app must make and register a new key")
	case reply[0] == "conflict":
		return nil, false, refusal(appattest.ErrKeyConflict, "the key id is registered with another key, App ID, environment or root")
	}
	rec, err := parseRecord(key.ID, pairs(reply[1:]))
	if err != nil {
		return nil, false, s.failed(err)
	}
	return rec, reply[0] == "created", nil
}

// pairs turns an HGETALL reply into a map.
func pairs(flat []string) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m
}

// refusal is the *appattest.Error for one of the store's sentinels.
func refusal(sentinel error, detail string) error {
	return &appattest.Error{Reason: appattest.Reason(sentinel), Err: sentinel, Detail: detail}
}

func unknownKey() error {
	return refusal(appattest.ErrUnknownKey, "no key with this id is registered: the app must register it")
}

// Get implements appattest.KeyStore.
func (s *Store) Get(ctx context.Context, id []byte) (*appattest.KeyRecord, error) {
	if len(id) != 32 {
		return nil, unknownKey()
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	m, err := s.rdb.HGetAll(ctx, s.keyName(id)).Result()
	if err != nil {
		return nil, s.failed(err)
	}
	if len(m) == 0 {
		return nil, unknownKey()
	}
	rec, err := parseRecord(id, m)
	if err != nil {
		return nil, s.failed(err)
	}
	return rec, nil
}

// acceptScript: KEYS[1] the key's hash; ARGV counter, window size, now
// (ms), check. It returns {code, hi, seen}: "ok", "unknown", "revoked",
// or "replay" with the window that refused. The steps are
// appattest.Window.Accept's, with the bits as text (character i+1 is bit
// i), so that no 64-bit integer passes through Lua's doubles. An accept
// keeps its check and the window before it, for releaseScript.
var acceptScript = redis.NewScript(`
local f = redis.call("HMGET", KEYS[1], "status", "hi", "seen")
if not f[1] then return {"unknown"} end
if f[1] ~= "active" then return {"revoked"} end
local c, size = tonumber(ARGV[1]), tonumber(ARGV[2])
local hi, seen = tonumber(f[2]) or 0, f[3] or ""
if seen == "" then
  hi, seen = c, "1"
elseif c > hi then
  local d = c - hi
  if d >= size then seen = "1" else seen = string.sub("1" .. string.rep("0", d - 1) .. seen, 1, size) end
  hi = c
else
  local d = hi - c
  if d >= size or string.sub(seen, d + 1, d + 1) == "1" then return {"replay", f[2], seen} end
  if #seen < d + 1 then seen = seen .. string.rep("0", d + 1 - #seen) end
  seen = string.sub(seen, 1, d) .. "1" .. string.sub(seen, d + 2)
end
redis.call("HSET", KEYS[1], "hi", string.format("%d", hi), "seen", seen, "last", ARGV[3],
  "check", ARGV[4], "prevhi", f[2] or "0", "prevseen", f[3] or "")
return {"ok"}
`)

// releaseScript: KEYS[1] the key's hash; ARGV check. When the key's
// latest accept is check's, the window goes back to what it was before
// it (1); otherwise nothing changes (0).
var releaseScript = redis.NewScript(`
local f = redis.call("HMGET", KEYS[1], "check", "prevhi", "prevseen")
if not f[1] or f[1] ~= ARGV[1] then return 0 end
redis.call("HSET", KEYS[1], "hi", f[2] or "0", "seen", f[3] or "")
redis.call("HDEL", KEYS[1], "check", "prevhi", "prevseen")
return 1
`)

// Accept implements appattest.KeyStore, in one script. A refusal's error
// is appattest.Window's own, made again from the window the script
// refused with; should the two ever disagree, the check fails closed.
func (s *Store) Accept(ctx context.Context, id []byte, counter uint32, check string, now time.Time) error {
	if len(id) != 32 {
		return unknownKey()
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	reply, err := acceptScript.Run(ctx, s.rdb, []string{s.keyName(id)}, counter, s.opts.WindowSize, now.UnixMilli(), check).StringSlice()
	if err != nil {
		return s.failed(err)
	}
	switch {
	case len(reply) == 1 && reply[0] == "ok":
		return nil
	case len(reply) == 1 && reply[0] == "unknown":
		return unknownKey()
	case len(reply) == 1 && reply[0] == "revoked":
		return refusal(appattest.ErrKeyRevoked, "revoked: the app must make and register a new key")
	case len(reply) == 3 && reply[0] == "replay":
		w, err := parseWindow(reply[1], reply[2])
		if err != nil {
			return s.failed(err)
		}
		if err := w.Accept(counter, s.opts.WindowSize); err != nil {
			return err
		}
		return s.failed(fmt.Errorf("the counter script refused counter %d, which appattest.Window accepts from %+v", counter, w))
	}
	return s.failed(fmt.Errorf("accept: unexpected reply %q", reply))
}

// Release implements appattest.KeyStore, in one script. It does not
// wait for the eviction check: it only ever puts back a window an
// accept of this check changed.
func (s *Store) Release(ctx context.Context, id []byte, check string) (bool, error) {
	if len(id) != 32 || check == "" {
		return false, nil
	}
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.keyName(id)}, check).Int()
	if err != nil {
		return false, s.failed(err)
	}
	return n == 1, nil
}

// revokeScript: KEYS[1] the key's hash; ARGV now (ms). 0: no such key.
var revokeScript = redis.NewScript(`
local st = redis.call("HGET", KEYS[1], "status")
if not st then return 0 end
if st ~= "revoked" then redis.call("HSET", KEYS[1], "status", "revoked", "revoked", ARGV[1]) end
return 1
`)

// Revoke implements appattest.KeyStore.
func (s *Store) Revoke(ctx context.Context, id []byte, now time.Time) error {
	if len(id) != 32 {
		return unknownKey()
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	n, err := revokeScript.Run(ctx, s.rdb, []string{s.keyName(id)}, now.UnixMilli()).Int()
	switch {
	case err != nil:
		return s.failed(err)
	case n == 0:
		return unknownKey()
	}
	return nil
}

// parseRecord reads a key's hash.
func parseRecord(id []byte, m map[string]string) (*appattest.KeyRecord, error) {
	pub, err := appattest.ParsePublicKey([]byte(m["pub"]))
	if err != nil {
		return nil, fmt.Errorf("key %x: %w", id, err)
	}
	w, err := parseWindow(m["hi"], m["seen"])
	if err != nil {
		return nil, fmt.Errorf("key %x: %w", id, err)
	}
	r := &appattest.KeyRecord{ID: append([]byte(nil), id...), PublicKey: pub, AppID: m["app"],
		Environment: appattest.Environment(m["env"]), Root: m["root"], Status: appattest.KeyStatus(m["status"]),
		Window: w}
	if v := m["receipt"]; v != "" {
		r.Receipt = []byte(v)
	}
	if v := m["policy"]; v != "" {
		r.KeyPolicy = []byte(v)
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"first", &r.FirstSeen}, {"last", &r.LastSeen}, {"revoked", &r.RevokedAt}} {
		if m[f.name] == "" {
			continue
		}
		ms, err := strconv.ParseInt(m[f.name], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %x: field %s: %w", id, f.name, err)
		}
		*f.t = time.UnixMilli(ms).UTC()
	}
	if r.Status != appattest.KeyActive && r.Status != appattest.KeyRevoked {
		return nil, fmt.Errorf("key %x: status %q", id, r.Status)
	}
	return r, nil
}

// parseWindow reads the window's fields: hi in decimal, seen as text
// bits.
func parseWindow(hi, seen string) (appattest.Window, error) {
	var w appattest.Window
	if hi != "" {
		h, err := strconv.ParseUint(hi, 10, 32)
		if err != nil {
			return w, fmt.Errorf("window: highest counter %q", hi)
		}
		w.Highest = uint32(h)
	}
	if len(seen) > 64 || strings.Trim(seen, "01") != "" {
		return w, fmt.Errorf("window: bits %q", seen)
	}
	for i := range len(seen) {
		if seen[i] == '1' {
			w.Seen |= 1 << i
		}
	}
	return w, nil
}
