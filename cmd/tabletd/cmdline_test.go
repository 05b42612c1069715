package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// e2eVersion is the regexp Vitess's end-to-end cluster (go/test/endtoend/cluster) reads the
// major version of `vttablet --version` with.
var e2eVersion = regexp.MustCompile(`Version: ([0-9]+)\.([0-9]+)\.([0-9]+)`)

// TestVersion: --version and -v print one line in vttablet's format, on stdout, whatever else
// the command line holds; Vitess's tooling reads 23 from it.
func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv []string
		prog string
	}{
		{"symlink", []string{"/usr/local/bin/vttablet", "--version"}, "vttablet"},
		{"shorthand", []string{"vttablet", "-v"}, "vttablet"},
		{"own name", []string{"/opt/tabletd/bin/tabletd", "--version"}, "tabletd"},
		{"with other flags", []string{"vttablet", "--tablet-path", "bad", "--version", "--port", "1"}, "vttablet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.argv, &stdout, &stderr, noEnv); code != exitOK {
				t.Fatalf("exit %d; stderr %s", code, stderr.String())
			}
			out := stdout.String()
			m := e2eVersion.FindStringSubmatch(out)
			if len(m) != 4 {
				t.Fatalf("%q does not match Vitess's version regexp", out)
			}
			if major, _ := strconv.Atoi(m[1]); major != 23 {
				t.Fatalf("major version %d, want 23 (%q)", major, out)
			}
			if !strings.HasPrefix(out, tc.prog+" version Version: 23.0.0 (tabletd ") || !strings.Contains(out, "compatible with Vitess v23 vttablet") {
				t.Fatalf("version line %q does not say it is tabletd standing in for vttablet v23", out)
			}
			if strings.Count(out, "\n") != 1 || stderr.Len() != 0 {
				t.Fatalf("want one line on stdout and nothing on stderr; stdout %q stderr %q", out, stderr.String())
			}
		})
	}
}

// TestHelp: --help lists every visible vttablet v23 flag, those tabletd does not implement
// marked so, and exits 0.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"vttablet", "--help"}, &stdout, &stderr, noEnv); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, stderr.String())
	}
	out := stdout.String()
	var o options
	newFlagSet(&o)
	accepted := map[string]bool{}
	for _, n := range o.accepted {
		accepted[n] = true
	}
	for _, v := range mustInventory() {
		if v.hidden {
			continue
		}
		name := normalizeFlagName(v.name)
		line := helpLine(out, name)
		if line == "" {
			t.Errorf("--help does not list --%s", name)
			continue
		}
		if marked := strings.Contains(line, "accepted by tabletd but not implemented"); marked != accepted[name] {
			t.Errorf("--%s: marked not implemented %v, accepted-not-implemented %v: %q", name, marked, accepted[name], line)
		}
	}
	if !strings.HasPrefix(out, "vttablet is tabletd") {
		t.Errorf("--help does not say what it is: %q", out[:80])
	}
}

func helpLine(help, name string) string {
	for _, l := range strings.Split(help, "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "--"+name || len(f) > 1 && f[1] == "--"+name) {
			return l
		}
	}
	return ""
}

// TestUnknownFlags: every unknown flag is named, in one line, exit 2 — however many there are.
func TestUnknownFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"one", []string{"--no-such-flag"}, []string{"--no-such-flag"}},
		{"several, values skipped", []string{"--port", "1", "--grpc_port=1", "--tablet_pathh", "x", "-q", "--restore_from_backup", "--also-bogus=1"},
			[]string{"--tablet_pathh", "-q", "--also-bogus"}},
		{"non-ascii shorthand", []string{"-é"}, []string{"-é"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := runArgs(context.Background(), tc.args, &stderr, noEnv)
			out := strings.TrimSpace(stderr.String())
			if code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, out)
			}
			if strings.Contains(out, "\n") {
				t.Fatalf("not one line: %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%q does not name %s", out, w)
				}
			}
		})
	}
	// --port takes --bogus as its value: not an unknown flag, an invalid port.
	var o options
	fs := newFlagSet(&o)
	if got := unknownFlags(fs, []string{"--port", "--bogus", "--nope"}); strings.Join(got, ",") != "--nope" {
		t.Fatalf("unknownFlags = %v, want [--nope]", got)
	}
}

// TestLastWins: a flag given twice keeps the last value — lists, maps and accepted flags
// too, in either spelling (Vitess's end-to-end cluster appends test flags to its own).
func TestLastWins(t *testing.T) {
	var o options
	fs := newFlagSet(&o)
	args := []string{
		"--health_check_interval", "1s", "--health-check-interval", "7s",
		"--service_map", "grpc-queryservice,grpc-updatestream", "--service-map", "grpc-tabletmanager",
		"--init-tags", "a:1", "--init_tags", "b:2",
		"--app-pool-size", "1", "--app_pool_size", "2",
		"--restore-from-backup-allowed-engines", "x,y", "--restore-from-backup-allowed-engines", "z",
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if o.healthInterval != 7*time.Second {
		t.Errorf("--health-check-interval = %v, want 7s", o.healthInterval)
	}
	if strings.Join(o.services, ",") != "grpc-tabletmanager" {
		t.Errorf("--service-map = %v, want [grpc-tabletmanager]", o.services)
	}
	if len(o.tags) != 1 || o.tags["b"] != "2" {
		t.Errorf("--init-tags = %v, want map[b:2]", o.tags)
	}
	if v := fs.Lookup("app-pool-size").Value.String(); v != "2" {
		t.Errorf("--app-pool-size = %q, want 2", v)
	}
	if v := fs.Lookup("restore-from-backup-allowed-engines").Value.String(); v != "[z]" && v != "z" {
		t.Errorf("--restore-from-backup-allowed-engines = %q, want z", v)
	}
}
