package redisreplay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the eviction policy check. Test with errors.Is.
var (
	// ErrEvictionPolicy means a Redis master's maxmemory-policy may evict
	// replay records (an *EvictionError says which master and policy).
	// Every record has a TTL, so every policy but noeviction can drop
	// them under memory pressure, and forged tokens make that pressure:
	// a real token's record evicted, its header is accepted again. Each
	// check then fails closed, unless Options.AllowEviction is set.
	ErrEvictionPolicy = errors.New("redis may evict replay records")
	// ErrPolicyUnknown means a master's maxmemory-policy could not be read
	// (INFO refused or without the field). Checks go on; the Store logs a
	// warning, and Health returns it so that a caller can say so.
	ErrPolicyUnknown = errors.New("redis eviction policy could not be read")
)

// EvictionError reports a Redis master whose maxmemory-policy may evict
// replay records. It unwraps to ErrEvictionPolicy.
type EvictionError struct {
	// Addr is the master's address, as the client knows it.
	Addr string
	// Policy is its maxmemory-policy, e.g. allkeys-lru.
	Policy string
}

// Error names the master, the policy and the fix.
func (e *EvictionError) Error() string {
	return fmt.Sprintf("%v: %s has maxmemory-policy %s, which drops keys with a TTL (every replay record has one) when memory runs short, "+
		"and forged tokens can make it run short; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, "+
		"or your provider's parameter), or set Options.AllowEviction to accept replays after an eviction",
		ErrEvictionPolicy, e.Addr, e.Policy)
}

// Unwrap returns ErrEvictionPolicy.
func (e *EvictionError) Unwrap() error { return ErrEvictionPolicy }

// MasterPolicy is what one Redis master said of its eviction policy.
type MasterPolicy struct {
	// Addr is the master's address, as the client knows it.
	Addr string `json:"addr"`
	// Policy is its maxmemory-policy; empty when it could not be read.
	Policy string `json:"policy"`
}

// policyRecheck is how often a Store whose Redis may evict reads the
// policy again, so that fixing it takes effect without a restart.
const policyRecheck = 10 * time.Second

// policyState is what a Store knows of its Redis's eviction policy.
type policyState struct {
	mu      sync.Mutex
	checked bool      // read (or found unreadable, and warned) since the Store connected
	err     error     // an *EvictionError while the policy may evict and that is not accepted
	next    time.Time // when to read it again while err is set
	now     func() time.Time
}

// checkPolicy returns nil when records are safe in this Redis as far as
// the Store knows: the first time it connects, it reads every master's
// maxmemory-policy (INFO memory: CONFIG GET is disabled on several
// managed services). A policy that may evict fails every check with an
// *EvictionError (read again every policyRecheck), unless
// Options.AllowEviction; one that cannot be read is logged as a warning.
// A Redis that does not answer is not checked now: the check fails
// anyway, and the next one reads the policy.
func (s *Store) checkPolicy(ctx context.Context) error {
	p := &s.policy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.checked && (p.err == nil || p.now().Before(p.next)) {
		return p.err
	}
	_, _, err := s.refreshPolicy(ctx)
	return err
}

// Health reads every master's maxmemory-policy now, for a readiness
// check, and remembers what it found for the checks that follow. It
// returns each master's policy and nil when none may evict replay
// records (or Options.AllowEviction accepts it); an *EvictionError
// (ErrEvictionPolicy) when one may; an error wrapping ErrPolicyUnknown
// when one could not be read (a warning: checks go on); or Redis's own
// error when a master does not answer.
func (s *Store) Health(ctx context.Context) ([]MasterPolicy, error) {
	s.policy.mu.Lock()
	defer s.policy.mu.Unlock()
	masters, read, checks := s.refreshPolicy(ctx)
	if errors.Is(read, ErrEvictionPolicy) && checks == nil {
		return masters, nil // eviction accepted
	}
	return masters, read
}

// refreshPolicy reads the policies and updates s.policy, whose mutex must
// be held. It returns the masters' policies, what reading them found, and
// the error checks fail with from now on.
func (s *Store) refreshPolicy(ctx context.Context) (masters []MasterPolicy, read, checks error) {
	p := &s.policy
	masters, read = s.readPolicies(ctx)
	if read != nil && !errors.Is(read, ErrPolicyUnknown) && !errors.Is(read, ErrEvictionPolicy) {
		return masters, read, nil // Redis did not answer: leave it to the command
	}
	p.checked, p.err, p.next = true, nil, p.now().Add(policyRecheck)
	switch {
	case errors.Is(read, ErrEvictionPolicy) && !s.opts.AllowEviction:
		p.err = read
	case errors.Is(read, ErrEvictionPolicy):
		s.logger().Warn("redis replay store: eviction accepted (Options.AllowEviction): a flood of forged tokens can push out real tokens' records and let their headers pass again",
			"masters", masters)
	case read != nil:
		s.logger().Warn("redis replay store: could not read maxmemory-policy; make sure it is noeviction, or forged tokens can push out real tokens' records",
			"masters", masters, "err", read)
	}
	return masters, read, p.err
}

// readPolicies asks every master for its maxmemory-policy. The error is
// an *EvictionError for the first master whose policy may evict, else
// one wrapping ErrPolicyUnknown when a master's could not be read, else
// the first failure to reach one.
func (s *Store) readPolicies(ctx context.Context) ([]MasterPolicy, error) {
	var (
		mu       sync.Mutex
		masters  []MasterPolicy
		unknown  error
		reaching error
	)
	read := func(ctx context.Context, addr string, c redis.Cmdable) error {
		info, err := c.Info(ctx, "memory").Result()
		policy := infoField(info, "maxmemory_policy")
		mu.Lock()
		defer mu.Unlock()
		var rerr redis.Error
		switch {
		case err != nil && !errors.As(err, &rerr):
			reaching = firstErr(reaching, fmt.Errorf("redis replay store: %s: %w", addr, err))
			return nil
		case policy == "":
			unknown = firstErr(unknown, fmt.Errorf("redis replay store: %w: %s: %v", ErrPolicyUnknown, addr, firstErr(err, errors.New("INFO memory has no maxmemory_policy"))))
		}
		masters = append(masters, MasterPolicy{Addr: addr, Policy: policy})
		return nil
	}
	switch rdb := s.rdb.(type) {
	case *redis.ClusterClient:
		err := rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return read(ctx, c.Options().Addr, c) })
		reaching = firstErr(reaching, err)
	case *redis.Ring:
		err := rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return read(ctx, c.Options().Addr, c) })
		reaching = firstErr(reaching, err)
	case *redis.Client:
		read(ctx, rdb.Options().Addr, rdb)
	default:
		read(ctx, "redis", rdb)
	}
	slices.SortFunc(masters, func(a, b MasterPolicy) int { return strings.Compare(a.Addr, b.Addr) })
	for _, m := range masters {
		if m.Policy != "" && m.Policy != "noeviction" {
			return masters, &EvictionError{Addr: m.Addr, Policy: m.Policy}
		}
	}
	return masters, firstErr(unknown, reaching)
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// firstErr returns the first non-nil error of a and b.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *Store) logger() *slog.Logger {
	if s.opts.Logger != nil {
		return s.opts.Logger
	}
	return slog.Default()
}
