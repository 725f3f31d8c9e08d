// Command attestd gets Apple DeviceCheck tokens and serves them as "v1."
// attestation header values to codex app-server and desktop apps.
//
// Run "attestd help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/internal/envflag"
	"github.com/attestd/attestd/internal/providers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := onMainThread(os.Args[1:], func() int {
		return runMain(ctx, &streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	})
	stop()
	os.Exit(code)
}

// runMain dispatches args to a command and returns the exit code.
func runMain(ctx context.Context, s *streams, args []string) int {
	if len(args) == 0 {
		printHelp(s.err)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return runCommand(ctx, s, c, []string{"-h"})
			}
		}
		printHelp(s.out)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintf(s.out, "attestd %s\n", version)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(s.err, "attestd: error: unknown command %q\n", name)
		fmt.Fprintf(s.err, "attestd: hint: run \"attestd help\" for the list of commands\n")
		return 2
	}
	return runCommand(ctx, s, c, args[1:])
}

func runCommand(ctx context.Context, s *streams, c *command, args []string) int {
	err := c.run(ctx, s, args)
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	if isUsage(err) {
		fmt.Fprintf(s.err, "attestd: error: %v\n", err)
		fmt.Fprintf(s.err, "attestd: hint: run \"attestd %s -h\" for usage\n", c.name)
		return 2
	}
	fmt.Fprintf(s.err, "attestd: error: %v\n", err)
	if h := hint.Of(err); h != "" {
		fmt.Fprintf(s.err, "attestd: hint: %s\n", h)
	}
	return 1
}

// isUsage reports whether err says the command line is wrong, however the
// code that found out says so: it exits 2 with a pointer to -h.
func isUsage(err error) bool {
	var usage *usageError
	var env *envflag.Error
	var prov *providers.UsageError
	return errors.As(err, &usage) || errors.As(err, &env) || errors.As(err, &prov)
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "attestd gets Apple DeviceCheck tokens and serves them as attestation header values.\n\n")
	fmt.Fprintf(w, "usage: attestd COMMAND [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	width := len("version")
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, firstLine(commands[n].summary))
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "version", "Print the version.")
	fmt.Fprintf(w, "\nRun \"attestd help COMMAND\" or \"attestd COMMAND -h\" for a command's flags.\n")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
