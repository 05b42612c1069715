package replication

import (
	"context"
	"fmt"
)

// Replication thread control. MariaDB keeps the master/slave statements;
// MySQL 8.0.22+ and 8.4 use the REPLICA/SOURCE ones (8.4 removed the old
// spellings), and MySQL 8.0 servers too old for them fall back to the old
// spelling (see statement). Every statement here changes global state, so
// any connection of a pool will do.

// stopStatement stops both replication threads.
func stopStatement(flavor Flavor) statement {
	if flavor.IsMariaDB() {
		return statement{sql: "STOP SLAVE"}
	}
	return statement{sql: "STOP REPLICA", legacy: "STOP SLAVE"}
}

// startStatement starts both replication threads.
func startStatement(flavor Flavor) statement {
	if flavor.IsMariaDB() {
		return statement{sql: "START SLAVE"}
	}
	return statement{sql: "START REPLICA", legacy: "START SLAVE"}
}

// stopIOStatement stops the receiver (I/O) thread only.
func stopIOStatement(flavor Flavor) statement {
	if flavor.IsMariaDB() {
		return statement{sql: "STOP SLAVE IO_THREAD"}
	}
	return statement{sql: "STOP REPLICA IO_THREAD", legacy: "STOP SLAVE IO_THREAD"}
}

// startIOStatement starts the receiver (I/O) thread only.
func startIOStatement(flavor Flavor) statement {
	if flavor.IsMariaDB() {
		return statement{sql: "START SLAVE IO_THREAD"}
	}
	return statement{sql: "START REPLICA IO_THREAD", legacy: "START SLAVE IO_THREAD"}
}

// resetAllStatement forgets the source connection (host, port, user) and
// the relay logs, keeping binary logs and GTIDs.
func resetAllStatement(flavor Flavor) statement {
	if flavor.IsMariaDB() {
		return statement{sql: "RESET SLAVE ALL"}
	}
	return statement{sql: "RESET REPLICA ALL", legacy: "RESET SLAVE ALL"}
}

// resetBinlogsStatement deletes the binary logs and empties the server's
// own GTID history (MariaDB gtid_binlog_state, MySQL gtid_executed and
// gtid_purged). MySQL 8.4 removed RESET MASTER.
func resetBinlogsStatement(flavor Flavor) statement {
	if flavor == FlavorMySQL84 {
		return statement{sql: "RESET BINARY LOGS AND GTIDS"}
	}
	return statement{sql: "RESET MASTER"}
}

// StopReplication stops both replication threads (MariaDB STOP SLAVE, MySQL
// STOP REPLICA). Stopping stopped or unconfigured replication succeeds.
func StopReplication(ctx context.Context, q Querier, flavor Flavor) error {
	if err := flavor.check(); err != nil {
		return err
	}
	return execStatement(ctx, q, flavor, stopStatement(flavor))
}

// StopIOThread stops the receiver thread only, leaving the applier to
// finish the relay log (what EmergencyReparentShard asks of replicas).
func StopIOThread(ctx context.Context, q Querier, flavor Flavor) error {
	if err := flavor.check(); err != nil {
		return err
	}
	return execStatement(ctx, q, flavor, stopIOStatement(flavor))
}

// StartReplication starts both replication threads. A server with no source
// configured returns the server's error (errno 1200 on MariaDB, 3081/1200
// on MySQL).
func StartReplication(ctx context.Context, q Querier, flavor Flavor) error {
	if err := flavor.check(); err != nil {
		return err
	}
	return execStatement(ctx, q, flavor, startStatement(flavor))
}

// startUntilStatement starts replication until pos has been applied.
func startUntilStatement(flavor Flavor, pos Position) statement {
	set := quote(pos.GTIDSet())
	if flavor.IsMariaDB() {
		return statement{sql: "START SLAVE UNTIL master_gtid_pos = " + set}
	}
	return statement{sql: "START REPLICA UNTIL SQL_AFTER_GTIDS = " + set,
		legacy: "START SLAVE UNTIL SQL_AFTER_GTIDS = " + set}
}

// StartReplicationUntilAfter starts replication and stops the applier once
// every transaction of pos has been applied (MariaDB START SLAVE UNTIL
// master_gtid_pos, MySQL START REPLICA UNTIL SQL_AFTER_GTIDS). pos must be
// a non-empty GTID position of the server's flavor (ErrPositionFlavor
// otherwise, ErrInvalidPosition for an empty one).
func StartReplicationUntilAfter(ctx context.Context, q Querier, flavor Flavor, pos Position) error {
	if err := checkGTIDPosition(flavor, pos); err != nil {
		return err
	}
	if pos.IsEmpty() {
		return fmt.Errorf("%w: START ... UNTIL needs a position with at least one GTID", ErrInvalidPosition)
	}
	return execStatement(ctx, q, flavor, startUntilStatement(flavor, pos))
}

// checkGTIDPosition verifies flavor and that pos is a GTID position (zero
// allowed) of the server's encoding.
func checkGTIDPosition(flavor Flavor, pos Position) error {
	if err := flavor.check(); err != nil {
		return err
	}
	if !pos.IsZero() && pos.Flavor() != flavor.PositionFlavor() {
		return fmt.Errorf("%w: %s position %q given to a %v server (want %s)",
			ErrPositionFlavor, pos.Flavor(), pos, flavor, flavor.PositionFlavor())
	}
	return nil
}

// resetReplicationStatements returns what ResetReplication runs, given the
// server's semi-sync variables.
func resetReplicationStatements(flavor Flavor, names semiSyncNames) []statement {
	stmts := []statement{stopStatement(flavor), resetAllStatement(flavor), resetBinlogsStatement(flavor)}
	if flavor.IsMariaDB() {
		// RESET MASTER first: with gtid_strict_mode, gtid_slave_pos may not
		// be set behind the binary log (errno 1947/1948).
		stmts = append(stmts, statement{sql: "SET GLOBAL gtid_slave_pos = ''"})
	}
	if off, ok := names.setStatement(false, false); ok {
		stmts = append(stmts, off)
	}
	return stmts
}

// ResetReplication makes the server a blank slate, as Vitess's
// ResetReplication does: replication stopped, the source forgotten (RESET
// SLAVE ALL / RESET REPLICA ALL), binary logs and GTID history deleted
// (RESET MASTER; RESET BINARY LOGS AND GTIDS on 8.4), on MariaDB
// gtid_slave_pos emptied, and semi-sync turned off on both sides where it
// is available (the reparent that follows turns on what it needs). The
// server's position is empty afterwards.
func ResetReplication(ctx context.Context, q Querier, flavor Flavor) error {
	if err := flavor.check(); err != nil {
		return err
	}
	names, err := readSemiSyncNames(ctx, q, flavor)
	if err != nil {
		return err
	}
	return execStatements(ctx, q, flavor, resetReplicationStatements(flavor, names))
}

// ResetReplicationParameters stops replication and forgets the source
// connection (RESET SLAVE ALL / RESET REPLICA ALL), keeping the binary logs
// and every GTID position.
func ResetReplicationParameters(ctx context.Context, q Querier, flavor Flavor) error {
	if err := flavor.check(); err != nil {
		return err
	}
	return execStatements(ctx, q, flavor, []statement{stopStatement(flavor), resetAllStatement(flavor)})
}

// setPositionStatements returns what SetReplicationPosition runs.
func setPositionStatements(flavor Flavor, pos Position) []statement {
	stmts := []statement{stopStatement(flavor), resetBinlogsStatement(flavor)}
	set := quote(pos.GTIDSet())
	if flavor.IsMariaDB() {
		// Order matters on MariaDB 10.11 (checked on the server): RESET
		// MASTER first, because gtid_binlog_state can only be set on an
		// empty binary log (errno 1956) and, under gtid_strict_mode,
		// gtid_slave_pos may not be set behind the binary log (1947/1948).
		// gtid_slave_pos says where replication resumes; gtid_binlog_state
		// makes this server able to serve replicas that start at exactly
		// pos should it become primary (without it, strict mode refuses a
		// replica asking for a GTID the binary log has never seen).
		stmts = append(stmts, statement{sql: "SET GLOBAL gtid_slave_pos = " + set})
		if !pos.IsEmpty() {
			stmts = append(stmts, statement{sql: "SET GLOBAL gtid_binlog_state = " + set})
		}
		return stmts
	}
	if !pos.IsEmpty() {
		// gtid_purged can only be set while gtid_executed is empty, hence
		// the reset before it.
		stmts = append(stmts, statement{sql: "SET GLOBAL gtid_purged = " + set})
	}
	return stmts
}

// SetReplicationPosition makes the server's position exactly pos, as after
// a restore: replication is stopped (and left stopped), the binary logs are
// reset, then MariaDB gets gtid_slave_pos = gtid_binlog_state = pos and
// MySQL gtid_purged = pos. pos must be a GTID position of the server's
// flavor (ErrPositionFlavor otherwise); the zero or an empty position
// leaves the server with an empty position.
func SetReplicationPosition(ctx context.Context, q Querier, flavor Flavor, pos Position) error {
	if err := checkGTIDPosition(flavor, pos); err != nil {
		return err
	}
	return execStatements(ctx, q, flavor, setPositionStatements(flavor, pos))
}
