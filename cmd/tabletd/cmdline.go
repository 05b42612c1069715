package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// vitessVersion is the Vitess release whose vttablet tabletd stands in for. --version prints
// it where Vitess prints its own, so tooling that reads the major version (Vitess's
// end-to-end cluster: `Version: ([0-9]+)\.([0-9]+)\.([0-9]+)`) treats tabletd as a v23 tablet.
const (
	vitessMajor   = "23"
	vitessVersion = vitessMajor + ".0.0"
)

// versionLine is vttablet's --version line with tabletd's identity in it, e.g.
// "vttablet version Version: 23.0.0 (tabletd 1.2.0, compatible with Vitess v23 vttablet) (Git
// revision abc branch ”) built on … by tabletd using go1.26 linux/amd64".
func versionLine(prog, tabletdVersion string) string {
	rev, when := "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			}
		}
	}
	return fmt.Sprintf("%s version Version: %s (tabletd %s, compatible with Vitess v%s vttablet) (Git revision %s branch '') built on %s by tabletd using %s %s/%s",
		prog, vitessVersion, tabletdVersion, vitessMajor, rev, when, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// progName is the name tabletd was started under: "vttablet" through the drop-in symlink.
func progName(arg0 string) string {
	if arg0 == "" {
		return "tabletd"
	}
	return filepath.Base(arg0)
}

// printHelp writes --help: how tabletd stands in for vttablet, then every flag.
func printHelp(w io.Writer, prog string, fs *pflag.FlagSet) {
	fmt.Fprintf(w, `%s is tabletd: a tablet server that stands in for Vitess v%s's vttablet beside one
MySQL or MariaDB server (vtgate and vtctld talk to it over Vitess's gRPC protocol and etcd
topology). Every vttablet v%s flag is accepted in either spelling (--grpc_port, --grpc-port); when
a flag is given twice the last one wins. Flags marked "accepted by tabletd but not implemented" are
reported at start and on /debug/status.

Usage:
  %s [flags]

Flags:
%s`, prog, vitessMajor, vitessMajor, prog, fs.FlagUsages())
}

// lastWins makes a list flag given twice keep only its last value, as for every other flag
// (pflag would append; Vitess's end-to-end cluster repeats flags and means the last).
type lastWins struct {
	pflag.Value
	slice pflag.SliceValue
}

func (l *lastWins) Set(s string) error {
	var vals []string
	if s != "" {
		r, err := csv.NewReader(strings.NewReader(s)).Read()
		if err != nil {
			return err
		}
		vals = r
	}
	return l.slice.Replace(vals)
}

// makeListsLastWins wraps every list-valued flag registered so far.
func makeListsLastWins(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if _, done := f.Value.(*lastWins); !done {
				f.Value = &lastWins{Value: f.Value, slice: sv}
			}
		}
	})
}

// unknownFlags lists every flag on the command line that fs does not know (pflag stops at
// the first), in the order given, as the user spelled them.
func unknownFlags(fs *pflag.FlagSet, args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return out
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			f := fs.Lookup(name)
			if f == nil {
				out = append(out, "--"+name)
				continue
			}
			if !hasValue && f.NoOptDefVal == "" {
				i++ // the next argument is this flag's value
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// Shorthands: -v, -h (and -vh). A shorthand taking a value ends the group.
			for j, c := range a[1:] {
				var f *pflag.Flag
				if c < 0x80 { // ShorthandLookup panics on more than one byte
					f = fs.ShorthandLookup(string(c))
				}
				if f == nil {
					out = append(out, "-"+string(c))
					break
				}
				if f.NoOptDefVal == "" {
					if j == len(a)-2 {
						i++
					}
					break
				}
			}
		}
	}
	return out
}

// typeClass groups pflag types by how a value is written, to compare tabletd's flags with
// vttablet's: a flag must take a value exactly when vttablet's does, and parse alike.
func typeClass(typ string) string {
	switch typ {
	case "bool":
		return "bool"
	case "int", "int32", "int64", "uint", "uint32", "uint64":
		return "integer"
	case "duration", "time.Duration":
		return "duration"
	case "float64", "float32":
		return "float"
	case "stringSlice", "strings", "stringArray":
		return "list"
	case "StringMap", "stringToString", "key:value,…":
		return "map"
	}
	return "string"
}

// sortedFlagNames is every flag's name in fs, sorted.
func sortedFlagNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return names
}
