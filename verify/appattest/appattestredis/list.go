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

func (s *Store) challengeName(challenge string) string {
	return s.opts.Prefix + "challenge:" + challenge
}

// Put implements appattest.ChallengeStore with SET … NX PX: Redis's
// clock expires it.
func (s *Store) Put(ctx context.Context, challenge string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("app attest redis store: challenge ttl %v is not positive", ttl)
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	err := s.rdb.Do(ctx, "SET", s.challengeName(challenge), "1", "PX", max(1, ttl.Milliseconds()), "NX").Err()
	switch {
	case errors.Is(err, redis.Nil):
		return s.failed(errors.New("the challenge is already issued: make challenges from 32 random bytes"))
	case err != nil:
		return s.failed(err)
	}
	return nil
}

// Take implements appattest.ChallengeStore with DEL, atomic: of two
// takes, one deletes the key. An expired key is not deleted (Redis
// reports it gone).
func (s *Store) Take(ctx context.Context, challenge string) (bool, error) {
	if err := s.ready(ctx); err != nil {
		return false, err
	}
	n, err := s.rdb.Del(ctx, s.challengeName(challenge)).Result()
	if err != nil {
		return false, s.failed(err)
	}
	return n == 1, nil
}
