package registration

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter gives each client its own token bucket, in a table of at
// most max clients. A full table first forgets the clients whose bucket
// has refilled (they are as good as new), at most once a second; clients
// beyond it share one
// bucket, so a flood of made-up names cannot grow the table or take more
// than that one bucket.
type clientLimiter struct {
	rate  rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	clients   map[string]*clientBucket
	overflow  *rate.Limiter
	lastSweep time.Time
}

type clientBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newClientLimiter(r rate.Limit, burst, max int) *clientLimiter {
	return &clientLimiter{rate: r, burst: burst, max: max, clients: map[string]*clientBucket{}, overflow: rate.NewLimiter(r, burst)}
}

// allow takes a token from client's bucket at now, or says how long
// until one is there.
func (l *clientLimiter) allow(client string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.bucket(client, now)
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// bucket returns client's bucket, made if need be; l.mu must be held.
func (l *clientLimiter) bucket(client string, now time.Time) *rate.Limiter {
	if b, ok := l.clients[client]; ok {
		b.last = now
		return b.lim
	}
	if len(l.clients) >= l.max && now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		refill := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
		for k, b := range l.clients {
			if now.Sub(b.last) >= refill {
				delete(l.clients, k)
			}
		}
	}
	if len(l.clients) >= l.max {
		return l.overflow
	}
	b := &clientBucket{lim: rate.NewLimiter(l.rate, l.burst), last: now}
	l.clients[client] = b
	return b.lim
}

// known returns how many clients have a bucket of their own, for tests.
func (l *clientLimiter) known() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
