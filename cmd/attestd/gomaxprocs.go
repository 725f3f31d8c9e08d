package main

import "runtime"

// setGOMAXPROCS runs the daemon on one P unless $GOMAXPROCS says
// otherwise. A request costs the daemon microseconds, so one core answers
// far more than one user's clients send; with more Ps, each token taken
// on the reader's thread wakes a second thread for the pool's refill, and
// those cross-thread wake-ups lengthen the round trip a client sees
// (BENCHMARKS.md, "Socket round trip", has the measurement).
func setGOMAXPROCS(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
