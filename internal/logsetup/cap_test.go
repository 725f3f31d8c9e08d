package logsetup

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

type stringer string

func (s stringer) String() string { return string(s) }

func TestLogStringsAreCapped(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("m", 512<<10)
	for _, format := range []string{"text", "json"} {
		for _, tc := range []struct {
			name string
			log  func(l *slog.Logger)
		}{
			{"string value", func(l *slog.Logger) { l.Info("request failed", "method", huge) }},
			{"error", func(l *slog.Logger) { l.Info("request failed", "err", errors.New("method not found: "+huge)) }},
			{"stringer", func(l *slog.Logger) { l.Info("request failed", "id", stringer(huge)) }},
			{"bytes", func(l *slog.Logger) { l.Info("request failed", "line", []byte(huge)) }},
			{"group", func(l *slog.Logger) { l.Info("request failed", slog.Group("req", "method", huge)) }},
			{"message", func(l *slog.Logger) { l.Info(huge) }},
			{"with attrs", func(l *slog.Logger) { l.With("method", huge).Info("request failed") }},
			{"twice", func(l *slog.Logger) { l.Info("request failed", "method", huge, "err", errors.New(huge)) }},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				l, err := New(&buf, format, "debug")
				if err != nil {
					t.Fatal(err)
				}
				tc.log(l)
				out := buf.String()
				if len(out) > 2*maxLogString+300 || !strings.Contains(out, "more bytes") || !strings.Contains(out, strings.Repeat("m", maxLogString/2)) {
					t.Fatalf("%d bytes logged for a %d-byte string, want a short prefix:\n%.600s", len(out), len(huge), out)
				}
			})
		}
	}
}

func TestLogCapKeepsShortValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, _ := New(&buf, "json", "info")
	l.Info("token served", "id", "7", "n", 42, "ok", true, "fingerprint", "d314056a0eac")
	want := `"msg":"token served","id":"7","n":42,"ok":true,"fingerprint":"d314056a0eac"}`
	if !strings.HasSuffix(strings.TrimSpace(buf.String()), want) {
		t.Fatalf("got %s, want it to end %s", buf.String(), want)
	}
}

func TestCapStringCutsAtARune(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("a", maxLogString-1) + "é" + strings.Repeat("b", 100)
	got := capString(s)
	if !utf8.ValidString(got) || !strings.HasPrefix(got, strings.Repeat("a", maxLogString-1)+"…") {
		t.Fatalf("capString cut inside a rune or in the wrong place: %q", got[maxLogString-4:])
	}
	if capString("short") != "short" {
		t.Fatal("a short string was changed")
	}
}

func TestNewRefusesUnknownOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ format, level, want string }{
		{"text", "loud", `unknown log level "loud"; want debug, info, warn or error`},
		{"xml", "info", `unknown log format "xml"; want text or json`},
	} {
		l, err := New(&bytes.Buffer{}, tc.format, tc.level)
		var opt *OptionError
		if l != nil || !errors.As(err, &opt) || err.Error() != tc.want {
			t.Errorf("New(%q, %q) = %v, %v; want the *OptionError %q", tc.format, tc.level, l, err, tc.want)
		}
	}
	if _, err := New(&bytes.Buffer{}, "json", "WARN"); err != nil {
		t.Errorf("New with an upper-case level: %v", err)
	}
}
