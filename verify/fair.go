package verify

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ClientKey names the client a request comes from (an address, an
// account, an API key's id), so that calls to Apple are shared fairly
// between clients: see MiddlewareOptions.Client. The empty string is the
// unnamed client, shared by every request that has no name.
type ClientKey func(r *http.Request) string

type clientCtxKey struct{}

// WithClient returns ctx naming the client its check is for: calls to
// Apple made for it (Verifier.Verify, Client.ValidateDeviceToken …) take
// their turn among that client's, and each client with calls waiting
// gets its turn in rotation. Middleware does this with
// MiddlewareOptions.Client; a direct caller of Verify does it itself.
func WithClient(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, clientCtxKey{}, key)
}

// ClientFromContext returns the client WithClient named in ctx, or "".
func ClientFromContext(ctx context.Context) string {
	key, _ := ctx.Value(clientCtxKey{}).(string)
	return key
}

// DefaultMaxClients bounds how many clients with calls waiting or in
// flight a Client tells apart when Config.MaxClients is zero; the others
// share one turn.
const DefaultMaxClients = 4096

// fairLimiter shares a Client's limits on calls to Apple (a rate and a
// number in flight) between clients. A call that finds room and nobody
// waiting goes at once. Otherwise it waits in its client's queue, and
// each time there is room the next client in rotation among those with
// calls waiting sends its oldest: under a flood from one client, every
// other client's call waits for one turn of the rotation, not behind the
// flood. Clients are known only while they have calls waiting or in
// flight, at most maxClients of them; the rest share one entry.
type fairLimiter struct {
	limiter    *rate.Limiter // nil: no rate limit
	slots      int           // calls in flight at most; 0: no bound
	maxClients int

	mu       sync.Mutex
	inFlight int
	clients  map[string]*fairClient
	overflow *fairClient   // the turn shared by clients beyond maxClients
	ring     []*fairClient // clients with calls waiting, in rotation
	next     int           // the ring's next turn
	timer    *time.Timer   // set while waiters wait for the rate

	onWait func() // seam for tests: called, f.mu held, when a call starts to wait
}

type fairClient struct {
	key      string
	waiters  []*fairWaiter
	inFlight int
	inRing   bool
}

type fairWaiter struct {
	ready   chan struct{} // closed when granted
	granted bool
}

func newFairLimiter(limiter *rate.Limiter, slots, maxClients int) *fairLimiter {
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	return &fairLimiter{limiter: limiter, slots: slots, maxClients: maxClients,
		clients: map[string]*fairClient{}, overflow: &fairClient{}}
}

// acquire takes room for one call of client key, waiting for its turn
// until wctx is done; release gives it back. It refuses at once when the
// wait before its turn would outlast wctx, as far as the rate tells.
func (f *fairLimiter) acquire(wctx context.Context, key string) (release func(), ok bool) {
	f.mu.Lock()
	c := f.client(key)
	if len(f.ring) == 0 && f.take() {
		f.grant(c)
		f.mu.Unlock()
		return f.releaser(c), true
	}
	if !f.fits(wctx, c) {
		f.forget(c)
		f.mu.Unlock()
		return nil, false
	}
	w := &fairWaiter{ready: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	if !c.inRing {
		c.inRing = true
		f.ring = append(f.ring, c)
	}
	if f.onWait != nil {
		f.onWait()
	}
	f.dispatch()
	f.mu.Unlock()
	select {
	case <-w.ready:
		return f.releaser(c), true
	case <-wctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if w.granted { // its turn came as the wait ended: take it
		return f.releaser(c), true
	}
	f.withdraw(c, w)
	return nil, false
}

// client returns key's entry, made if need be; f.mu must be held.
func (f *fairLimiter) client(key string) *fairClient {
	if c, ok := f.clients[key]; ok {
		return c
	}
	if len(f.clients) >= f.maxClients {
		return f.overflow
	}
	c := &fairClient{key: key}
	f.clients[key] = c
	return c
}

// take reports whether there is room for a call now, and takes it: a
// slot in flight and a token of the rate; f.mu must be held.
func (f *fairLimiter) take() bool {
	if f.slots > 0 && f.inFlight >= f.slots {
		return false
	}
	return f.limiter == nil || f.limiter.Allow()
}

func (f *fairLimiter) grant(c *fairClient) {
	f.inFlight++
	c.inFlight++
}

// fits reports whether a call of c, joining the rotation now, would get
// its turn before wctx is done, as far as the rate tells (a full set of
// slots cannot be foreseen); f.mu must be held.
func (f *fairLimiter) fits(wctx context.Context, c *fairClient) bool {
	deadline, ok := wctx.Deadline()
	if !ok || f.limiter == nil {
		return wctx.Err() == nil
	}
	turns := len(f.ring)
	if !c.inRing {
		turns++
	}
	// Its turn comes after every waiter ahead of it in its queue, and
	// each of those after one turn of every client in the rotation.
	need := float64((len(c.waiters)+1)*turns) - f.limiter.Tokens()
	wait := time.Duration(need / float64(f.limiter.Limit()) * float64(time.Second))
	return time.Now().Add(wait).Before(deadline)
}

// dispatch grants the waiting calls, in rotation, all the room there is,
// and sets a timer for when the rate next has room; f.mu must be held.
func (f *fairLimiter) dispatch() {
	for len(f.ring) > 0 {
		if f.slots > 0 && f.inFlight >= f.slots {
			return // a release dispatches again
		}
		if f.limiter != nil && !f.limiter.Allow() {
			f.wakeForRate()
			return
		}
		f.next %= len(f.ring)
		c := f.ring[f.next]
		w := c.waiters[0]
		c.waiters = c.waiters[1:]
		w.granted = true
		close(w.ready)
		f.grant(c)
		if len(c.waiters) == 0 {
			f.leaveRing(f.next)
		} else {
			f.next++
		}
	}
}

// wakeForRate sets the timer to dispatch once the rate has a token.
func (f *fairLimiter) wakeForRate() {
	if f.timer != nil {
		return
	}
	wait := time.Duration((1 - f.limiter.Tokens()) / float64(f.limiter.Limit()) * float64(time.Second))
	f.timer = time.AfterFunc(max(wait, time.Millisecond), func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.timer = nil
		f.dispatch()
	})
}

// leaveRing takes the client at index i out of the rotation.
func (f *fairLimiter) leaveRing(i int) {
	f.ring[i].inRing = false
	f.ring = append(f.ring[:i], f.ring[i+1:]...)
	if f.next > i {
		f.next--
	}
}

// withdraw takes waiter w out of c's queue; f.mu must be held.
func (f *fairLimiter) withdraw(c *fairClient, w *fairWaiter) {
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			break
		}
	}
	if len(c.waiters) == 0 && c.inRing {
		for i, x := range f.ring {
			if x == c {
				f.leaveRing(i)
				break
			}
		}
	}
	f.forget(c)
}

// forget drops c from the table when it has nothing waiting or in
// flight; f.mu must be held.
func (f *fairLimiter) forget(c *fairClient) {
	if c != f.overflow && c.inFlight == 0 && len(c.waiters) == 0 {
		delete(f.clients, c.key)
	}
}

// releaser returns the function that gives c's room back.
func (f *fairLimiter) releaser(c *fairClient) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.inFlight--
			c.inFlight--
			f.dispatch()
			f.forget(c)
		})
	}
}

// known returns how many clients the table holds, for tests.
func (f *fairLimiter) known() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.clients)
}
