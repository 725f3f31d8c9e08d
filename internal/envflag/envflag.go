// Package envflag lets flags take their values from the environment, so
// that secrets never need the command line, where every user of the
// machine sees them (ps, /proc/PID/cmdline) and shell history keeps them.
//
// The rule, the same for every command and flag that uses it: after the
// command line is parsed, each flag it did not give is set from
// ATTESTD_<FLAG> (the flag's name in upper case, "-" as "_"), or from the
// file that ATTESTD_<FLAG>_FILE names (its content, one trailing newline
// dropped), as container platforms hand out secrets. Setting both is an
// error; a flag given on the command line wins over either. An empty
// variable counts as unset. Errors name the variable.
package envflag

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Set is flags of one flag set bound to the environment.
type Set struct {
	fs    *flag.FlagSet
	names []string
}

// Bind makes the named flags of fs (every flag of fs when none is named)
// read the environment, and says so in each one's usage text, for -h.
// Define the flags first; call Fill after parsing. Naming a flag fs does
// not have is a programming error: Bind panics.
func Bind(fs *flag.FlagSet, names ...string) *Set {
	if len(names) == 0 {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	}
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			panic("envflag.Bind: no flag " + name)
		}
		v := Var(name)
		f.Usage += fmt.Sprintf(" (or $%s, or $%s_FILE naming a file that holds it)", v, v)
	}
	return &Set{fs: fs, names: names}
}

// Var is the variable that holds flag name's value.
func Var(name string) string {
	return "ATTESTD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Error is a variable that cannot be used; the command reports it as a
// usage error.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Fill sets each bound flag the command line did not give from the
// environment that getenv reads. Its errors are *Error values naming the
// variable.
func (e *Set) Fill(getenv func(string) string) error {
	given := map[string]bool{}
	e.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range e.names {
		if given[name] {
			continue
		}
		v := Var(name)
		value, file := getenv(v), getenv(v+"_FILE")
		switch {
		case value != "" && file != "":
			return &Error{fmt.Sprintf("%s and %s_FILE are both set: set one", v, v)}
		case file != "":
			data, err := os.ReadFile(file)
			if err != nil {
				return &Error{fmt.Sprintf("%s_FILE: %v", v, err)}
			}
			value, v = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r"), v+"_FILE"
		case value == "":
			continue
		}
		if err := e.fs.Set(name, value); err != nil {
			return &Error{fmt.Sprintf("%s: %v", v, err)}
		}
	}
	return nil
}
