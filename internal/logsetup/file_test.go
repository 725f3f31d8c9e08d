package logsetup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExpandHome(t *testing.T) {
	t.Parallel()
	home := func() (string, error) { return "/Users/me", nil }
	for _, tc := range []struct{ in, want, err string }{
		{in: "~/Library/Logs/a.log", want: "/Users/me/Library/Logs/a.log"},
		{in: "~", want: "/Users/me"},
		{in: "/var/log/a.log", want: "/var/log/a.log"},
		{in: "rel/a.log", want: "rel/a.log"},
		{in: "~other/a.log", err: "only ~/"},
	} {
		got, err := ExpandHome(tc.in, home)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandHome(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandHome(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := ExpandHome("~/x", func() (string, error) { return "", errors.New("no HOME") }); err == nil {
		t.Error("ExpandHome without a home directory succeeded")
	}
	if got := CrashPath("/L/com.example.attestd.log"); got != "/L/com.example.attestd.crash.log" {
		t.Errorf("CrashPath = %q", got)
	}
}

// logFiles lists the log file and its rotated copies in dir.
func logFiles(t *testing.T, dir, stem string) []os.FileInfo {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []os.FileInfo
	for _, e := range ents {
		if e.Name() == stem+".log" || (strings.HasPrefix(e.Name(), stem+"-") && strings.HasSuffix(e.Name(), ".log")) {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fi)
		}
	}
	return out
}

// TestLogFileRotationCap writes five times the size cap through the tee
// and checks that no file exceeds the cap and that at most the configured
// number of rotated files stays beside the log.
func TestLogFileRotationCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "Logs", "cap.log") // the directory is created
	var stderr bytes.Buffer
	f, err := OpenFile(path, Options{MaxMB: 1, Backups: 2})
	if err != nil {
		t.Fatal(err)
	}
	w := f.Tee(&stderr)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range 5 << 10 { // 5 MiB in 1 KiB lines
		w.Write(line)
	}
	if err := f.Close(""); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 5<<20 {
		t.Errorf("stderr got %d bytes, want every one of %d", stderr.Len(), 5<<20)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
	// lumberjack removes old copies in its own goroutine after a rotation:
	// wait for that, boundedly.
	deadline := time.Now().Add(20 * time.Second)
	for {
		files := logFiles(t, filepath.Dir(path), "cap")
		for _, f := range files {
			if f.Size() > 1<<20 {
				t.Fatalf("%s is %d bytes, over the 1 MiB cap", f.Name(), f.Size())
			}
		}
		if len(files) <= 1+2 {
			if len(files) < 2 {
				t.Fatalf("%d files: the log never rotated", len(files))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log files still there, want at most 3 (the log and 2 rotated)", len(files))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLogFileLastLines: Close writes the failure it is given after
// everything else, and nothing when it is given none; the crash file
// is made beside the log.
func TestLogFileLastLines(t *testing.T) {
	t.Parallel()
	for _, last := range []string{"attestd: error: boom\nattestd: hint: do this\n", ""} {
		path := filepath.Join(t.TempDir(), "a.log")
		f, err := OpenFile(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		f.Tee(&stderr).Write([]byte("serving\n"))
		if err := f.Close(last); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "serving\n"+last || stderr.String() != "serving\n" {
			t.Errorf("Close(%q): the file holds %q, stderr %q", last, data, stderr.String())
		}
		if _, err := os.Stat(CrashPath(path)); err != nil {
			t.Errorf("no crash file: %v", err)
		}
	}
}

func TestOpenFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The directory cannot be made: MkdirAll's error, not an *OpenError.
	var open *OpenError
	if _, err := OpenFile(filepath.Join(notDir, "x.log"), Options{}); err == nil || errors.As(err, &open) {
		t.Errorf("OpenFile under a file = %v, want MkdirAll's error", err)
	}
	// The file cannot be opened (a link to where nothing can be made,
	// which root cannot write either): an *OpenError naming the path.
	link := filepath.Join(dir, "dangling.log")
	if err := os.Symlink(filepath.Join(dir, "missing", "x.log"), link); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFile(link, Options{})
	if !errors.As(err, &open) || open.Path != link || !strings.HasPrefix(err.Error(), link+": ") {
		t.Errorf("OpenFile(dangling link) = %v, want an *OpenError for %s", err, link)
	}
}
