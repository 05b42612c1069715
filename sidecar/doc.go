// Package sidecar creates and versions the Vitess sidecar database (`_vt` by default, one per
// keyspace: Keyspace.sidecar_db_name) and its tables, with the column names, types and keys of
// Vitess v23, so that vtctld's SQL against them works unchanged.
//
// Ensure is the one entry point. It reads information_schema first and executes only the DDL
// that is missing, so a call on a current schema executes nothing and writes nothing to the
// binary log (CREATE TABLE IF NOT EXISTS on an existing table would still be logged and take a
// GTID). It runs in one of two modes:
//
//   - Replicated, on a primary: missing objects are created with binary logging on, so the
//     replicas receive them; upgrades (ALTERs of a later schema version) run here, in order.
//     Refused on a read_only server: a replica must never write with binlogging on (under
//     gtid_strict_mode a local GTID later breaks its SQL thread).
//   - Local, on a replica: missing objects are created on the caller's session with
//     sql_log_bin=0, leaving gtid_binlog_pos and gtid_current_pos unchanged. This is for a
//     replica that starts replicating from a position after the primary created the sidecar
//     (InitShardPrimary: InitReplica starts from the position InitPrimary read). Run it before
//     the replica starts replicating: a replicated row event for a table the replica does not
//     have yet (the primary's heartbeat, PopulateReparentJournal's INSERT) stops the SQL thread
//     with errno 1146. Local mode never upgrades.
//
// # Replica compatibility invariant
//
// Row-based replication applies the primary's row images to the replica's tables, so a table a
// replica created locally must be identical to the primary's, and no replicated statement may
// fail on an object the replica already has. The rules that guarantee it:
//
//  1. Both modes build their DDL from the same definitions (createTableSQL), byte for byte.
//  2. Every CREATE carries IF NOT EXISTS: a primary's replicated CREATE is a no-op on a replica
//     that created the object locally (for example a replica running a newer tabletd). MariaDB's
//     default slave_ddl_exec_mode=IDEMPOTENT would otherwise turn it into CREATE OR REPLACE
//     (dropping the replica's rows); MySQL, and MariaDB in STRICT mode, would stop the SQL
//     thread with errno 1050.
//  3. The version row (table sidecar_schema) is per server: it is always written with
//     sql_log_bin=0 and never replicated, because a replicated row event (Write_rows) would hit
//     a duplicate key on a replica that inserted its own row. It records how far Ensure brought
//     this server; a replica's row may be lower than its real schema (upgrades it received
//     through replication are not counted), never higher.
//  4. Upgrades run only in Replicated mode and each upgrade statement must be a no-op on a table
//     that already has its target shape, on both flavors, because the same ALTER can reach a
//     table that already has it: a replica that created the table locally at a newer version,
//     a replica promoted to primary re-running upgrades past its (lower) recorded version, or a
//     primary that crashed between an ALTER and its version write. On MariaDB this means the
//     IF [NOT] EXISTS clauses (ADD COLUMN IF NOT EXISTS, ADD INDEX IF NOT EXISTS, DROP COLUMN IF
//     EXISTS, …); MySQL has no such clauses for columns and indexes, so on MySQL an upgrade may
//     only use forms that are idempotent by nature (MODIFY COLUMN with the full definition,
//     ALTER COLUMN … SET/DROP DEFAULT). checkUpgrade enforces these forms; the tests apply it
//     to every upgrade.
//  5. Tables that exist without a version row (created by vttablet v23, or by an interrupted
//     Ensure) are taken to be at version 1, which is Vitess v23's definition.
//
// A failed Ensure leaves a prefix of its DDL applied (DDL is not transactional) and no version
// change; calling it again completes the work.
package sidecar
