package main

import (
	"bufio"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// helpFlagLine is a flag line of vttablet's --help: "  -v, --version" or "      --port int".
var helpFlagLine = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--([a-zA-Z0-9_-]+)`)

// helpFlags reads the flag names of the Flags: section of a vttablet --help output.
func helpFlags(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	inFlags := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "Flags:" {
			inFlags = true
			continue
		}
		if m := helpFlagLine.FindStringSubmatch(line); inFlags && m != nil {
			names = append(names, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// checkInventory lists what is wrong between the vttablet inventory and a tabletd flag set:
// a v23 flag tabletd does not know, or one that takes a value where vttablet's does not (or
// parses another kind of value), which would shift every argument after it.
func checkInventory(fs *pflag.FlagSet, inv []vtFlag) []string {
	var problems []string
	for _, v := range inv {
		f := fs.Lookup(v.name)
		if f == nil {
			problems = append(problems, "v23 flag --"+v.name+" is missing")
			continue
		}
		if (f.NoOptDefVal != "") != (v.typ == "bool") {
			problems = append(problems, "--"+v.name+": tabletd's takes a value differently from vttablet's "+v.typ)
		}
		if got, want := typeClass(f.Value.Type()), typeClass(v.typ); got != want {
			problems = append(problems, "--"+v.name+": tabletd parses a "+got+", vttablet a "+want+" ("+v.typ+")")
		}
	}
	return problems
}

// TestFlagInventory: the committed inventory is vttablet v23's whole flag set (the real
// --help lists exactly its visible flags) and tabletd accepts every flag in it, taking a value
// exactly where vttablet does.
func TestFlagInventory(t *testing.T) {
	inv, err := parseInventory(vttabletV23Flags)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) < 390 {
		t.Fatalf("inventory has %d flags; vttablet v23 has 398", len(inv))
	}
	var visible []string
	for _, v := range inv {
		if !v.hidden {
			visible = append(visible, v.name)
		}
	}
	help := helpFlags(t, "testdata/vttablet-v23-help.txt")
	sort.Strings(visible)
	sort.Strings(help)
	if strings.Join(visible, " ") != strings.Join(help, " ") {
		t.Errorf("inventory and vttablet --help disagree:\n only in the inventory: %v\n only in --help: %v",
			minus(visible, help), minus(help, visible))
	}

	var o options
	fs := newFlagSet(&o)
	for _, p := range checkInventory(fs, inv) {
		t.Error(p)
	}
	t.Logf("vttablet v23: %d flags; %d act in tabletd, %d accepted, not implemented",
		len(inv), len(inv)-len(o.accepted), len(o.accepted))
}

// TestCheckInventoryFails: the checker reports a v23 flag tabletd lacks and a flag whose
// value-taking differs, so TestFlagInventory fails when the inventory grows past tabletd.
func TestCheckInventoryFails(t *testing.T) {
	var o options
	fs := newFlagSet(&o)
	for _, tc := range []struct {
		name string
		flag vtFlag
		want string
	}{
		{"missing", vtFlag{name: "no-such-v23-flag", typ: "string"}, "--no-such-v23-flag is missing"},
		{"bool vs value", vtFlag{name: "port", typ: "bool"}, "--port: tabletd's takes a value differently"},
		{"type", vtFlag{name: "port", typ: "duration"}, "--port: tabletd parses a integer, vttablet a duration"},
		{"fine", vtFlag{name: "grpc_port", typ: "int"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(checkInventory(fs, []vtFlag{tc.flag}), "; ")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseInventoryRejects(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"one field", "port\n"},
		{"five fields", "port\tint\t0\thidden\tx\n"},
		{"bad marker", "port\tint\t0\tvisible\n"},
		{"twice", "grpc-port\tint\t0\ngrpc_port\tint\t0\n"},
		{"empty name", "\tint\t0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseInventory(tc.text); err == nil {
				t.Fatalf("accepted %q", tc.text)
			}
		})
	}
}

// sampleValue is a value every flag of that class parses.
func sampleValue(f *pflag.Flag) string {
	switch typeClass(f.Value.Type()) {
	case "bool":
		return "true"
	case "integer":
		return "1"
	case "duration":
		return "1s"
	case "float":
		return "0.5"
	case "map":
		return "k:v"
	}
	return "x"
}

// TestEverySpelling: each v23 flag is accepted as vttablet spells it, with dashes and with
// underscores (Vitess's end-to-end cluster picks one at random), as --name=value and as
// --name value.
func TestEverySpelling(t *testing.T) {
	inv := mustInventory()
	for _, v := range inv {
		for _, spelling := range []string{v.name, strings.ReplaceAll(v.name, "-", "_"), strings.ReplaceAll(v.name, "_", "-")} {
			if spelling == "help" || spelling == "version" {
				continue
			}
			var o options
			fs := newFlagSet(&o)
			f := fs.Lookup(v.name)
			val := sampleValue(f)
			args := []string{"--" + spelling + "=" + val}
			if f.NoOptDefVal == "" {
				args = []string{"--" + spelling, val}
			}
			if err := fs.Parse(args); err != nil {
				t.Errorf("%v: %v", args, err)
				continue
			}
			if !fs.Lookup(v.name).Changed {
				t.Errorf("%v: --%s not set", args, v.name)
			}
		}
	}
}

// TestCompatValuesChecked: an accepted, not implemented flag still refuses a value vttablet
// would refuse, naming the flag.
func TestCompatValuesChecked(t *testing.T) {
	for _, tc := range []struct{ typ, good, bad string }{
		{"int", "-3", "three"},
		{"uint64", "7", "-1"},
		{"float64", "0.25", "quarter"},
		{"duration", "1m", "60"},
		{"time.Duration", "1.5", "soon"},
		{"bool", "false", "maybe"},
	} {
		v := &compatValue{typ: tc.typ}
		if err := v.Set(tc.good); err != nil {
			t.Errorf("%s %q refused: %v", tc.typ, tc.good, err)
		}
		if err := v.Set(tc.bad); err == nil {
			t.Errorf("%s %q accepted", tc.typ, tc.bad)
		}
		if v.String() != tc.good {
			t.Errorf("%s: value %q after a refused Set, want %q", tc.typ, v.String(), tc.good)
		}
	}
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
