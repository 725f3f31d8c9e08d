package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/attestd/attestd/bridge/hint"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand. Each lives in its own file and registers
// itself in init, so main.go never needs editing to add one.
type command struct {
	name    string
	summary string // one line for "attestd help"
	usage   string // the synopsis after "attestd "
	// run executes the command. args excludes the command name. An error
	// is printed as "attestd: error: …" (plus its hint.Of, if any) and
	// exits 1; use exitCode to exit otherwise without a message.
	run func(ctx context.Context, s *streams, args []string) error
}

// streams is what a command sees of its process: the standard streams,
// the environment and the executable. Commands get it as an argument, so
// tests run them in-process and in parallel.
type streams struct {
	in       io.Reader
	out, err io.Writer
	getenv   func(string) string
	// executable is os.Executable when nil; tests point it into a fake
	// bundle.
	executable func() (string, error)
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("attestd: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// withHint attaches a hint, formatted as by fmt.Sprintf, to err (see
// hint.Wrap); it returns nil for a nil err.
func withHint(err error, format string, args ...any) error {
	return hint.Wrap(err, fmt.Sprintf(format, args...))
}

// exitCode makes the process exit with a code and no further message.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// usageError reports bad flags or arguments; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns a flag set for c whose -h output shows the synopsis,
// the summary and the flags.
func newFlagSet(s *streams, c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: attestd %s\n\n%s\n", c.usage, c.summary)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(fs.Output(), "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors (the flag
// package has already printed them with the usage text).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitCode(2)
	}
	return nil
}

// parseFlagsNoArgs is parseFlags for commands that take no positional
// arguments: a leftover argument is a usage error naming it.
func parseFlagsNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
