package sidecar

import (
	"fmt"
	"regexp"
)

// Version is the sidecar schema version this package creates. Version 1 is Vitess v23's
// definition of every table. Raising it means adding upgrades for the tables that change (see
// upgrade) and changing their definitions in tables to the new shape.
const Version = 1

// upgrade changes one existing table from version-1 to version. Tables created by Ensure are
// created at the current definition and skip every upgrade; the upgrades are for tables that
// existed before, at an older version.
//
// Each clause is one ALTER TABLE clause per flavor and must be a no-op when the table already
// has the upgrade's shape (package doc, rule 4); checkUpgrade enforces the allowed forms.
type upgrade struct {
	version int
	table   string
	mariadb string // e.g. "ADD COLUMN IF NOT EXISTS `x` bigint NOT NULL DEFAULT '0'"
	mysql   string // e.g. "MODIFY COLUMN `x` varbinary(2000) DEFAULT NULL"
}

// upgrades lists every upgrade in version order: versions 2 … Version, each version at least
// once (several entries may share a version).
var upgrades []upgrade

// schemaDef is a complete schema: its version, tables and the upgrades that lead to it.
// Ensure uses current; the tests build later versions to exercise upgrades.
type schemaDef struct {
	version  int
	tables   []table
	upgrades []upgrade
}

var current = schemaDef{version: Version, tables: tables, upgrades: upgrades}

// Idempotent ALTER TABLE clauses. MariaDB has IF [NOT] EXISTS for columns, indexes and keys;
// MySQL 8 has none, so only clauses that re-apply to the same result are allowed there.
var (
	idempotentMariaDB = regexp.MustCompile(`^(?i:` +
		`ADD COLUMN IF NOT EXISTS |` +
		`ADD (UNIQUE )?(INDEX|KEY) IF NOT EXISTS |` +
		`DROP COLUMN IF EXISTS |` +
		`DROP (INDEX|KEY) IF EXISTS |` +
		`MODIFY COLUMN (IF EXISTS )?|` +
		"ALTER COLUMN `[^`]+` (SET DEFAULT |DROP DEFAULT$)" +
		`)`)
	idempotentMySQL = regexp.MustCompile(`^(?i:` +
		`MODIFY COLUMN |` +
		"ALTER COLUMN `[^`]+` (SET DEFAULT |DROP DEFAULT$)" +
		`)`)
	// oneClause rejects a list of clauses: each upgrade entry holds exactly one, so that the
	// idempotence check covers all of it.
	oneClause = regexp.MustCompile(`,\s*(?i:ADD|DROP|MODIFY|ALTER|CHANGE|RENAME)\s`)
)

// checkUpgrade reports why u breaks the replica compatibility invariant.
func checkUpgrade(u upgrade) error {
	if u.version < 2 {
		return fmt.Errorf("upgrade of %s: version %d, want >= 2 (version 1 is the base)", u.table, u.version)
	}
	for _, c := range []struct{ flavor, clause string }{{"MariaDB", u.mariadb}, {"MySQL", u.mysql}} {
		re := idempotentMySQL
		if c.flavor == "MariaDB" {
			re = idempotentMariaDB
		}
		if c.clause == "" {
			return fmt.Errorf("upgrade %d of %s: no %s clause", u.version, u.table, c.flavor)
		}
		if !re.MatchString(c.clause) || oneClause.MatchString(c.clause) {
			return fmt.Errorf("upgrade %d of %s: %s clause %q is not one of the idempotent forms", u.version, u.table, c.flavor, c.clause)
		}
	}
	return nil
}

// check reports a schema whose upgrades do not lead, in order, to its version.
func (s schemaDef) check() error {
	known := map[string]bool{}
	for _, t := range s.tables {
		known[t.name] = true
	}
	next := 2
	for _, u := range s.upgrades {
		if err := checkUpgrade(u); err != nil {
			return err
		}
		if !known[u.table] {
			return fmt.Errorf("upgrade %d: unknown table %s", u.version, u.table)
		}
		switch u.version {
		case next - 1: // another entry of the same version
		case next:
			next++
		default:
			return fmt.Errorf("upgrade %d of %s out of order: want version %d or %d", u.version, u.table, next-1, next)
		}
	}
	if next-1 != s.version {
		return fmt.Errorf("upgrades lead to version %d, schema is version %d", next-1, s.version)
	}
	return nil
}

func (u upgrade) clause(f flavor) string {
	if f == flavorMySQL {
		return u.mysql
	}
	return u.mariadb
}

func alterTableSQL(db, table, clause string) string {
	return "ALTER TABLE " + QuoteName(db) + "." + QuoteName(table) + " " + clause
}
