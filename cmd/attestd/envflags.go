package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// envFlags lets flags take their values from the environment, so that
// secrets never need the command line, where every user of the machine
// sees them (ps, /proc/PID/cmdline) and shell history keeps them.
//
// The rule, the same for every command and flag that uses it: after the
// command line is parsed, each flag it did not give is set from
// ATTESTD_<FLAG> (the flag's name in upper case, "-" as "_"), or from the
// file that ATTESTD_<FLAG>_FILE names (its content, one trailing newline
// dropped), as container platforms hand out secrets. Setting both is an
// error; a flag given on the command line wins over either. An empty
// variable counts as unset. Errors name the variable.
type envFlags struct {
	fs    *flag.FlagSet
	names []string
}

// bindEnv makes the named flags of fs (every flag of fs when none is
// named) read the environment, and says so in each one's usage text,
// for -h. Define the flags first; call fill after parsing.
func bindEnv(fs *flag.FlagSet, names ...string) *envFlags {
	if len(names) == 0 {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	}
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			panic("attestd: bindEnv: no flag " + name)
		}
		v := envVar(name)
		f.Usage += fmt.Sprintf(" (or $%s, or $%s_FILE naming a file that holds it)", v, v)
	}
	return &envFlags{fs: fs, names: names}
}

// envVar is the variable that holds flag name's value.
func envVar(name string) string {
	return "ATTESTD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// fill sets each bound flag the command line did not give from the
// environment that getenv reads. Its errors are usage errors naming the
// variable.
func (e *envFlags) fill(getenv func(string) string) error {
	given := map[string]bool{}
	e.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range e.names {
		if given[name] {
			continue
		}
		v := envVar(name)
		value, file := getenv(v), getenv(v+"_FILE")
		switch {
		case value != "" && file != "":
			return usagef("%s and %s_FILE are both set: set one", v, v)
		case file != "":
			data, err := os.ReadFile(file)
			if err != nil {
				return usagef("%s_FILE: %v", v, err)
			}
			value, v = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r"), v+"_FILE"
		case value == "":
			continue
		}
		if err := e.fs.Set(name, value); err != nil {
			return usagef("%s: %v", v, err)
		}
	}
	return nil
}
