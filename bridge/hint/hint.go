// Package hint carries advice for people alongside errors: an error that
// knows what the user should do about it has a Hint method, and Of finds
// that advice anywhere in an error's chain. Commands print it as
// "attestd: hint: …", reports show it, and the daemon sends it as
// data.hint. The package imports nothing else of attestd, so every layer
// can use it.
package hint

// Hinter is implemented by errors that say what to do about them. Hint
// returns one sentence of advice, or "" when the error has none.
type Hinter interface {
	Hint() string
}

// Of returns the first non-empty hint in err's tree, visiting errors in
// the order errors.As does (err itself, then what it wraps, depth first);
// "" when none has one.
func Of(err error) string {
	if err == nil {
		return ""
	}
	if h, ok := err.(Hinter); ok {
		if s := h.Hint(); s != "" {
			return s
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return Of(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if s := Of(e); s != "" {
				return s
			}
		}
	}
	return ""
}

// Wrap returns err with text as its hint, which Of finds before any
// hint err carries; it returns nil for a nil err. The error's text is
// err's.
func Wrap(err error, text string) error {
	if err == nil {
		return nil
	}
	return &wrapped{err: err, hint: text}
}

// wrapped is an error with a hint of its own.
type wrapped struct {
	err  error
	hint string
}

func (e *wrapped) Error() string { return e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }
func (e *wrapped) Hint() string  { return e.hint }

var _ Hinter = (*wrapped)(nil)
