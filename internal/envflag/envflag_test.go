package envflag

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The rule every command's secrets (and "attestd gate"'s every flag)
// follow: the command line, else ATTESTD_<FLAG>, else the file
// ATTESTD_<FLAG>_FILE names; never both variables; errors name the
// variable.
func TestEnvFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := file("secret", "s3cret from a file\n")
	crlfFile := file("crlf", "windows\r\n")
	twoLines := file("two", "kept\n\n")
	durationFile := file("duration", "90s\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		replay  string        // --replay-redis after fill
		maxAge  time.Duration // --max-age after fill
		dev     bool          // --allow-dev after fill
		wantErr string        // in the usage error
	}{
		{name: "nothing set", maxAge: time.Minute},
		{name: "from the variable", env: map[string]string{"ATTESTD_REPLAY_REDIS": "redis://:pw@r:6379/0"}, replay: "redis://:pw@r:6379/0", maxAge: time.Minute},
		{name: "from a file", env: map[string]string{"ATTESTD_REPLAY_REDIS_FILE": secretFile}, replay: "s3cret from a file", maxAge: time.Minute},
		{name: "CRLF dropped", env: map[string]string{"ATTESTD_REPLAY_REDIS_FILE": crlfFile}, replay: "windows", maxAge: time.Minute},
		{name: "one newline dropped", env: map[string]string{"ATTESTD_REPLAY_REDIS_FILE": twoLines}, replay: "kept\n", maxAge: time.Minute},
		{name: "command line wins", args: []string{"--replay-redis", "redis://cli"}, env: map[string]string{"ATTESTD_REPLAY_REDIS": "redis://env"}, replay: "redis://cli", maxAge: time.Minute},
		{name: "command line wins over a file", args: []string{"--replay-redis", "redis://cli"}, env: map[string]string{"ATTESTD_REPLAY_REDIS_FILE": "/nonexistent"}, replay: "redis://cli", maxAge: time.Minute},
		{name: "empty counts as unset", env: map[string]string{"ATTESTD_REPLAY_REDIS": ""}, maxAge: time.Minute},
		{name: "typed values", env: map[string]string{"ATTESTD_MAX_AGE_FILE": durationFile, "ATTESTD_ALLOW_DEV": "true"}, maxAge: 90 * time.Second, dev: true},
		{name: "both set", env: map[string]string{"ATTESTD_REPLAY_REDIS": "a", "ATTESTD_REPLAY_REDIS_FILE": secretFile}, wantErr: "ATTESTD_REPLAY_REDIS and ATTESTD_REPLAY_REDIS_FILE are both set"},
		{name: "file missing", env: map[string]string{"ATTESTD_REPLAY_REDIS_FILE": filepath.Join(dir, "missing")}, wantErr: "ATTESTD_REPLAY_REDIS_FILE: open "},
		{name: "bad value", env: map[string]string{"ATTESTD_MAX_AGE": "soon"}, wantErr: "ATTESTD_MAX_AGE: "},
		{name: "bad value from a file", env: map[string]string{"ATTESTD_ALLOW_DEV_FILE": secretFile}, wantErr: "ATTESTD_ALLOW_DEV_FILE: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			replay := fs.String("replay-redis", "", "a URL")
			maxAge := fs.Duration("max-age", time.Minute, "an age")
			dev := fs.Bool("allow-dev", false, "a switch")
			env := Bind(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := env.Fill(func(k string) string { return tt.env[k] })
			var ee *Error
			switch {
			case tt.wantErr != "":
				if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fill = %v, want an *Error with %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the file's content", err)
				}
			case err != nil:
				t.Fatalf("Fill = %v", err)
			case *replay != tt.replay || *maxAge != tt.maxAge || *dev != tt.dev:
				t.Errorf("flags %q %v %v, want %q %v %v", *replay, *maxAge, *dev, tt.replay, tt.maxAge, tt.dev)
			}
		})
	}
}

// Only the flags named read the environment, and -h says which do.
func TestEnvFlagsNamedOnly(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	key := fs.String("key", "", "the key's file")
	team := fs.String("team-id", "", "the team")
	env := Bind(fs, "key")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"ATTESTD_KEY": "/run/secrets/key.p8", "ATTESTD_TEAM_ID": "TEAMID1234"}
	if err := env.Fill(func(k string) string { return vars[k] }); err != nil {
		t.Fatal(err)
	}
	if *key != "/run/secrets/key.p8" || *team != "" {
		t.Errorf("key %q, team %q: only --key reads the environment", *key, *team)
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "$ATTESTD_KEY, or $ATTESTD_KEY_FILE") || strings.Contains(help.String(), "ATTESTD_TEAM_ID") {
		t.Errorf("help does not say which flags read the environment:\n%s", help.String())
	}
}
