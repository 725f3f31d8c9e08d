package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/attestd/attestd/bridge/hint"
)

// A LaunchAgent's stderr goes to /dev/null unless its plist names a file,
// and a plist cannot name one in the user's home: launchd expands neither
// "~" nor variables. So "serve --log-file PATH" writes the log itself: "~"
// expanded for the user it runs as, size-capped with rotation by
// lumberjack (macOS unified logging, os_log, is a C macro that needs cgo),
// plus a small crash file for what the Go runtime prints when it dies.
// The log carries what stderr carries: token fingerprints, never tokens.

// Log file limits: one file up to logFileMaxMB, logFileBackups rotated
// ones kept beside it (name-TIMESTAMP.log), so at most 20 MB in all. Vars
// so tests can rotate quickly.
var (
	logFileMaxMB   = 5
	logFileBackups = 3
)

// crashFileMax: a crash file larger than this is emptied at start, so a
// crash loop cannot fill the disk.
const crashFileMax = 1 << 20

// expandHome expands a leading "~" or "~/" to the directory home returns.
// Other paths are returned as they are; "~user/" is refused.
func expandHome(p string, home func() (string, error)) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		if strings.HasPrefix(p, "~") {
			return "", fmt.Errorf("%q: only ~/ (this user's home) is expanded", p)
		}
		return p, nil
	}
	dir, err := home()
	if err != nil {
		return "", fmt.Errorf("expand %q: %w", p, err)
	}
	return filepath.Join(dir, strings.TrimPrefix(p, "~")), nil
}

// userHome is the home directory of the user attestd runs as: $HOME,
// else the user database (launchd sets HOME for agents; this is for the
// rare environment that does not).
func userHome() (string, error) {
	home, err := os.UserHomeDir()
	if err == nil && home != "" {
		return home, nil
	}
	u, uerr := user.Current()
	if uerr != nil || u.HomeDir == "" {
		return "", fmt.Errorf("no home directory: %v", errors.Join(err, uerr))
	}
	return u.HomeDir, nil
}

// crashPath is where the runtime's fatal output goes for a log at path:
// x.log gives x.crash.log.
func crashPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".crash" + ext
}

// teeWriter writes to stderr and the log file. A log file that cannot be
// written (a full disk) never stops the daemon or its stderr.
type teeWriter struct {
	stderr io.Writer
	file   io.Writer
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.file.Write(p)
	return t.stderr.Write(p)
}

// attachLogFile makes everything written to s.err go to the log file at
// path as well, until detach is called with the command's result, which
// writes a failure as its last line (launchd would drop it with stderr)
// and restores s.err. An empty path attaches nothing.
func attachLogFile(s *stdio, path string) (detach func(error), err error) {
	if path == "" {
		return func(error) {}, nil
	}
	full, err := expandHome(path, userHome)
	if err != nil {
		return nil, withHint(fmt.Errorf("--log-file: %w", err), "give an absolute path or one starting with ~/")
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	lj := &lumberjack.Logger{Filename: full, MaxSize: logFileMaxMB, MaxBackups: logFileBackups}
	// Open now, so a path that cannot be written is an error at start.
	if _, err := lj.Write(nil); err != nil {
		return nil, withHint(fmt.Errorf("--log-file %s: %w", full, err), "choose a file this user can write, e.g. ~/Library/Logs/LABEL.log")
	}
	crashed := setCrashOutput(crashPath(full))

	orig := s.err
	s.err = teeWriter{stderr: orig, file: lj}
	return func(err error) {
		s.err = orig
		if line := failureLine(err); line != "" {
			lj.Write([]byte(line))
		}
		if crashed {
			debug.SetCrashOutput(nil, debug.CrashOptions{})
		}
		lj.Close()
	}, nil
}

// setCrashOutput sends the runtime's fatal output (a panic, a fatal
// signal) to the crash file too, and reports whether it did.
func setCrashOutput(path string) bool {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if fi, err := os.Stat(path); err == nil && fi.Size() > crashFileMax {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return false
	}
	defer f.Close() // SetCrashOutput keeps its own descriptor
	return debug.SetCrashOutput(f, debug.CrashOptions{}) == nil
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
