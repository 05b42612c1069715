package sidecar

import (
	"testing"
)

func TestCheckUpgrade(t *testing.T) {
	cases := []struct {
		name string
		u    upgrade
		ok   bool
	}{
		{"modify on both", upgrade{2, "t", "MODIFY COLUMN `a` int NOT NULL", "MODIFY COLUMN `a` int NOT NULL"}, true},
		{"add column if not exists", upgrade{2, "t", "ADD COLUMN IF NOT EXISTS `a` int", "MODIFY COLUMN `a` int"}, true},
		{"add index if not exists", upgrade{2, "t", "ADD INDEX IF NOT EXISTS `i` (`a`)", "ALTER COLUMN `a` DROP DEFAULT"}, true},
		{"add unique key if not exists", upgrade{2, "t", "ADD UNIQUE KEY IF NOT EXISTS `i` (`a`)", "MODIFY COLUMN `a` int"}, true},
		{"drop column if exists", upgrade{2, "t", "DROP COLUMN IF EXISTS `a`", "ALTER COLUMN `a` SET DEFAULT '0'"}, true},
		{"version 1 is the base", upgrade{1, "t", "MODIFY COLUMN `a` int", "MODIFY COLUMN `a` int"}, false},
		{"plain add column (MariaDB)", upgrade{2, "t", "ADD COLUMN `a` int", "MODIFY COLUMN `a` int"}, false},
		{"plain add column (MySQL)", upgrade{2, "t", "ADD COLUMN IF NOT EXISTS `a` int", "ADD COLUMN `a` int"}, false},
		{"IF NOT EXISTS is MariaDB only", upgrade{2, "t", "MODIFY COLUMN `a` int", "ADD COLUMN IF NOT EXISTS `a` int"}, false},
		{"plain drop", upgrade{2, "t", "DROP COLUMN `a`", "MODIFY COLUMN `a` int"}, false},
		{"rename", upgrade{2, "t", "RENAME COLUMN `a` TO `b`", "RENAME COLUMN `a` TO `b`"}, false},
		{"change", upgrade{2, "t", "CHANGE COLUMN `a` `b` int", "CHANGE COLUMN `a` `b` int"}, false},
		{"two clauses", upgrade{2, "t", "MODIFY COLUMN `a` int, ADD COLUMN `b` int", "MODIFY COLUMN `a` int"}, false},
		{"missing MySQL clause", upgrade{2, "t", "MODIFY COLUMN `a` int", ""}, false},
		{"missing MariaDB clause", upgrade{2, "t", "", "MODIFY COLUMN `a` int"}, false},
	}
	for _, c := range cases {
		err := checkUpgrade(c.u)
		if (err == nil) != c.ok {
			t.Errorf("%s: checkUpgrade = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestSchemasConsistent checks the real schema, and the test fixtures, against the rules every
// upgrade must follow.
func TestSchemasConsistent(t *testing.T) {
	for _, s := range []schemaDef{current, fixtureSchema(2), fixtureSchema(3)} {
		if err := s.check(); err != nil {
			t.Errorf("schema version %d: %v", s.version, err)
		}
		seen := map[string]bool{}
		for _, tb := range s.tables {
			if seen[tb.name] {
				t.Errorf("schema version %d: table %s listed twice", s.version, tb.name)
			}
			seen[tb.name] = true
		}
		if !seen[versionTable] {
			t.Errorf("schema version %d has no %s", s.version, versionTable)
		}
	}
	bad := []schemaDef{
		{version: 2}, // no upgrade leads to 2
		{version: 1, tables: tables, upgrades: []upgrade{{2, "heartbeat", "MODIFY COLUMN `ts` bigint", "MODIFY COLUMN `ts` bigint"}}},
		{version: 3, tables: tables, upgrades: []upgrade{{3, "heartbeat", "MODIFY COLUMN `ts` bigint", "MODIFY COLUMN `ts` bigint"}}},
		{version: 2, tables: tables, upgrades: []upgrade{{2, "nosuch", "MODIFY COLUMN `ts` bigint", "MODIFY COLUMN `ts` bigint"}}},
	}
	for i, s := range bad {
		if err := s.check(); err == nil {
			t.Errorf("bad schema %d: check passed", i)
		}
	}
}
