// Package logsetup builds the daemon's logging: a slog logger that caps
// every string it logs, and the log file a LaunchAgent needs (rotated,
// "~/" expanded, with a crash file beside it for what the Go runtime
// prints when it dies).
//
// A LaunchAgent's stderr goes to /dev/null unless its plist names a file,
// and a plist cannot name one in the user's home: launchd expands neither
// "~" nor variables. So "serve --log-file PATH" writes the log itself: "~"
// expanded for the user it runs as, size-capped with rotation by
// lumberjack (macOS unified logging, os_log, is a C macro that needs cgo),
// plus a small crash file. The log carries what stderr carries: token
// fingerprints, never tokens.
package logsetup

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// An OptionError reports a log format or level New does not know.
type OptionError struct {
	// Option is "format" or "level"; Value what was asked for.
	Option, Value string
}

func (e *OptionError) Error() string {
	if e.Option == "level" {
		return fmt.Sprintf("unknown log level %q; want debug, info, warn or error", e.Value)
	}
	return fmt.Sprintf("unknown log format %q; want text or json", e.Value)
}

// New returns a slog logger writing format ("text" or "json") at level
// ("debug", "info", "warn", "error", in any case) to w. Every string it
// logs is cut to a short prefix, so no request can amplify the log. An
// unknown format or level is an *OptionError.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, &OptionError{Option: "level", Value: level}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(capHandler{slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(capHandler{slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, &OptionError{Option: "format", Value: format}
}
