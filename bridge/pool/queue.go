package pool

import "container/list"

// Queue groups the waiting requests of one client (the server keeps one
// per connection). When requests wait for tokens, each token made goes to
// the next queue in turn, round robin, and within a queue to its oldest
// request: a client that pipelines thousands of requests gets one token
// in every k (k the number of queues with waiters), and cannot starve the
// others. The zero Queue is ready to use; one Queue belongs to one Pool.
type Queue struct {
	waiters list.List     // of *waiter, oldest first; guarded by Pool.mu
	ring    *list.Element // in queues.ring while it has waiters
}

type waiter struct {
	ch   chan result // buffered 1
	q    *Queue
	elem *list.Element // in q.waiters; nil once answered or removed
}

// queues holds every queue with waiters; guarded by Pool.mu.
type queues struct {
	shared Queue     // for Token, which names no queue
	ring   list.List // of *Queue with waiters; the front is served next
	n      int       // waiters in all queues
}

// push adds a waiter to q. At max waiters it makes room by failing the
// newest waiter of the longest queue when that queue holds at least two
// more than q (and reports it), else it refuses with ErrOverloaded: the
// client asking for the most pays for the overload.
func (qs *queues) push(q *Queue, max int) (w *waiter, evicted bool, err error) {
	if qs.n >= max {
		longest := q
		for e := qs.ring.Front(); e != nil; e = e.Next() {
			if o := e.Value.(*Queue); o.waiters.Len() > longest.waiters.Len() {
				longest = o
			}
		}
		if longest.waiters.Len() <= q.waiters.Len()+1 {
			return nil, false, ErrOverloaded
		}
		victim := longest.waiters.Back().Value.(*waiter)
		qs.remove(victim)
		victim.ch <- result{err: ErrOverloaded}
		evicted = true
	}
	w = &waiter{ch: make(chan result, 1), q: q}
	if q.waiters.Len() == 0 {
		q.ring = qs.ring.PushBack(q)
	}
	w.elem = q.waiters.PushBack(w)
	qs.n++
	return w, evicted, nil
}

// next takes the waiter to serve: the oldest of the queue whose turn it
// is, and moves that queue to the back of the ring. Nil when none waits.
func (qs *queues) next() *waiter {
	e := qs.ring.Front()
	if e == nil {
		return nil
	}
	q := e.Value.(*Queue)
	w := q.waiters.Front().Value.(*waiter)
	qs.remove(w)
	if q.ring != nil {
		qs.ring.MoveToBack(q.ring)
	}
	return w
}

// remove takes w out of its queue in constant time, so that many requests
// giving up together do not hold the lock for a quadratic number of
// steps; it reports whether w was still waiting.
func (qs *queues) remove(w *waiter) bool {
	if w.elem == nil {
		return false
	}
	q := w.q
	q.waiters.Remove(w.elem)
	w.elem = nil
	qs.n--
	if q.waiters.Len() == 0 {
		qs.ring.Remove(q.ring)
		q.ring = nil
	}
	return true
}

// failAll answers every waiter with err.
func (qs *queues) failAll(err error) {
	for e := qs.ring.Front(); e != nil; e = qs.ring.Front() {
		q := e.Value.(*Queue)
		for we := q.waiters.Front(); we != nil; we = q.waiters.Front() {
			w := we.Value.(*waiter)
			qs.remove(w)
			w.ch <- result{err: err}
		}
	}
}
