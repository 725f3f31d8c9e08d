//go:build !darwin

package main

// onMainThread runs f and returns its exit code; only macOS has a main
// run loop to service meanwhile (mainthread_darwin.go).
func onMainThread(_ []string, f func() int) int { return f() }
