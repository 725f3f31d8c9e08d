package main

import (
	"flag"
	"log/slog"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
)

// poolFlags are the flags that tune a token pool and the wait for its
// tokens, shared by serve and bridge (with --provider).
type poolFlags struct {
	prefetch                     *int
	maxAge, warmWindow, deadline *time.Duration
}

// poolFlagUsage is one command's help text for each pool flag.
type poolFlagUsage struct {
	prefetch, maxAge, warmWindow, deadline string
}

// addPoolFlags defines --prefetch, --max-age, --warm-window and
// --deadline on fs, with the pool's defaults, the given deadline and the
// command's help texts.
func addPoolFlags(fs *flag.FlagSet, deadline time.Duration, usage poolFlagUsage) poolFlags {
	return poolFlags{
		prefetch:   fs.Int("prefetch", pool.DefaultSize, usage.prefetch),
		maxAge:     fs.Duration("max-age", pool.DefaultMaxAge, usage.maxAge),
		warmWindow: fs.Duration("warm-window", pool.DefaultWarmWindow, usage.warmWindow),
		deadline:   fs.Duration("deadline", deadline, usage.deadline),
	}
}

// valid reports whether the values can run a pool: --prefetch at least 1
// and every duration positive. Each command says so in its own words.
func (f poolFlags) valid() bool {
	return *f.prefetch >= 1 && *f.maxAge > 0 && *f.warmWindow > 0 && *f.deadline > 0
}

// poolConfig returns the pool the flags describe, making tokens with prov
// and logging to logger.
func (f poolFlags) poolConfig(prov provider.Provider, logger *slog.Logger) pool.Config {
	return pool.Config{Provider: prov, Size: *f.prefetch, MaxAge: *f.maxAge, WarmWindow: *f.warmWindow, Logger: logger}
}

// logFlags are --log-format and --log-level, shared by serve and bridge.
type logFlags struct {
	format, level *string
}

// addLogFlags defines --log-format (text) and --log-level, defaulting to
// level, on fs.
func addLogFlags(fs *flag.FlagSet, level string) logFlags {
	return logFlags{
		format: fs.String("log-format", "text", "log format: text or json"),
		level:  fs.String("log-level", level, "log level: debug, info, warn or error"),
	}
}

// logger returns the logger the flags ask for, writing to s's stderr.
func (f logFlags) logger(s *streams) (*slog.Logger, error) {
	return newLogger(s.err, *f.format, *f.level)
}

// flagGiven reports whether the flag called name was given on the
// command line (not merely left at its default).
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
