package main

import (
	"errors"
	"io"
	"log/slog"

	"github.com/attestd/attestd/internal/logsetup"
)

// newLogger returns the logger of logsetup.New; an unknown format or
// level is a usage error.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	l, err := logsetup.New(w, format, level)
	var opt *logsetup.OptionError
	if errors.As(err, &opt) {
		return nil, usagef("%v", err)
	}
	return l, err
}
