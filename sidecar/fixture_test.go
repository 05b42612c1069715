package sidecar

import "slices"

// Later schema versions for the tests, built on the current one so that upgrades and new
// tables go through the real code. They must satisfy the same rules as a real upgrade.
//
//   - v2 widens resharding_journal.db_name (MODIFY COLUMN: idempotent on both flavors) and adds
//     the table extra_v2 (new tables need no upgrade: CREATE TABLE IF NOT EXISTS).
//   - v3 adds resharding_journal.note with ADD COLUMN IF NOT EXISTS. Its MySQL clause only
//     satisfies the form check (MySQL has no idempotent ADD COLUMN, see the package doc): the
//     upgrade tests run on MariaDB.
func fixtureSchema(version int) schemaDef {
	ts := slices.Clone(tables)
	var ups []upgrade
	if version >= 2 {
		ts = withDefs(ts, "resharding_journal", []string{
			"`id` bigint NOT NULL",
			"`db_name` varbinary(512) DEFAULT NULL",
			"`val` longblob",
			"PRIMARY KEY (`id`)",
		})
		ts = append(ts, table{"extra_v2", []string{"`id` bigint NOT NULL", "PRIMARY KEY (`id`)"}})
		ups = append(ups, upgrade{2, "resharding_journal",
			"MODIFY COLUMN `db_name` varbinary(512) DEFAULT NULL", "MODIFY COLUMN `db_name` varbinary(512) DEFAULT NULL"})
	}
	if version >= 3 {
		ts = withDefs(ts, "resharding_journal", []string{
			"`id` bigint NOT NULL",
			"`db_name` varbinary(512) DEFAULT NULL",
			"`val` longblob",
			"`note` varbinary(64) DEFAULT NULL",
			"PRIMARY KEY (`id`)",
		})
		ups = append(ups, upgrade{3, "resharding_journal",
			"ADD COLUMN IF NOT EXISTS `note` varbinary(64) DEFAULT NULL", "MODIFY COLUMN `note` varbinary(64) DEFAULT NULL"})
	}
	return schemaDef{version: version, tables: ts, upgrades: ups}
}

func withDefs(ts []table, name string, defs []string) []table {
	for i := range ts {
		if ts[i].name == name {
			ts[i] = table{name, defs}
		}
	}
	return ts
}
