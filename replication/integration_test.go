package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// errOptionPreventsStatement is ER_OPTION_PREVENTS_STATEMENT, returned for
// writes while read_only is on.
const errOptionPreventsStatement = 1290

// waitStatus polls ReplicaStatus until cond holds or ctx expires.
func waitStatus(ctx context.Context, t *testing.T, db *sql.DB, what string, cond func(Status) bool) Status {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var (
		last Status
		err  error
	)
	for {
		last, err = ReplicaStatus(ctx, db, FlavorMariaDB)
		if err == nil && cond(last) {
			return last
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: last status %+v, error %v", what, summarize(last), err)
		case <-tick.C:
		}
	}
}

// startReplication points replica at primary with MariaDB GTID replication,
// starting after the primary's current position.
func startReplication(t *testing.T, primary, replica *mariadbtest.Server, from Position) {
	t.Helper()
	replica.Exec(t,
		"STOP SLAVE",
		"RESET SLAVE ALL",
		"RESET MASTER",
		fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", from.GTIDSet()),
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='vt_repl', "+
			"MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos", primary.Port, mariadbtest.Password),
		"START SLAVE",
	)
}

func TestMariaDBReplication(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary := mariadbtest.Start(t, mariadbtest.Options{})
	replica := mariadbtest.Start(t, mariadbtest.Options{})
	pdb, rdb := primary.RootDB(t), replica.RootDB(t)

	info, err := Detect(ctx, pdb)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if info.Flavor != FlavorMariaDB || info.ServerID != primary.ServerID || info.ServerUUID != "" {
		t.Fatalf("Detect = %+v, want MariaDB with server_id %d", info, primary.ServerID)
	}

	// A server without replication reports Configured == false.
	if st, err := ReplicaStatus(ctx, pdb, info.Flavor); err != nil || st.Configured {
		t.Fatalf("ReplicaStatus(primary) = %+v, %v; want not configured", summarize(st), err)
	}

	start, err := PrimaryPosition(ctx, pdb, info.Flavor)
	if err != nil || start.Flavor() != PositionMariaDB {
		t.Fatalf("PrimaryPosition = %q, %v", start, err)
	}
	startReplication(t, primary, replica, start)

	primary.Exec(t,
		"CREATE DATABASE repltest",
		"CREATE TABLE repltest.t (id INT PRIMARY KEY)",
		"INSERT INTO repltest.t VALUES (1), (2)",
	)
	pos := checkAdvanced(ctx, t, pdb, start, primary.ServerID)

	st := waitStatus(ctx, t, rdb, "replica to catch up", func(st Status) bool {
		return st.Configured && st.IOThreadRunning && st.SQLThreadRunning && st.LagKnown && st.Position.AtLeast(pos)
	})
	if st.SourceHost != "127.0.0.1" || st.SourcePort != primary.Port || st.SourceUser != "vt_repl" ||
		!st.UsingGTID || st.SourceServerID != primary.ServerID || st.Lag < 0 ||
		!st.RelayLogPosition.AtLeast(st.Position) || st.LastIOError != "" || st.LastSQLError != "" {
		t.Errorf("caught-up status = %+v", summarize(st))
	}

	t.Logf("primary at %s, replica executed %s, relay %s, lag %v", pos, st.Position, st.RelayLogPosition, st.Lag)

	checkSQLThreadStopped(ctx, t, primary, replica)
	checkReadOnlyRoundTrip(ctx, t, rdb)
	checkReadOnlyBlocksWrites(ctx, t, primary)
}

// checkAdvanced verifies the primary's position moved past start, in the
// "MariaDB/0-<server_id>-<n>" form, and returns it.
func checkAdvanced(ctx context.Context, t *testing.T, pdb *sql.DB, start Position, serverID uint32) Position {
	t.Helper()
	pos, err := PrimaryPosition(ctx, pdb, FlavorMariaDB)
	if err != nil {
		t.Fatalf("PrimaryPosition: %v", err)
	}
	if !pos.AtLeast(start) || start.AtLeast(pos) {
		t.Fatalf("primary position %q did not advance past %q", pos, start)
	}
	prefix := "MariaDB/0-" + strconv.FormatUint(uint64(serverID), 10) + "-"
	if !strings.HasPrefix(pos.String(), prefix) {
		t.Fatalf("primary position %q, want %s<n>", pos, prefix)
	}
	gtids := pos.MariaDBGTIDs()
	if len(gtids) != 1 || gtids[0].ServerID != serverID || gtids[0].Sequence < 3 {
		t.Fatalf("primary GTIDs %v, want one domain-0 GTID from server %d with seq >= 3", gtids, serverID)
	}
	back, err := ParsePosition(pos.String())
	if err != nil || !back.Equal(pos) {
		t.Fatalf("round trip of %q = %q, %v", pos, back, err)
	}
	return pos
}

// checkSQLThreadStopped stops the replica's SQL thread: the lag becomes
// unknown, new transactions are received but not executed; then restarts it.
func checkSQLThreadStopped(ctx context.Context, t *testing.T, primary, replica *mariadbtest.Server) {
	t.Helper()
	pdb, rdb := primary.RootDB(t), replica.RootDB(t)
	replica.Exec(t, "STOP SLAVE SQL_THREAD")
	st := waitStatus(ctx, t, rdb, "SQL thread to stop", func(st Status) bool { return !st.SQLThreadRunning })
	if !st.Configured || st.LagKnown || st.Lag != 0 || !st.IOThreadRunning {
		t.Errorf("status with SQL thread stopped = %+v, want configured, IO running, lag unknown", summarize(st))
	}

	primary.Exec(t, "INSERT INTO repltest.t VALUES (3)")
	pos, err := PrimaryPosition(ctx, pdb, FlavorMariaDB)
	if err != nil {
		t.Fatalf("PrimaryPosition: %v", err)
	}
	st = waitStatus(ctx, t, rdb, "relay log to receive the insert", func(st Status) bool {
		return st.RelayLogPosition.AtLeast(pos)
	})
	if st.Position.AtLeast(pos) || st.LagKnown {
		t.Errorf("stopped applier executed %q (want < %q) or knows its lag: %+v", st.Position, pos, summarize(st))
	}

	replica.Exec(t, "START SLAVE SQL_THREAD")
	waitStatus(ctx, t, rdb, "replica to catch up again", func(st Status) bool {
		return st.SQLThreadRunning && st.LagKnown && st.Position.AtLeast(pos)
	})
}

// checkReadOnlyRoundTrip toggles read_only and reads it back.
func checkReadOnlyRoundTrip(ctx context.Context, t *testing.T, db *sql.DB) {
	t.Helper()
	for _, on := range []bool{true, false, true, false} {
		if err := SetReadOnly(ctx, db, FlavorMariaDB, on); err != nil {
			t.Fatalf("SetReadOnly(%v): %v", on, err)
		}
		got, err := ReadOnly(ctx, db)
		if err != nil || got != on {
			t.Fatalf("ReadOnly() after SetReadOnly(%v) = %v, %v", on, got, err)
		}
		info, err := Detect(ctx, db)
		if err != nil || info.ReadOnly != on || info.SuperReadOnly {
			t.Fatalf("Detect() after SetReadOnly(%v) = %+v, %v", on, info, err)
		}
	}
}

// checkReadOnlyBlocksWrites verifies that SetReadOnly(true) stops writes by
// an application account (without READ_ONLY ADMIN) and SetReadOnly(false)
// allows them again.
func checkReadOnlyBlocksWrites(ctx context.Context, t *testing.T, srv *mariadbtest.Server) {
	t.Helper()
	admin := srv.RootDB(t)
	app, err := sql.Open("mysql", srv.DSN(mariadbtest.UserApp, mariadbtest.Password, "repltest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close() })

	if err := SetReadOnly(ctx, admin, FlavorMariaDB, true); err != nil {
		t.Fatalf("SetReadOnly(true): %v", err)
	}
	_, err = app.ExecContext(ctx, "INSERT INTO t VALUES (100)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != errOptionPreventsStatement {
		t.Fatalf("write as %s with read_only on: error %v, want MySQL error %d",
			mariadbtest.UserApp, err, errOptionPreventsStatement)
	}
	if err := SetReadOnly(ctx, admin, FlavorMariaDB, false); err != nil {
		t.Fatalf("SetReadOnly(false): %v", err)
	}
	if _, err := app.ExecContext(ctx, "INSERT INTO t VALUES (101)"); err != nil {
		t.Fatalf("write as %s with read_only off: %v", mariadbtest.UserApp, err)
	}
}
