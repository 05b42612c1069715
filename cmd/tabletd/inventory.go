package main

import (
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// vttabletV23Flags is the inventory of every flag of Vitess v23's vttablet (see the header of
// the file). Flags a tabletd component registers act; the rest are accepted and reported.
//
//go:embed testdata/vttablet-v23-flags.txt
var vttabletV23Flags string

// vtFlag is one vttablet v23 flag as the inventory lists it.
type vtFlag struct {
	name, typ, def string
	hidden         bool // not in vttablet's --help (deprecated)
}

// parseInventory reads the inventory: "name<TAB>type[<TAB>default[<TAB>hidden]]" lines,
// '#' comments. Every malformed line is an error naming it.
func parseInventory(text string) ([]vtFlag, error) {
	var out []vtFlag
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 || len(f) > 4 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("flag inventory line %d %q: want name, type, default and \"hidden\", tab-separated", i+1, line)
		}
		v := vtFlag{name: f[0], typ: f[1]}
		if len(f) > 2 {
			v.def = f[2]
		}
		if len(f) == 4 {
			if f[3] != "hidden" {
				return nil, fmt.Errorf("flag inventory line %d: fourth field %q is not \"hidden\"", i+1, f[3])
			}
			v.hidden = true
		}
		key := normalizeFlagName(v.name)
		if seen[key] {
			return nil, fmt.Errorf("flag inventory line %d: --%s listed twice", i+1, v.name)
		}
		seen[key] = true
		out = append(out, v)
	}
	return out, nil
}

// normalizeFlagName is the one spelling of a flag name: vttablet accepts --grpc_port for
// --grpc-port (and --log-dir is our spelling of glog's --log_dir).
func normalizeFlagName(name string) string { return strings.ReplaceAll(name, "_", "-") }

// acceptInventory registers, as "accepted, not implemented", every inventory flag that no
// component registered: so "not implemented" is always the inventory minus what acts, and a
// flag leaves that set by itself the moment someone implements it. It returns their names.
func acceptInventory(fs *pflag.FlagSet, inv []vtFlag) []string {
	var names []string
	for _, f := range inv {
		if fs.Lookup(f.name) != nil {
			continue
		}
		usage := "vttablet v23 flag, accepted by tabletd but not implemented (reported at start and on /debug/status)"
		if f.def != "" {
			usage += fmt.Sprintf("; vttablet's default: %s", f.def)
		}
		fs.Var(&compatValue{typ: f.typ}, f.name, usage)
		flag := fs.Lookup(f.name)
		if f.typ == "bool" {
			flag.NoOptDefVal = "true" // --restore_from_backup alone means true, as in vttablet
		}
		if f.hidden {
			_ = fs.MarkHidden(f.name)
		}
		names = append(names, flag.Name)
	}
	sort.Strings(names)
	return names
}

// notImplementedGiven names the accepted-not-implemented flags the command line (or the
// config file) set, as --name, sorted. Values are left out: a password may be among them.
func notImplementedGiven(fs *pflag.FlagSet, accepted []string) []string {
	var given []string
	for _, n := range accepted {
		if f := fs.Lookup(n); f != nil && f.Changed {
			given = append(given, "--"+n)
		}
	}
	return given
}

// compatValue holds an accepted flag's value, checked against vttablet's type so that a value
// vttablet would refuse is refused here too (an int flag given "abc" is a typo to report).
type compatValue struct {
	typ, val string
}

func (v *compatValue) String() string { return v.val }
func (v *compatValue) Type() string   { return v.typ }

func (v *compatValue) Set(s string) error {
	if err := checkValue(v.typ, s); err != nil {
		return err
	}
	v.val = s
	return nil
}

func checkValue(typ, s string) error {
	var err error
	switch typ {
	case "bool":
		_, err = strconv.ParseBool(s)
	case "int", "int64":
		_, err = strconv.ParseInt(s, 0, 64)
	case "uint", "uint64":
		_, err = strconv.ParseUint(s, 0, 64)
	case "float64":
		_, err = strconv.ParseFloat(s, 64)
	case "duration":
		_, err = time.ParseDuration(s)
	case "time.Duration": // vttablet's float-seconds-or-duration flags
		if _, perr := time.ParseDuration(s); perr != nil {
			_, err = strconv.ParseFloat(s, 64)
		}
	}
	if err != nil {
		return fmt.Errorf("not a valid %s", typ)
	}
	return nil
}
