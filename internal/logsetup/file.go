package logsetup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"
)

// The log file's default limits: one file up to DefaultMaxMB, and
// DefaultBackups rotated ones kept beside it (name-TIMESTAMP.log), so at
// most 20 MB in all.
const (
	DefaultMaxMB   = 5
	DefaultBackups = 3
)

// crashFileMax: a crash file larger than this is emptied at start, so a
// crash loop cannot fill the disk.
const crashFileMax = 1 << 20

// Options sets the log file's limits; a zero field takes its default.
type Options struct {
	// MaxMB is the size at which the file is rotated, in megabytes.
	MaxMB int
	// Backups is how many rotated files are kept.
	Backups int
}

// ExpandHome expands a leading "~" or "~/" to the directory home returns.
// Other paths are returned as they are; "~user/" is refused.
func ExpandHome(p string, home func() (string, error)) (string, error) {
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

// UserHome returns the home directory of the user attestd runs as: $HOME,
// else the user database (launchd sets HOME for agents; this is for the
// rare environment that does not).
func UserHome() (string, error) {
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

// CrashPath returns where the runtime's fatal output goes for a log at
// path: x.log gives x.crash.log.
func CrashPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".crash" + ext
}

// An OpenError reports a log file that cannot be opened for writing.
type OpenError struct {
	Path string
	Err  error
}

func (e *OpenError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// File is an open log file: size-capped with rotation, with the
// runtime's fatal output going to its crash file (CrashPath) until Close.
type File struct {
	lj      *lumberjack.Logger
	crashed bool
}

// OpenFile opens the log file at path (already expanded, see
// ExpandHome), creating its directory, and sends the runtime's fatal
// output (a panic, a fatal signal) to the crash file beside it too. The
// crash output is process-wide: open one File per process. A directory
// that cannot be made is os.MkdirAll's error; a file that cannot be
// written, an *OpenError.
func OpenFile(path string, opts Options) (*File, error) {
	if opts.MaxMB <= 0 {
		opts.MaxMB = DefaultMaxMB
	}
	if opts.Backups <= 0 {
		opts.Backups = DefaultBackups
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	lj := &lumberjack.Logger{Filename: path, MaxSize: opts.MaxMB, MaxBackups: opts.Backups}
	// Open now, so a path that cannot be written is an error at start.
	if _, err := lj.Write(nil); err != nil {
		return nil, &OpenError{Path: path, Err: err}
	}
	return &File{lj: lj, crashed: setCrashOutput(CrashPath(path))}, nil
}

// Write writes p to the log file, rotating it when it is full.
func (f *File) Write(p []byte) (int, error) { return f.lj.Write(p) }

// Tee returns a writer that writes to w and to the file. A file that
// cannot be written (a full disk) never stops the writes to w, nor fails
// them.
func (f *File) Tee(w io.Writer) io.Writer { return teeWriter{stderr: w, file: f} }

// Close writes last (the command's failure, already formatted, or "" for
// none) as the file's last lines, where launchd would have dropped it
// with stderr, stops sending the runtime's fatal output to the crash
// file, and closes the file.
func (f *File) Close(last string) error {
	if last != "" {
		f.lj.Write([]byte(last))
	}
	if f.crashed {
		debug.SetCrashOutput(nil, debug.CrashOptions{})
	}
	return f.lj.Close()
}

// teeWriter writes to stderr and the log file, ignoring the file's
// errors.
type teeWriter struct {
	stderr io.Writer
	file   io.Writer
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.file.Write(p)
	return t.stderr.Write(p)
}

// setCrashOutput sends the runtime's fatal output to the file at path
// too, and reports whether it did.
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
