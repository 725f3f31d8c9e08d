package logsetup

import (
	"context"
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// maxLogString is the most of any one string a log line carries. Clients
// choose some of what is logged (a method name, an id, text quoted in an
// error), so without a cap one request could add its whole length to the
// log, or twice that; with it, a line stays short whatever the request.
const maxLogString = 200

// capHandler is a slog.Handler that cuts every string it passes on (the
// message, string values, errors and Stringers, inside groups too) to its
// first maxLogString bytes, noting how many bytes it left out. The text
// and JSON handlers then quote the result as they quote any string.
type capHandler struct{ h slog.Handler }

func (c capHandler) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }

func (c capHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, capString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(capAttr(a))
		return true
	})
	return c.h.Handle(ctx, out)
}

func (c capHandler) WithAttrs(as []slog.Attr) slog.Handler {
	capped := make([]slog.Attr, len(as))
	for i, a := range as {
		capped[i] = capAttr(a)
	}
	return capHandler{c.h.WithAttrs(capped)}
}

func (c capHandler) WithGroup(name string) slog.Handler {
	return capHandler{c.h.WithGroup(capString(name))}
}

func capAttr(a slog.Attr) slog.Attr {
	a.Key = capString(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(capString(v.String()))
	case slog.KindGroup:
		g := v.Group()
		capped := make([]slog.Attr, len(g))
		for i, x := range g {
			capped[i] = capAttr(x)
		}
		a.Value = slog.GroupValue(capped...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(capString(x.Error()))
		case fmt.Stringer:
			a.Value = slog.StringValue(capString(x.String()))
		case []byte:
			a.Value = slog.StringValue(capString(string(x)))
		default:
			a.Value = v
		}
	default:
		a.Value = v
	}
	return a
}

// capString returns s, or its first maxLogString bytes (cut at a rune
// boundary) and a note of how much is missing.
func capString(s string) string {
	if len(s) <= maxLogString {
		return s
	}
	n := maxLogString
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s…[%d more bytes]", s[:n], len(s)-n)
}
