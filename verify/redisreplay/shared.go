package redisreplay

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Client returns the Redis client the Store uses, so that other stores
// of the same service (package appattestredis) share its connection and
// its settings. Closing the Store closes it if Open made it.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// CheckEviction returns what every Add checks first: nil when records
// are safe from eviction in this Redis as far as the Store knows, or an
// *EvictionError (ErrEvictionPolicy) while a master's maxmemory-policy
// may evict them and Options.AllowEviction does not accept it. Other
// stores sharing the Store's Redis call it to fail closed the same way.
// The policy is read when the Store first connects, and again every 10 s
// while it may evict.
func (s *Store) CheckEviction(ctx context.Context) error { return s.checkPolicy(ctx) }
