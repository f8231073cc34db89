// Package envflag fills command-line flags from environment variables, so that every
// setting of a fieldstream binary is one flag with one environment variable behind it.
//
// A flag named "http-addr" under the prefix "FS" is filled from FS_HTTP_ADDR when it was
// not given on the command line. The command line always wins over the environment, and
// the environment over the flag's default.
package envflag

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Parse parses args into fs, then fills every flag that args did not set from the
// environment variable EnvName(prefix, flag). Extra maps a flag name to a further variable
// that is consulted when the prefixed one is empty (for example "nats-url" → "NATS_URL",
// the name every NATS tool understands). getenv is os.Getenv in production.
//
// It returns the first parse error, or an error naming the variable whose value the flag
// rejected.
func Parse(fs *flag.FlagSet, args []string, prefix string, extra map[string]string, getenv func(string) string) error {
	fs.Usage = func() { usage(fs, prefix, extra) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		v := getenv(name)
		if v == "" && extra[f.Name] != "" {
			name = extra[f.Name]
			v = getenv(name)
		}
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment %s=%q: %w", name, v, serr)
		}
	})
	return err
}

// EnvName is the environment variable behind flag name under prefix: "http-addr" under
// "FS" is "FS_HTTP_ADDR".
func EnvName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func usage(fs *flag.FlagSet, prefix string, extra map[string]string) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage of %s:\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(prefix, f.Name)
		if extra[f.Name] != "" {
			env += " or " + extra[f.Name]
		}
		printFlag(w, f, env)
	})
}

func printFlag(w io.Writer, f *flag.Flag, env string) {
	kind, help := flag.UnquoteUsage(f)
	fmt.Fprintf(w, "  -%s %s\n    \t%s (env %s", f.Name, kind, help, env)
	if f.DefValue != "" {
		fmt.Fprintf(w, ", default %q", f.DefValue)
	}
	fmt.Fprintln(w, ")")
}
