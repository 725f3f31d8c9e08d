package main

import (
	"io"
	"log/slog"
	"strings"
)

// newLogger returns a slog logger writing format ("text" or "json") at
// level ("debug", "info", "warn", "error") to w. Every string it logs is
// cut to a short prefix (capHandler), so no request can amplify the log.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, usagef("unknown log level %q; want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(capHandler{slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(capHandler{slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, usagef("unknown log format %q; want text or json", format)
}
