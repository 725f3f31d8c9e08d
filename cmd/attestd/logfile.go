package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/internal/logsetup"
)

// attachLogFile makes everything written to s.err go to the log file at
// path (--log-file; a leading ~/ is this user's home) as well, until
// detach is called with the command's result, which writes a failure as
// the file's last line (launchd would drop it with stderr) and restores
// s.err. An empty path attaches nothing.
func attachLogFile(s *streams, path string) (detach func(error), err error) {
	if path == "" {
		return func(error) {}, nil
	}
	full, err := logsetup.ExpandHome(path, logsetup.UserHome)
	if err != nil {
		return nil, withHint(fmt.Errorf("--log-file: %w", err), "give an absolute path or one starting with ~/")
	}
	f, err := logsetup.OpenFile(full, logsetup.Options{})
	var open *logsetup.OpenError
	switch {
	case errors.As(err, &open):
		return nil, withHint(fmt.Errorf("--log-file %s: %w", open.Path, open.Err), "choose a file this user can write, e.g. ~/Library/Logs/LABEL.log")
	case err != nil:
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	orig := s.err
	s.err = f.Tee(orig)
	return func(err error) {
		s.err = orig
		f.Close(failureLine(err))
	}, nil
}

// failureLine is what runCommand prints for err, for the log file; ""
// when err is not a failure.
func failureLine(err error) string {
	var code exitCode
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &code) {
		return ""
	}
	line := fmt.Sprintf("attestd: error: %v\n", err)
	if h := hint.Of(err); h != "" {
		line += fmt.Sprintf("attestd: hint: %s\n", h)
	}
	return line
}
