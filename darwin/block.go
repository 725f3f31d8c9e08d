package darwin

import "sync/atomic"

// blockRelease decides who releases a completion block: the code that
// passed it to Apple (once the call has returned) or the block itself
// (once Apple has called it). Exactly one of the two gets true, and never
// before Apple has called the block:
//
//   - Apple calls the block after the call returned (the usual case): the
//     block releases itself at the end of its body. Apple holds its own
//     copy while it calls, so the memory stays valid until Apple lets go.
//   - Apple calls the block before the call returned (synchronously, and
//     perhaps without copying it): releasing inside the body could free the
//     block under Apple's feet, so the caller releases it after the call.
//   - Apple never calls the block: nobody releases it.
type blockRelease struct {
	state atomic.Int32 // one of the consts below
}

const (
	blockInCall       = iota // the Apple call has not returned; the block has not run
	blockCallReturned        // the Apple call returned before the block ran
	blockCalledInCall        // the block ran before the Apple call returned
	blockDone                // the one release has been claimed
)

// called is run by the block after it has done its work. It reports whether
// the block must release itself now.
func (r *blockRelease) called() bool {
	if r.state.CompareAndSwap(blockInCall, blockCalledInCall) {
		return false // the caller releases it once the call returns
	}
	return r.state.CompareAndSwap(blockCallReturned, blockDone)
}

// returned is run by the caller once the Apple call has returned. It
// reports whether the caller must release the block now.
func (r *blockRelease) returned() bool {
	if r.state.CompareAndSwap(blockInCall, blockCallReturned) {
		return false // the block releases itself when Apple calls it
	}
	return r.state.CompareAndSwap(blockCalledInCall, blockDone)
}
