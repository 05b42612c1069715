package sidecar

import (
	"strings"
)

// table is one sidecar table at the current schema version: its column and key definitions,
// one per element, as they go between the parentheses of CREATE TABLE.
//
// The definitions follow Vitess v23 (go/vt/sidecardb/schema): same names, types, nullability,
// defaults and keys, so that vtctld's SQL and a vttablet sharing the shard see the same tables.
// Integer display widths are left out (bigint(20) is bigint on both flavors; MySQL 8 warns on
// widths), except tinyint(1), which clients read as a boolean. One text serves MySQL 8 and
// MariaDB 10.11: every type and default here is valid on both (MariaDB stores JSON as LONGTEXT
// with a json_valid check; neither flavor allows a literal default on it, and none is used).
type table struct {
	name string
	defs []string
}

// versionTable records the schema version Ensure brought this server to (see the package doc,
// rule 3). It is tabletd's own; Vitess has no such table.
const versionTable = "sidecar_schema"

// versionKey is the row of versionTable that holds this package's version.
const versionKey = "tabletd"

// tables lists every sidecar table, in creation order.
var tables = []table{
	{versionTable, []string{
		"`name` varbinary(64) NOT NULL",
		"`version` int unsigned NOT NULL",
		"PRIMARY KEY (`name`)",
	}},
	{"reparent_journal", []string{
		"`time_created_ns` bigint unsigned NOT NULL",
		"`action_name` varbinary(255) NOT NULL",
		"`primary_alias` varbinary(255) NOT NULL",
		"`replication_position` varbinary(64000) DEFAULT NULL",
		"PRIMARY KEY (`time_created_ns`)",
	}},
	{"heartbeat", []string{
		"`keyspaceShard` varbinary(256) NOT NULL",
		"`tabletUid` int unsigned NOT NULL",
		"`ts` bigint unsigned NOT NULL",
		"PRIMARY KEY (`keyspaceShard`)",
	}},
	{"semisync_heartbeat", []string{
		"`ts` bigint unsigned NOT NULL",
		"PRIMARY KEY (`ts`)",
	}},
	{"vreplication", []string{
		"`id` int NOT NULL AUTO_INCREMENT",
		"`workflow` varbinary(1000) DEFAULT NULL",
		"`source` mediumblob NOT NULL",
		"`pos` varbinary(10000) NOT NULL",
		"`stop_pos` varbinary(10000) DEFAULT NULL",
		"`max_tps` bigint NOT NULL",
		"`max_replication_lag` bigint NOT NULL",
		"`cell` varbinary(1000) DEFAULT NULL",
		"`tablet_types` varbinary(100) DEFAULT NULL",
		"`time_updated` bigint NOT NULL",
		"`transaction_timestamp` bigint NOT NULL",
		"`state` varbinary(100) NOT NULL",
		"`message` varbinary(1000) DEFAULT NULL",
		"`db_name` varbinary(255) NOT NULL",
		"`rows_copied` bigint NOT NULL DEFAULT '0'",
		"`tags` varbinary(1024) NOT NULL DEFAULT ''",
		"`time_heartbeat` bigint NOT NULL DEFAULT '0'",
		"`workflow_type` int NOT NULL DEFAULT '0'",
		"`time_throttled` bigint NOT NULL DEFAULT '0'",
		"`component_throttled` varchar(255) NOT NULL DEFAULT ''",
		"`reason_throttled` varchar(1000) NOT NULL DEFAULT ''",
		"`workflow_sub_type` int NOT NULL DEFAULT '0'",
		"`defer_secondary_keys` tinyint(1) NOT NULL DEFAULT '0'",
		"`options` json NOT NULL",
		"PRIMARY KEY (`id`)",
		"KEY `workflow_idx` (`workflow`(64))",
	}},
	{"copy_state", []string{
		"`id` bigint unsigned NOT NULL AUTO_INCREMENT",
		"`vrepl_id` int NOT NULL",
		"`table_name` varbinary(128) NOT NULL",
		"`lastpk` varbinary(2000) DEFAULT NULL",
		"PRIMARY KEY (`id`)",
		"KEY `vrepl_id` (`vrepl_id`, `table_name`)",
	}},
	{"post_copy_action", []string{
		"`id` bigint NOT NULL AUTO_INCREMENT",
		"`vrepl_id` int NOT NULL",
		"`table_name` varbinary(128) NOT NULL",
		"`action` json NOT NULL",
		"PRIMARY KEY (`id`)",
		"UNIQUE KEY `vrepl_id` (`vrepl_id`, `table_name`)",
	}},
	{"vreplication_log", []string{
		"`id` bigint NOT NULL AUTO_INCREMENT",
		"`vrepl_id` int NOT NULL",
		"`type` varbinary(256) NOT NULL",
		"`state` varbinary(100) NOT NULL",
		"`created_at` timestamp NULL DEFAULT CURRENT_TIMESTAMP",
		"`updated_at` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP",
		"`message` text NOT NULL",
		"`count` bigint NOT NULL DEFAULT '1'",
		"PRIMARY KEY (`id`)",
		"KEY `vrepl_id_idx` (`vrepl_id`)",
	}},
	{"resharding_journal", []string{
		"`id` bigint NOT NULL",
		"`db_name` varbinary(255) DEFAULT NULL",
		"`val` longblob",
		"PRIMARY KEY (`id`)",
	}},
	{"schema_version", []string{
		"`id` int NOT NULL AUTO_INCREMENT",
		"`pos` varbinary(10000) NOT NULL",
		"`time_updated` bigint NOT NULL",
		"`ddl` blob DEFAULT NULL",
		"`schemax` longblob NOT NULL",
		"PRIMARY KEY (`id`)",
	}},
	{"vdiff", []string{
		"`id` bigint NOT NULL AUTO_INCREMENT",
		"`vdiff_uuid` varchar(64) NOT NULL",
		"`workflow` varbinary(1024) DEFAULT NULL",
		"`keyspace` varbinary(256) DEFAULT NULL",
		"`shard` varchar(255) NOT NULL",
		"`db_name` varbinary(1024) DEFAULT NULL",
		"`state` varbinary(64) DEFAULT NULL",
		"`options` json DEFAULT NULL",
		"`created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP",
		"`started_at` timestamp NULL DEFAULT NULL",
		"`liveness_timestamp` timestamp NULL DEFAULT NULL",
		"`completed_at` timestamp NULL DEFAULT NULL",
		"`last_error` varbinary(1024) DEFAULT NULL",
		"PRIMARY KEY (`id`)",
		"UNIQUE KEY `uuid_idx` (`vdiff_uuid`)",
		"KEY `state` (`state`)",
		"KEY `ks_wf_idx` (`keyspace`(64), `workflow`(64))",
	}},
	{"vdiff_table", []string{
		"`vdiff_id` bigint NOT NULL",
		"`table_name` varbinary(128) NOT NULL",
		"`state` varbinary(64) DEFAULT NULL",
		"`lastpk` varbinary(2000) DEFAULT NULL",
		"`table_rows` bigint NOT NULL DEFAULT '0'",
		"`rows_compared` bigint NOT NULL DEFAULT '0'",
		"`mismatch` tinyint(1) NOT NULL DEFAULT '0'",
		"`report` json DEFAULT NULL",
		"`created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP",
		"`updated_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP",
		"PRIMARY KEY (`vdiff_id`, `table_name`)",
	}},
	{"vdiff_log", []string{
		"`id` bigint NOT NULL AUTO_INCREMENT",
		"`vdiff_id` bigint NOT NULL",
		"`created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP",
		"`message` text NOT NULL",
		"PRIMARY KEY (`id`)",
		"KEY `vdiff_id_idx` (`vdiff_id`)",
	}},
}

// Tables returns the names of the sidecar tables Ensure creates, in creation order.
func Tables() []string {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	return names
}

// createDatabaseSQL creates the sidecar database with the server's default character set, as
// vttablet does.
func createDatabaseSQL(db string) string {
	return "CREATE DATABASE IF NOT EXISTS " + QuoteName(db)
}

// createTableSQL is the one CREATE statement for t in db, used by both modes (package doc,
// rules 1 and 2).
func createTableSQL(db string, t table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS ")
	b.WriteString(QuoteName(db) + "." + QuoteName(t.name))
	b.WriteString(" (\n")
	for i, d := range t.defs {
		b.WriteString("  ")
		b.WriteString(d)
		if i < len(t.defs)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	return b.String()
}
