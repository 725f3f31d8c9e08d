package appattest

// DefaultWindowSize is how far below the highest counter seen a counter
// is still accepted (once), and MaxWindowSize the most a Window can
// hold.
const (
	DefaultWindowSize = 64
	MaxWindowSize     = 64
)

// Window is the anti-replay state of one key's counter: a sliding
// bitmap, as IPsec's anti-replay window (RFC 4303 section 3.4.3, RFC
// 6479). It accepts each counter once, in any order, as long as it is
// no more than size-1 below the highest counter accepted; a counter
// accepted before, or below the window, is a replay.
//
// The whole state is two integers, so a shared store can keep it in one
// record and run Accept as one script:
//
//	Highest  the highest counter accepted (meaningless while Seen is 0)
//	Seen     bit i set: counter Highest-i was accepted; 0: none yet
//
// Accept(c, size), size in 1..64:
//
//	if Seen == 0:            Highest, Seen = c, 1                 (first)
//	else if c > Highest:     d = c-Highest
//	                         Seen = d < 64 ? (Seen << d) | 1 : 1  (slide)
//	                         Highest = c
//	else: d = Highest-c
//	      if d >= size:      refuse: below the window
//	      if Seen & 1<<d:    refuse: seen before
//	      Seen |= 1<<d
//	then keep only the low size bits of Seen.
//
// The zero Window has accepted nothing (so it accepts counter 0 once,
// which no device ever signs after its attestation). A Window is a
// plain value: guard it with the caller's lock.
type Window struct {
	Highest uint32
	Seen    uint64
}

// Accept records counter and returns nil, or returns an *Error with
// ErrReplay and leaves w unchanged. size is the window's width: 0 (or
// less) means DefaultWindowSize, more than MaxWindowSize means
// MaxWindowSize.
func (w *Window) Accept(counter uint32, size int) error {
	if size <= 0 {
		size = DefaultWindowSize
	}
	size = min(size, MaxWindowSize)
	mask := ^uint64(0) >> (64 - size)
	switch {
	case w.Seen == 0:
		w.Highest, w.Seen = counter, 1
		return nil
	case counter > w.Highest:
		if d := counter - w.Highest; d < 64 {
			w.Seen = (w.Seen<<d | 1) & mask
		} else {
			w.Seen = 1
		}
		w.Highest = counter
		return nil
	}
	d := w.Highest - counter
	if d >= uint32(size) {
		return refuse(ErrReplay, nil, "counter %d is below the window (highest %d, window %d)", counter, w.Highest, size)
	}
	bit := uint64(1) << d
	if w.Seen&bit != 0 {
		return refuse(ErrReplay, nil, "counter %d already used", counter)
	}
	w.Seen = (w.Seen | bit) & mask
	return nil
}
