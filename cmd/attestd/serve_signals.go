package main

import (
	"os"
	"os/signal"
	"syscall"
)

// serveSignals catches, for the daemon's whole life, the signals whose
// default action would kill it without a drain or leave its socket file
// behind:
//
//   - SIGHUP (the terminal of a foreground daemon closed) drains and exits
//     like SIGTERM: there is no configuration file to reload. When SIGHUP
//     was ignored at start (nohup), it stays ignored and the daemon keeps
//     serving.
//   - SIGPIPE (the reader of stderr went away, as in "attestd serve 2>&1 |
//     head -1"): caught and dropped, so a log write fails with EPIPE
//     instead of killing the process, and serving goes on.
//
// SIGINT and SIGTERM end ctx (see main). The returned channel delivers
// SIGHUP; call stop when done.
func serveSignals() (hup <-chan os.Signal, hupIgnored bool, stop func()) {
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	hups := make(chan os.Signal, 1)
	hupIgnored = signal.Ignored(syscall.SIGHUP)
	if !hupIgnored {
		signal.Notify(hups, syscall.SIGHUP)
	}
	return hups, hupIgnored, func() { signal.Stop(pipes); signal.Stop(hups) }
}
