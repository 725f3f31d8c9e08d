package darwin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebitengine/purego"
)

// What the main-queue callback is asked to do (its context argument).
const (
	cbStopRunLoop = 1
	cbPing        = 2
)

var mainLoop struct {
	once     sync.Once
	err      error
	callback uintptr // a dispatch_function_t, made once

	running atomic.Bool
	why     atomic.Pointer[string] // why the loop is not running

	pingMu sync.Mutex
	pings  chan bool // the ping callback sends whether it ran on the main thread
}

func loadMainLoop() error {
	mainLoop.once.Do(func() {
		if err := loadSystem(); err != nil {
			mainLoop.err = err
			return
		}
		if err := loadCoreFoundation(); err != nil {
			mainLoop.err = err
			return
		}
		mainLoop.pings = make(chan bool, 1)
		// typedef void (*dispatch_function_t)(void *_Nullable);
		// One callback for the life of the process (purego never frees
		// callbacks).
		mainLoop.callback = purego.NewCallback(func(what uintptr) {
			switch what {
			case cbStopRunLoop:
				// void CFRunLoopStop(CFRunLoopRef rl);
				// CFRunLoopRef CFRunLoopGetMain(void);
				cfRunLoopStop(cfRunLoopGetMain())
			case cbPing:
				select {
				// int pthread_main_np(void);
				case mainLoop.pings <- pthreadMainNP() == 1:
				default:
				}
			}
		})
	})
	return mainLoop.err
}

func setWhy(s string) { mainLoop.why.Store(&s) }

func mainLoopRunning() (bool, string) {
	if mainLoop.running.Load() {
		return true, ""
	}
	if p := mainLoop.why.Load(); p != nil {
		return false, *p
	}
	return false, "RunMainLoop was not called (only serve, bridge, doctor, selftest and probe run the main run loop)"
}

// quickReturns is how many times in a row CFRunLoopRun may come back at
// once, unasked, before RunMainLoop stops calling it.
const quickReturns = 3

func runMainLoop(f func() int) int {
	if err := loadMainLoop(); err != nil {
		setWhy("cannot load the run loop functions: " + err.Error())
		return f()
	}
	// int pthread_main_np(void);
	if pthreadMainNP() != 1 {
		setWhy("RunMainLoop was called on a thread other than the main thread (lock the main goroutine to it in init)")
		return f()
	}
	done := make(chan int, 1)
	go func() {
		code := f()
		done <- code
		// The stop runs on the main queue, that is inside the running
		// loop, so it cannot come before CFRunLoopRun has started.
		// void dispatch_async_f(dispatch_queue_t queue, void *context,
		//     dispatch_function_t work);
		dispatchAsyncF(dispatchMainQ, cbStopRunLoop, mainLoop.callback)
	}()
	mainLoop.running.Store(true)
	defer mainLoop.running.Store(false)
	quick := 0
	for {
		start := time.Now()
		// void CFRunLoopRun(void);
		cfRunLoopRun()
		select {
		case code := <-done:
			return code
		default:
		}
		// Back without being stopped: the loop had nothing to wait for.
		// The main run loop always has the main queue's port in its
		// common modes, so this should not happen; never spin on it.
		if time.Since(start) < 10*time.Millisecond {
			quick++
		} else {
			quick = 0
		}
		if quick >= quickReturns {
			mainLoop.running.Store(false)
			setWhy("CFRunLoopRun returned at once, without being stopped, three times in a row")
			return <-done
		}
	}
}

func pingMainQueue(ctx context.Context) error {
	if err := loadMainLoop(); err != nil {
		return err
	}
	mainLoop.pingMu.Lock()
	defer mainLoop.pingMu.Unlock()
	select { // a late answer to an earlier ping
	case <-mainLoop.pings:
	default:
	}
	dispatchAsyncF(dispatchMainQ, cbPing, mainLoop.callback)
	select {
	case onMain := <-mainLoop.pings:
		if !onMain {
			return errors.New("a function posted to the main dispatch queue ran on a thread other than the main thread")
		}
		return nil
	case <-ctx.Done():
		running, why := mainLoopRunning()
		if running {
			return fmt.Errorf("%w, though the main run loop is running: %w", ErrMainQueueNotServiced, ctx.Err())
		}
		return fmt.Errorf("%w (%s): %w", ErrMainQueueNotServiced, why, ctx.Err())
	}
}
