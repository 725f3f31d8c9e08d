package darwin

import (
	"context"
	"errors"
)

// RunMainLoop runs f and returns its result. On macOS, called from the
// process's main thread (the main goroutine, locked to that thread by
// runtime.LockOSThread in an init function), it runs f on a new goroutine
// and meanwhile runs the main thread's run loop (CFRunLoopRun), which also
// drains the main dispatch queue, until f returns. So whatever Apple posts
// to the main queue or the main run loop, such as a completion handler,
// runs even though Go never would run it there by itself. Elsewhere, or
// when the run loop cannot be run, it calls f directly;
// MainLoopRunning then says why.
func RunMainLoop(f func() int) int { return runMainLoop(f) }

// MainLoopRunning reports whether RunMainLoop is running the main
// thread's run loop now, and when it is not, why.
func MainLoopRunning() (bool, string) { return mainLoopRunning() }

// ErrMainQueueNotServiced is returned by PingMainQueue when nothing ran
// the main dispatch queue before the deadline.
var ErrMainQueueNotServiced = errors.New("the main dispatch queue is not serviced: a block Apple posts there never runs")

// PingMainQueue posts a function to the main dispatch queue
// (dispatch_async_f) and waits, until ctx ends, for it to run. It returns
// nil once the function has run on the main thread, an error wrapping
// ErrMainQueueNotServiced when ctx ended first, and ErrUnsupported off
// macOS.
func PingMainQueue(ctx context.Context) error { return pingMainQueue(ctx) }
