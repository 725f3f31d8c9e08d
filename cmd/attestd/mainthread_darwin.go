package main

import (
	"runtime"

	"github.com/attestd/attestd/darwin"
)

// Lock the main goroutine to the process's main thread before main runs,
// so that onMainThread can run the main run loop there (darwin/doc.go,
// "The main run loop").
func init() { runtime.LockOSThread() }

// mainLoopCommands may ask DeviceCheck for tokens: they run with the main
// thread's run loop serviced, in case Apple posts the completion handler
// to the main queue.
var mainLoopCommands = map[string]bool{"serve": true, "bridge": true, "doctor": true, "selftest": true, "probe": true}

// onMainThread runs f, the whole command line args, and returns its exit
// code. For the commands above the main thread runs its run loop
// meanwhile, and f runs on another goroutine.
func onMainThread(args []string, f func() int) int {
	if len(args) > 0 && mainLoopCommands[args[0]] {
		return darwin.RunMainLoop(f)
	}
	return f()
}
