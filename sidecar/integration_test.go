package sidecar

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// pair is a primary and a replica replicating from it with MariaDB GTIDs.
type pair struct {
	primary, replica *mariadbtest.Server
	pdb, rdb         *sql.DB // root
}

func startPair(ctx context.Context, t *testing.T) *pair {
	t.Helper()
	p := &pair{primary: mariadbtest.Start(t, mariadbtest.Options{}), replica: mariadbtest.Start(t, mariadbtest.Options{})}
	p.pdb, p.rdb = p.primary.RootDB(t), p.replica.RootDB(t)
	pos, _ := gtidPositions(ctx, t, p.pdb)
	// slave_ddl_exec_mode=STRICT: MariaDB's default (IDEMPOTENT) turns a replicated CREATE TABLE
	// into CREATE OR REPLACE, which would hide a CREATE without IF NOT EXISTS; STRICT applies DDL
	// as MySQL does.
	p.replica.Exec(t,
		"STOP SLAVE", "RESET SLAVE ALL", "RESET MASTER", "SET GLOBAL slave_ddl_exec_mode = 'STRICT'",
		fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", pos),
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', "+
			"MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos", p.primary.Port, mariadbtest.UserRepl, mariadbtest.Password),
		"START SLAVE")
	return p
}

// skipAhead makes the replica continue from the primary's current position without
// applying what came before, as InitReplica does after InitPrimary.
func (p *pair) skipAhead(ctx context.Context, t *testing.T) {
	t.Helper()
	pos, _ := gtidPositions(ctx, t, p.pdb)
	p.replica.Exec(t, "STOP SLAVE", fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", pos), "START SLAVE")
}

// caughtUp waits until the replica executed everything the primary has, and checks that its
// SQL thread still runs.
func (p *pair) caughtUp(ctx context.Context, t *testing.T) {
	t.Helper()
	pos, _ := gtidPositions(ctx, t, p.pdb)
	for {
		var res int
		if err := p.rdb.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 1)", pos).Scan(&res); err != nil {
			t.Fatalf("MASTER_GTID_WAIT(%s): %v", pos, err)
		}
		if res == 0 {
			break
		}
		checkSQLThread(ctx, t, p.rdb)
	}
	checkSQLThread(ctx, t, p.rdb)
}

// checkSQLThread fails the test unless the replica's SQL thread runs without error.
func checkSQLThread(ctx context.Context, t *testing.T, db *sql.DB) {
	t.Helper()
	st := slaveStatus(ctx, t, db)
	if st["Slave_SQL_Running"] != "Yes" || st["Last_SQL_Errno"] != "0" {
		t.Fatalf("replica SQL thread: running %s, errno %s: %s", st["Slave_SQL_Running"], st["Last_SQL_Errno"], st["Last_SQL_Error"])
	}
}

func slaveStatus(ctx context.Context, t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("SHOW SLAVE STATUS: no row")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m
}

func gtidPositions(ctx context.Context, t *testing.T, db *sql.DB) (binlog, current string) {
	t.Helper()
	if err := db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos, @@global.gtid_current_pos").Scan(&binlog, &current); err != nil {
		t.Fatal(err)
	}
	return binlog, current
}

// dbaConn returns one connection as the DBA user over TCP, as the tablet has.
func dbaConn(ctx context.Context, t *testing.T, srv *mariadbtest.Server) *sql.Conn {
	t.Helper()
	db, err := sql.Open("mysql", srv.DSN(mariadbtest.UserDBA, mariadbtest.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); _ = db.Close() })
	return conn
}

func tableNames(ctx context.Context, t *testing.T, db *sql.DB, schema string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func sortedNames(s schemaDef) []string {
	var names []string
	for _, tb := range s.tables {
		names = append(names, tb.name)
	}
	slices.Sort(names)
	return names
}

// sameDefinitions checks that every table of s has the same SHOW CREATE TABLE on both servers.
func sameDefinitions(ctx context.Context, t *testing.T, a, b *sql.DB, schema string, s schemaDef) {
	t.Helper()
	for _, tb := range s.tables {
		q := "SHOW CREATE TABLE " + QuoteName(schema) + "." + QuoteName(tb.name)
		var n, da, db string
		if err := a.QueryRowContext(ctx, q).Scan(&n, &da); err != nil {
			t.Fatalf("%s on the primary: %v", q, err)
		}
		if err := b.QueryRowContext(ctx, q).Scan(&n, &db); err != nil {
			t.Fatalf("%s on the replica: %v", q, err)
		}
		if da != db {
			t.Errorf("%s.%s differs:\nprimary: %s\nreplica: %s", schema, tb.name, da, db)
		}
	}
}

func recordedVersion(ctx context.Context, t *testing.T, db *sql.DB, schema string) int {
	t.Helper()
	var v int
	err := db.QueryRowContext(ctx, "SELECT `version` FROM "+QuoteName(schema)+".`sidecar_schema` WHERE `name` = 'tabletd'").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustEnsure(ctx context.Context, t *testing.T, conn *sql.Conn, db string, mode Mode, s schemaDef) []string {
	t.Helper()
	created, err := ensure(ctx, conn, db, mode, s)
	if err != nil {
		t.Fatalf("Ensure(%s, %v, version %d): %v", db, mode, s.version, err)
	}
	return created
}

// TestEnsureOnReplicationPair runs Ensure the way the tablet does, on a real primary and
// replica, and checks the replica compatibility invariant of the package doc.
func TestEnsureOnReplicationPair(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startPair(ctx, t)
	pconn, rconn := dbaConn(ctx, t, p.primary), dbaConn(ctx, t, p.replica)

	t.Run("primary creates, replica receives", func(t *testing.T) {
		created := mustEnsure(ctx, t, pconn, "_vt", Replicated, current)
		if len(created) != 1+len(tables) {
			t.Errorf("created %q, want the database and %d tables", created, len(tables))
		}
		p.caughtUp(ctx, t)
		if got := tableNames(ctx, t, p.rdb, "_vt"); !slices.Equal(got, sortedNames(current)) {
			t.Errorf("replica's _vt tables = %q, want %q", got, sortedNames(current))
		}
		sameDefinitions(ctx, t, p.pdb, p.rdb, "_vt", current)
		if v := recordedVersion(ctx, t, p.pdb, "_vt"); v != Version {
			t.Errorf("primary's recorded version %d, want %d", v, Version)
		}
		// Rule 3: the version row is not replicated.
		if v := recordedVersion(ctx, t, p.rdb, "_vt"); v != 0 {
			t.Errorf("replica received the primary's version row (%d)", v)
		}
	})

	t.Run("second Ensure executes nothing", func(t *testing.T) {
		before, _ := gtidPositions(ctx, t, p.pdb)
		if created := mustEnsure(ctx, t, pconn, "_vt", Replicated, current); created != nil {
			t.Errorf("second Ensure created %q", created)
		}
		if after, _ := gtidPositions(ctx, t, p.pdb); after != before {
			t.Errorf("gtid_binlog_pos moved from %q to %q", before, after)
		}
	})

	t.Run("local mode on a replica that has the tables", func(t *testing.T) {
		binlog, cur := gtidPositions(ctx, t, p.rdb)
		if created := mustEnsure(ctx, t, rconn, "_vt", Local, current); created != nil {
			t.Errorf("Local Ensure created %q", created)
		}
		if v := recordedVersion(ctx, t, p.rdb, "_vt"); v != Version {
			t.Errorf("replica's own version row = %d, want %d", v, Version)
		}
		if b, c := gtidPositions(ctx, t, p.rdb); b != binlog || c != cur {
			t.Errorf("replica GTIDs moved: binlog %q -> %q, current %q -> %q", binlog, b, cur, c)
		}
		checkSessionRestored(ctx, t, rconn)
	})

	t.Run("local mode on a replica started after the primary created it", func(t *testing.T) {
		checkLocalAfterSkip(ctx, t, p, pconn, rconn)
	})

	t.Run("replicated mode refused on a read_only replica", func(t *testing.T) {
		p.replica.Exec(t, "SET GLOBAL read_only = 1")
		defer p.replica.Exec(t, "SET GLOBAL read_only = 0")
		_, err := Ensure(ctx, rconn, "_vt_refused", Replicated)
		if !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_FAILED_PRECONDITION)) {
			t.Fatalf("Ensure(Replicated) on a read_only server = %v, want FAILED_PRECONDITION", err)
		}
		if names := tableNames(ctx, t, p.rdb, "_vt_refused"); len(names) != 0 {
			t.Errorf("refused Ensure created %q", names)
		}
		// Local mode works there (the DBA user bypasses read_only) and logs nothing.
		binlog, _ := gtidPositions(ctx, t, p.rdb)
		mustEnsure(ctx, t, rconn, "_vt_ro", Local, current)
		if b, _ := gtidPositions(ctx, t, p.rdb); b != binlog {
			t.Errorf("Local Ensure on a read_only replica moved gtid_binlog_pos %q -> %q", binlog, b)
		}
	})

	t.Run("upgrade reaches a replica that created the newer tables locally", func(t *testing.T) {
		checkUpgradeOverLocalTables(ctx, t, p, pconn, rconn)
	})

	t.Run("upgrades replicate; a promoted replica re-runs them harmlessly", func(t *testing.T) {
		checkUpgradeAndPromotion(ctx, t, p, pconn, rconn)
	})
}

// checkLocalAfterSkip is InitShardPrimary's order: the primary creates the sidecar, the
// replica starts replicating after it and creates it locally; later replicated DML applies.
func checkLocalAfterSkip(ctx context.Context, t *testing.T, p *pair, pconn, rconn *sql.Conn) {
	const db = "_vt_commerce"
	p.replica.Exec(t, "STOP SLAVE")
	mustEnsure(ctx, t, pconn, db, Replicated, current)
	p.skipAhead(ctx, t)
	binlog, cur := gtidPositions(ctx, t, p.rdb)
	created := mustEnsure(ctx, t, rconn, db, Local, current)
	if len(created) != 1+len(tables) {
		t.Errorf("Local Ensure created %q, want the database and %d tables", created, len(tables))
	}
	if b, c := gtidPositions(ctx, t, p.rdb); b != binlog || c != cur {
		t.Errorf("Local Ensure moved the replica's GTIDs: binlog %q -> %q, current %q -> %q", binlog, b, cur, c)
	}
	checkSessionRestored(ctx, t, rconn)
	sameDefinitions(ctx, t, p.pdb, p.rdb, db, current)

	// What vtctld and the tablet write through replication afterwards.
	p.primary.Exec(t,
		"INSERT INTO `_vt_commerce`.reparent_journal (time_created_ns, action_name, primary_alias, replication_position) "+
			"VALUES (1700000000000000000, 'InitShardPrimary', 'zone1-0000000100', 'MariaDB/0-1-5')",
		"INSERT INTO `_vt_commerce`.heartbeat (ts, tabletUid, keyspaceShard) VALUES (1, 100, 'commerce:0') "+
			"ON DUPLICATE KEY UPDATE ts = VALUES(ts)",
		"UPDATE `_vt_commerce`.heartbeat SET ts = 2 WHERE keyspaceShard = 'commerce:0'",
		"INSERT INTO `_vt_commerce`.vreplication (workflow, source, pos, max_tps, max_replication_lag, time_updated, "+
			"transaction_timestamp, state, db_name, options) VALUES ('wf', 'keyspace:\"src\"', '', 0, 0, 1, 0, 'Stopped', "+
			"'vt_commerce', '{}')",
		"INSERT INTO `_vt_commerce`.vdiff (vdiff_uuid, workflow, keyspace, shard, db_name, state, options) "+
			"VALUES ('u1', 'wf', 'commerce', '0', 'vt_commerce', 'pending', '{\"core_options\":{}}')",
		"INSERT INTO `_vt_commerce`.vdiff_table (vdiff_id, table_name, state, report) VALUES (1, 't', 'pending', '{}')",
		"UPDATE `_vt_commerce`.vdiff_table SET rows_compared = 5 WHERE vdiff_id = 1",
		"DELETE FROM `_vt_commerce`.vreplication WHERE workflow = 'wf'",
	)
	p.caughtUp(ctx, t)
	var action string
	var rowsCompared int
	if err := p.rdb.QueryRowContext(ctx, "SELECT action_name FROM `_vt_commerce`.reparent_journal WHERE time_created_ns = 1700000000000000000").Scan(&action); err != nil || action != "InitShardPrimary" {
		t.Errorf("replicated reparent_journal row: %q, %v", action, err)
	}
	if err := p.rdb.QueryRowContext(ctx, "SELECT rows_compared FROM `_vt_commerce`.vdiff_table WHERE vdiff_id = 1").Scan(&rowsCompared); err != nil || rowsCompared != 5 {
		t.Errorf("replicated vdiff_table update: %d, %v", rowsCompared, err)
	}
}

// checkUpgradeOverLocalTables: the replica runs a newer binary (version 3) and creates the
// tables locally while the primary is at version 1; then the primary upgrades to 3. The
// replicated ALTERs and CREATEs must be no-ops on the replica (rules 2 and 4).
func checkUpgradeOverLocalTables(ctx context.Context, t *testing.T, p *pair, pconn, rconn *sql.Conn) {
	const db = "_vt_newer_replica"
	v1, v3 := current, fixtureSchema(3)
	p.replica.Exec(t, "STOP SLAVE")
	mustEnsure(ctx, t, pconn, db, Replicated, v1)
	p.skipAhead(ctx, t)
	mustEnsure(ctx, t, rconn, db, Local, v3)
	if v := recordedVersion(ctx, t, p.rdb, db); v != 3 {
		t.Errorf("replica recorded version %d, want 3", v)
	}
	created := mustEnsure(ctx, t, pconn, db, Replicated, v3)
	if want := []string{"`" + db + "`.`extra_v2`", "`" + db + "`.`resharding_journal`"}; !slices.Equal(created, want) {
		t.Errorf("primary's upgrade created/altered %q, want %q", created, want)
	}
	p.primary.Exec(t, "INSERT INTO `_vt_newer_replica`.resharding_journal (id, db_name, val, note) VALUES (1, 'vt_ks', 'j', 'n')",
		"INSERT INTO `_vt_newer_replica`.extra_v2 (id) VALUES (7)")
	p.caughtUp(ctx, t)
	sameDefinitions(ctx, t, p.pdb, p.rdb, db, v3)
	if v := recordedVersion(ctx, t, p.pdb, db); v != 3 {
		t.Errorf("primary recorded version %d, want 3", v)
	}
	var note string
	if err := p.rdb.QueryRowContext(ctx, "SELECT note FROM `_vt_newer_replica`.resharding_journal WHERE id = 1").Scan(&note); err != nil || note != "n" {
		t.Errorf("replicated row with the upgraded column: %q, %v", note, err)
	}
}

// checkUpgradeAndPromotion: tables reach the replica through replication at version 1; the
// primary upgrades to 3 and the ALTERs replicate. Then the replica is promoted (replication
// stopped) and runs Replicated Ensure itself: its own version row is missing, so it re-runs
// every upgrade, which must succeed and change nothing. Runs last: it gives the replica GTIDs
// of its own.
func checkUpgradeAndPromotion(ctx context.Context, t *testing.T, p *pair, pconn, rconn *sql.Conn) {
	const db = "_vt_upgraded"
	v3 := fixtureSchema(3)
	mustEnsure(ctx, t, pconn, db, Replicated, current)
	p.caughtUp(ctx, t)
	mustEnsure(ctx, t, pconn, db, Replicated, v3)
	p.caughtUp(ctx, t)
	sameDefinitions(ctx, t, p.pdb, p.rdb, db, v3)
	if v := recordedVersion(ctx, t, p.rdb, db); v != 0 {
		t.Errorf("replica has version row %d, want none (rule 3)", v)
	}

	p.replica.Exec(t, "STOP SLAVE")
	created := mustEnsure(ctx, t, rconn, db, Replicated, v3)
	if want := []string{"`" + db + "`.`resharding_journal`"}; !slices.Equal(created, want) {
		t.Errorf("promoted replica's Ensure altered %q, want %q", created, want)
	}
	sameDefinitions(ctx, t, p.pdb, p.rdb, db, v3)
	if v := recordedVersion(ctx, t, p.rdb, db); v != 3 {
		t.Errorf("promoted replica recorded version %d, want 3", v)
	}
	before, _ := gtidPositions(ctx, t, p.rdb)
	if created := mustEnsure(ctx, t, rconn, db, Replicated, v3); created != nil {
		t.Errorf("second Ensure on the promoted replica created %q", created)
	}
	if after, _ := gtidPositions(ctx, t, p.rdb); after != before {
		t.Errorf("second Ensure moved gtid_binlog_pos %q -> %q", before, after)
	}
}

// checkSessionRestored verifies Ensure gave the session its binary logging back.
func checkSessionRestored(ctx context.Context, t *testing.T, conn *sql.Conn) {
	t.Helper()
	var on int
	if err := conn.QueryRowContext(ctx, "SELECT @@session.sql_log_bin").Scan(&on); err != nil || on != 1 {
		t.Errorf("session sql_log_bin after Ensure = %d, %v; want 1", on, err)
	}
}
