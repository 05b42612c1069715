package sidecar

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// allTables returns a state table set holding every table of s.
func allTables(s schemaDef) map[string]bool {
	m := map[string]bool{}
	for _, t := range s.tables {
		m[t.name] = true
	}
	return m
}

func without(m map[string]bool, names ...string) map[string]bool {
	c := map[string]bool{}
	for k, v := range m {
		if !slices.Contains(names, k) {
			c[k] = v
		}
	}
	return c
}

// summary renders a plan's steps as "desc [binlog]" lines.
func summary(p plan) []string {
	var out []string
	for _, s := range p.steps {
		line := s.desc
		if s.binlog {
			line += " [binlog]"
		}
		out = append(out, line)
	}
	return out
}

func createSteps(s schemaDef, binlog bool, names ...string) []string {
	var out []string
	for _, t := range s.tables {
		if len(names) > 0 && !slices.Contains(names, t.name) {
			continue
		}
		line := "create table `_vt`.`" + t.name + "`"
		if binlog {
			line += " [binlog]"
		}
		out = append(out, line)
	}
	return out
}

func TestMakePlan(t *testing.T) {
	v1, v3 := current, fixtureSchema(3)
	all1, all3 := allTables(v1), allTables(v3)
	vitessOnly := without(all1, versionTable) // created by vttablet v23: no version table
	record := func(v int) string { return "record schema version " + strconv.Itoa(v) }
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	cases := []struct {
		name   string
		schema schemaDef
		state  state
		mode   Mode
		want   []string
	}{
		{"fresh server, primary", v1, state{flavor: flavorMariaDB}, Replicated,
			cat([]string{"create database `_vt` [binlog]"}, createSteps(v1, true), []string{record(1)})},
		{"fresh server, replica", v1, state{flavor: flavorMariaDB}, Local,
			cat([]string{"create database `_vt`"}, createSteps(v1, false), []string{record(1)})},
		{"current, primary", v1, state{dbExists: true, tables: all1, version: 1}, Replicated, nil},
		{"current, replica", v1, state{dbExists: true, tables: all1, version: 1}, Local, nil},
		{"empty database, primary", v1, state{dbExists: true, tables: map[string]bool{}}, Replicated,
			cat(createSteps(v1, true), []string{record(1)})},
		{"one table dropped, primary", v1, state{dbExists: true, tables: without(all1, "vdiff_log"), version: 1}, Replicated,
			createSteps(v1, true, "vdiff_log")},
		{"one table dropped, replica", v1, state{dbExists: true, tables: without(all1, "vdiff_log"), version: 1}, Local,
			createSteps(v1, false, "vdiff_log")},
		{"vttablet's tables, primary", v1, state{dbExists: true, tables: vitessOnly}, Replicated,
			cat(createSteps(v1, true, versionTable), []string{record(1)})},
		{"vttablet's tables, replica", v1, state{dbExists: true, tables: vitessOnly}, Local,
			cat(createSteps(v1, false, versionTable), []string{record(1)})},
		{"tables replicated, row not (a replica's view), primary", v1, state{dbExists: true, tables: all1}, Replicated,
			[]string{record(1)}},
		{"tables replicated, row not, replica", v1, state{dbExists: true, tables: all1}, Local,
			[]string{record(1)}},
		{"newer version recorded (downgrade)", v1, state{dbExists: true, tables: all1, version: 7}, Replicated, nil},
		{"v1 tables, v3 binary, primary", v3, state{dbExists: true, tables: without(all3, "extra_v2"), version: 1}, Replicated,
			cat(createSteps(v3, true, "extra_v2"), []string{
				"upgrade `_vt`.`resharding_journal` to version 2 [binlog]",
				"upgrade `_vt`.`resharding_journal` to version 3 [binlog]",
				record(3)})},
		{"v1 tables, v3 binary, replica: no upgrades", v3, state{dbExists: true, tables: without(all3, "extra_v2"), version: 1}, Local,
			createSteps(v3, false, "extra_v2")},
		{"v2 recorded, v3 binary, primary", v3, state{dbExists: true, tables: all3, version: 2}, Replicated,
			[]string{"upgrade `_vt`.`resharding_journal` to version 3 [binlog]", record(3)}},
		{"v3 binary, upgraded table missing: created, not altered", v3,
			state{dbExists: true, tables: without(all3, "resharding_journal"), version: 1}, Replicated,
			cat(createSteps(v3, true, "resharding_journal"), []string{record(3)})},
		{"tables without row, v3 binary, primary: all upgrades (idempotent)", v3, state{dbExists: true, tables: all3}, Replicated,
			[]string{
				"upgrade `_vt`.`resharding_journal` to version 2 [binlog]",
				"upgrade `_vt`.`resharding_journal` to version 3 [binlog]",
				record(3)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.state.tables == nil {
				c.state.tables = map[string]bool{}
			}
			got := summary(makePlan(c.schema, c.state, c.mode, "_vt"))
			if !slices.Equal(got, c.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestMakePlanCreatedAndFlavor(t *testing.T) {
	v3 := fixtureSchema(3)
	st := state{flavor: flavorMySQL, dbExists: true, tables: allTables(v3), version: 2}
	p := makePlan(v3, st, Replicated, "ks_sidecar")
	if want := []string{"`ks_sidecar`.`resharding_journal`"}; !slices.Equal(p.created, want) {
		t.Errorf("created = %q, want %q", p.created, want)
	}
	if want := "ALTER TABLE `ks_sidecar`.`resharding_journal` MODIFY COLUMN `note` varbinary(64) DEFAULT NULL"; p.steps[0].sql != want {
		t.Errorf("MySQL upgrade SQL = %q, want %q", p.steps[0].sql, want)
	}
	st.flavor = flavorMariaDB
	p = makePlan(v3, st, Replicated, "ks_sidecar")
	if want := "ALTER TABLE `ks_sidecar`.`resharding_journal` ADD COLUMN IF NOT EXISTS `note` varbinary(64) DEFAULT NULL"; p.steps[0].sql != want {
		t.Errorf("MariaDB upgrade SQL = %q, want %q", p.steps[0].sql, want)
	}

	fresh := makePlan(current, state{tables: map[string]bool{}}, Local, "_vt")
	want := []string{"`_vt`"}
	for _, name := range Tables() {
		want = append(want, "`_vt`.`"+name+"`")
	}
	if !slices.Equal(fresh.created, want) {
		t.Errorf("created on a fresh server = %q, want %q", fresh.created, want)
	}
}

// TestDDLGolden pins the exact statements a fresh primary executes: the same text serves
// MySQL 8 and MariaDB 10.11 (see table), and both modes (rule 1 of the package doc).
func TestDDLGolden(t *testing.T) {
	for _, mode := range []Mode{Replicated, Local} {
		for _, f := range []flavor{flavorMariaDB, flavorMySQL} {
			var b strings.Builder
			for _, s := range makePlan(current, state{flavor: f, tables: map[string]bool{}}, mode, DefaultName).steps {
				b.WriteString(s.sql + ";\n\n")
			}
			checkGolden(t, filepath.Join("testdata", "create_v"+strconv.Itoa(Version)+".sql"), b.String())
		}
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the generated DDL (run with -update after checking the change):\n%s", path, got)
	}
}
