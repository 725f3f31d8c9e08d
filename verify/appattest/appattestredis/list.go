package appattestredis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify/appattest"
)

// errStop ends a scan when yield returns false.
var errStop = errors.New("stop")

// scanBatch is how many keys one SCAN step asks for, and how many
// records one pipeline reads.
const scanBatch = 500

// List implements appattest.KeyStore with SCAN over the key prefix (on
// every master of a Cluster). A key registered or removed meanwhile may
// or may not be listed.
func (s *Store) List(ctx context.Context, yield func(*appattest.KeyRecord) bool) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	scan := func(ctx context.Context, c redis.Cmdable) error { return s.scan(ctx, c, yield) }
	var err error
	switch rdb := s.rdb.(type) {
	case *redis.ClusterClient:
		// One master at a time: yield is not called concurrently.
		var masters []*redis.Client
		err = rdb.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
			masters = append(masters, c)
			return nil
		})
		for _, c := range masters {
			if err != nil {
				break
			}
			err = scan(ctx, c)
		}
	default:
		err = scan(ctx, rdb)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return s.failed(err)
	}
	return nil
}

// scan lists the keys of one Redis node.
func (s *Store) scan(ctx context.Context, c redis.Cmdable, yield func(*appattest.KeyRecord) bool) error {
	match := globEscape(s.opts.Prefix+"key:") + "*"
	var cursor uint64
	for {
		names, next, err := c.Scan(ctx, cursor, match, scanBatch).Result()
		if err != nil {
			return err
		}
		if err := s.yieldRecords(ctx, c, names, yield); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// yieldRecords reads the named hashes in one pipeline and yields each
// that is still there.
func (s *Store) yieldRecords(ctx context.Context, c redis.Cmdable, names []string, yield func(*appattest.KeyRecord) bool) error {
	if len(names) == 0 {
		return nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HGetAll(ctx, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	prefix := s.opts.Prefix + "key:"
	for i, n := range names {
		id, err := hex.DecodeString(strings.TrimPrefix(n, prefix))
		m := cmds[i].Val()
		if err != nil || len(id) != 32 || len(m) == 0 {
			continue // not a key's hash, or removed meanwhile
		}
		rec, err := parseRecord(id, m)
		if err != nil {
			return err
		}
		if !yield(rec) {
			return errStop
		}
	}
	return nil
}

// globEscape escapes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) challengesName() string { return s.opts.Prefix + "challenges" }

// putScript: KEYS[1] the challenges' sorted set (member: the challenge,
// score: its expiry in Unix ms by Redis's clock); ARGV challenge, ttl
// (ms), the most unexpired challenges it may hold. It drops the expired
// ones, then adds the challenge unless the set is full ("full") or holds
// it already ("exists"), and keeps the set no longer than its newest
// challenge needs.
var putScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[3]) then return "full" end
if redis.call("ZADD", KEYS[1], "NX", now + ttl, ARGV[1]) == 0 then return "exists" end
if redis.call("PTTL", KEYS[1]) < ttl then redis.call("PEXPIRE", KEYS[1], ttl) end
return "ok"
`)

// takeScript: KEYS[1] the challenges' sorted set; ARGV challenge. It
// removes the challenge and returns 1 when it was there and had not
// expired by Redis's clock, else 0.
var takeScript = redis.NewScript(`
local exp = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not exp then return 0 end
redis.call("ZREM", KEYS[1], ARGV[1])
local t = redis.call("TIME")
if tonumber(exp) > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then return 1 end
return 0
`)

// Put implements appattest.ChallengeStore: one script adds the
// challenge to a sorted set by its expiry on Redis's clock, after
// dropping the expired ones. When the set holds Options.MaxChallenges
// unexpired challenges, Put fails with appattest.ErrStoreFull (a
// failure, not a refusal), so that a flood of requests for challenges
// cannot fill Redis.
func (s *Store) Put(ctx context.Context, challenge string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("app attest redis store: challenge ttl %v is not positive", ttl)
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	code, err := putScript.Run(ctx, s.rdb, []string{s.challengesName()}, challenge, max(1, ttl.Milliseconds()), s.opts.MaxChallenges).Text()
	switch {
	case err != nil:
		return s.failed(err)
	case code == "full":
		return s.failed(fmt.Errorf("%w: %d unexpired challenges (Options.MaxChallenges)", appattest.ErrStoreFull, s.opts.MaxChallenges))
	case code == "exists":
		return s.failed(errors.New("the challenge is already issued: make challenges from 32 random bytes"))
	case code != "ok":
		return s.failed(fmt.Errorf("put: unexpected reply %q", code))
	}
	return nil
}

// Take implements appattest.ChallengeStore, in one script: of two takes
// of one challenge, one removes it.
func (s *Store) Take(ctx context.Context, challenge string) (bool, error) {
	if err := s.ready(ctx); err != nil {
		return false, err
	}
	n, err := takeScript.Run(ctx, s.rdb, []string{s.challengesName()}, challenge).Int()
	if err != nil {
		return false, s.failed(err)
	}
	return n == 1, nil
}
