package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// MariaDB error numbers the control tests expect.
const (
	errSlaveNotConfigured  = 1200 // ER_BAD_SLAVE: START SLAVE without CHANGE MASTER
	errWrongStringLength   = 1470 // ER_WRONG_STRING_LENGTH: value too long for MASTER_PASSWORD
	errMasterFatalReadingB = 1236 // ER_MASTER_FATAL_ERROR_READING_BINLOG
)

// sourceOf returns the parameters to replicate from srv as vt_repl.
func sourceOf(srv *mariadbtest.Server) SourceParams {
	return SourceParams{Host: srv.Host, Port: srv.Port, User: mariadbtest.UserRepl,
		Password: mariadbtest.Password, ConnectRetry: time.Second}
}

// queryValue returns the single value of query.
func queryValue(ctx context.Context, t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	var v sql.NullString
	if err := db.QueryRowContext(ctx, query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v.String
}

// waitUntil polls cond every 20ms until it holds or ctx ends.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, err)
		case <-tick.C:
		}
	}
}

// waitRunning waits until a statement holding text is visible in the
// server's process list, so a test can act while it is blocked in the
// server.
func waitRunning(ctx context.Context, t *testing.T, db *sql.DB, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	query := "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INSTR(INFO, " + quote(text) + ") > 0 " +
		"AND ID <> CONNECTION_ID()"
	waitUntil(ctx, t, "a statement with "+text+" to run", func() (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, query).Scan(&n)
		return err == nil && n > 0, err
	})
}

// primaryPos returns the server's PrimaryPosition or fails the test.
func primaryPos(ctx context.Context, t *testing.T, db *sql.DB) Position {
	t.Helper()
	pos, err := PrimaryPosition(ctx, db, FlavorMariaDB)
	if err != nil {
		t.Fatalf("PrimaryPosition: %v", err)
	}
	return pos
}

// nextGTID returns pos with domain 0's sequence increased by n: a
// position the server has not reached yet.
func nextGTID(t *testing.T, pos Position, n uint64) Position {
	t.Helper()
	gtids := pos.MariaDBGTIDs()
	if len(gtids) != 1 {
		t.Fatalf("position %s: want one domain", pos)
	}
	g := gtids[0]
	g.Sequence += n
	return mustParse(t, "MariaDB/"+g.String())
}

func TestControlReplicaLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary := mariadbtest.Start(t, mariadbtest.Options{})
	replica := mariadbtest.Start(t, mariadbtest.Options{})
	pdb, rdb := primary.RootDB(t), replica.RootDB(t)

	// Errors keep the server's errno.
	err := StartReplication(ctx, rdb, FlavorMariaDB)
	if num, _, ok := rpcerr.Errno(err); !ok || num != errSlaveNotConfigured {
		t.Fatalf("StartReplication without a source: %v, want errno %d", err, errSlaveNotConfigured)
	}

	src := sourceOf(primary)
	src.HeartbeatInterval = 500 * time.Millisecond
	if err := SetSource(ctx, rdb, FlavorMariaDB, src, true); err != nil {
		t.Fatalf("SetSource: %v", err)
	}
	primary.Exec(t, "CREATE DATABASE repltest", "CREATE TABLE repltest.t (id INT PRIMARY KEY)",
		"INSERT INTO repltest.t VALUES (1)")
	pos := primaryPos(ctx, t, pdb)
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	err = WaitForPosition(waitCtx, rdb, FlavorMariaDB, pos)
	waitCancel()
	if err != nil {
		t.Fatalf("WaitForPosition(%s): %v", pos, err)
	}
	checkCaughtUpStatus(ctx, t, pdb, rdb, primary, pos)

	t.Run("StopIOThread", func(t *testing.T) { checkStopIOThread(ctx, t, rdb) })
	t.Run("WaitForPosition", func(t *testing.T) { checkWaits(ctx, t, primary, pdb, rdb) })
	t.Run("redacted password", func(t *testing.T) { checkPasswordRedacted(ctx, t, primary, rdb) })
	t.Run("ResetReplication", func(t *testing.T) { checkResetReplication(ctx, t, rdb) })
}

// checkCaughtUpStatus verifies the status fields of a caught-up replica
// configured by SetSource.
func checkCaughtUpStatus(ctx context.Context, t *testing.T, pdb, rdb *sql.DB, primary *mariadbtest.Server, pos Position) {
	t.Helper()
	filePos, err := PrimaryFilePosition(ctx, pdb, FlavorMariaDB)
	if err != nil {
		t.Fatalf("PrimaryFilePosition: %v", err)
	}
	st := waitStatus(ctx, t, rdb, "receiver to reach the primary's coordinate", func(st Status) bool {
		return st.RelayLogSourceBinlogEquivalentPosition.Equal(filePos) && st.FilePosition.Equal(filePos)
	})
	if st.IOState != ReplicationStateRunning || st.SQLState != ReplicationStateRunning || !st.Running() ||
		st.UsingGTIDMode != "Slave_Pos" || !st.UsingGTID || st.HeartbeatInterval != 500*time.Millisecond ||
		st.ConnectRetry != time.Second || st.SourcePort != primary.Port || st.SourceUser != mariadbtest.UserRepl ||
		st.IOStateMessage == "" || st.LastIOErrno != 0 || st.LastSQLErrno != 0 || st.HasReplicationFilters ||
		!st.Position.AtLeast(pos) || !st.RelayLogPosition.AtLeast(st.Position) || st.RelayLogFilePosition.IsZero() {
		t.Errorf("status after SetSource = %+v", st)
	}
	// Gtid_IO_Pos (what the receiver got) is the relay log position.
	if !st.RelayLogPosition.Equal(pos) {
		t.Errorf("RelayLogPosition = %s, want the primary's %s", st.RelayLogPosition, pos)
	}
	ps, err := ReadPrimaryStatus(ctx, pdb, FlavorMariaDB)
	if err != nil || !ps.Position.Equal(pos) || !ps.FilePosition.Equal(filePos) || ps.ServerUUID != "" {
		t.Errorf("ReadPrimaryStatus = %+v, %v; want %s, %s, no UUID", ps, err, pos, filePos)
	}
	// A FilePos position in the source's coordinates is served by MASTER_POS_WAIT.
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := WaitForPosition(waitCtx, rdb, FlavorMariaDB, filePos); err != nil {
		t.Errorf("WaitForPosition(%s): %v", filePos, err)
	}
}

func checkStopIOThread(ctx context.Context, t *testing.T, rdb *sql.DB) {
	if err := StopIOThread(ctx, rdb, FlavorMariaDB); err != nil {
		t.Fatalf("StopIOThread: %v", err)
	}
	st, err := ReplicaStatus(ctx, rdb, FlavorMariaDB)
	if err != nil {
		t.Fatal(err)
	}
	if st.IOState != ReplicationStateStopped || st.IOThreadState != "No" || st.SQLState != ReplicationStateRunning ||
		!st.SQLThreadRunning || !st.Configured || !st.ReplicationLagUnknown() {
		t.Errorf("status after StopIOThread = %+v, want IO stopped, SQL running, lag unknown", summarize(st))
	}
	if err := StartReplication(ctx, rdb, FlavorMariaDB); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	waitStatus(ctx, t, rdb, "both threads to run", func(st Status) bool { return st.Running() })
}

func checkWaits(ctx context.Context, t *testing.T, primary *mariadbtest.Server, pdb, rdb *sql.DB) {
	pos := primaryPos(ctx, t, pdb)
	future := nextGTID(t, pos, 1)

	t.Run("timeout", func(t *testing.T) {
		waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := WaitForPosition(waitCtx, rdb, FlavorMariaDB, future)
		if !errors.Is(err, context.DeadlineExceeded) || rpcerr.Code(err) != vtrpcpb.Code_DEADLINE_EXCEEDED {
			t.Fatalf("WaitForPosition(%s) = %v, want DEADLINE_EXCEEDED", future, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		waitCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		never := nextGTID(t, pos, 1000)
		go func() { done <- WaitForPosition(waitCtx, rdb, FlavorMariaDB, never) }()
		waitRunning(ctx, t, rdb, "MASTER_GTID_WAIT('"+never.GTIDSet()+"'")
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled WaitForPosition = %v, want context.Canceled", err)
		}
	})
	t.Run("other flavor", func(t *testing.T) {
		other := mustParse(t, "MySQL56/"+uuidA+":1-5")
		if err := WaitForPosition(ctx, rdb, FlavorMariaDB, other); !errors.Is(err, ErrPositionFlavor) {
			t.Fatalf("WaitForPosition(%s) = %v, want ErrPositionFlavor", other, err)
		}
	})
	t.Run("reached later", func(t *testing.T) {
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute) // several slices
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- WaitForPosition(waitCtx, rdb, FlavorMariaDB, future) }()
		waitRunning(ctx, t, rdb, "MASTER_GTID_WAIT('"+future.GTIDSet()+"'")
		primary.Exec(t, "INSERT INTO repltest.t VALUES (2)")
		if err := <-done; err != nil {
			t.Fatalf("WaitForPosition(%s) after the write: %v", future, err)
		}
	})
	t.Run("own writes of a primary", func(t *testing.T) {
		// MASTER_GTID_WAIT watches gtid_slave_pos only and would time out here.
		own := primaryPos(ctx, t, pdb)
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := WaitForPosition(waitCtx, pdb, FlavorMariaDB, own); err != nil {
			t.Fatalf("WaitForPosition on the primary for its own %s: %v", own, err)
		}
	})
	t.Run("file position without replication", func(t *testing.T) {
		if err := StopReplication(ctx, rdb, FlavorMariaDB); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := StartReplication(ctx, rdb, FlavorMariaDB); err != nil {
				t.Error(err)
			}
		}()
		fp := mustParse(t, "FilePos/mysql-bin.000001:4")
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := WaitForPosition(waitCtx, rdb, FlavorMariaDB, fp); !errors.Is(err, ErrNotReplicating) {
			t.Fatalf("WaitForPosition(%s) with replication stopped = %v, want ErrNotReplicating", fp, err)
		}
	})
}

// checkPasswordRedacted makes the server quote the password in an error
// (MariaDB echoes the first 64 characters of a too-long MASTER_PASSWORD).
func checkPasswordRedacted(ctx context.Context, t *testing.T, primary *mariadbtest.Server, rdb *sql.DB) {
	src := sourceOf(primary)
	src.Password = strings.Repeat("Secret-", 30)
	err := SetSource(ctx, rdb, FlavorMariaDB, src, true)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != errWrongStringLength {
		t.Fatalf("SetSource with a 210-byte password = %v, want errno %d", err, errWrongStringLength)
	}
	for _, text := range []string{err.Error(), rpcerr.FromMySQL(err, "SetReplicationSource").Error()} {
		if strings.Contains(text, "Secret") || !strings.Contains(text, redactedSecret) {
			t.Errorf("error text leaks the password or lacks the redaction mark: %s", text)
		}
	}
	// The failed CHANGE MASTER left replication stopped and the old source in place.
	if err := SetSource(ctx, rdb, FlavorMariaDB, sourceOf(primary), true); err != nil {
		t.Fatal(err)
	}
}

func checkResetReplication(ctx context.Context, t *testing.T, rdb *sql.DB) {
	if err := SetSemiSync(ctx, rdb, FlavorMariaDB, true, true); err != nil {
		t.Fatal(err)
	}
	if err := ResetReplication(ctx, rdb, FlavorMariaDB); err != nil {
		t.Fatalf("ResetReplication: %v", err)
	}
	if pos := primaryPos(ctx, t, rdb); !pos.IsEmpty() || pos.Flavor() != PositionMariaDB {
		t.Errorf("position after ResetReplication = %q, want MariaDB/", pos)
	}
	if v := queryValue(ctx, t, rdb, "SELECT @@global.gtid_slave_pos"); v != "" {
		t.Errorf("gtid_slave_pos after ResetReplication = %q, want empty", v)
	}
	if st, err := ReplicaStatus(ctx, rdb, FlavorMariaDB); err != nil || st.Configured {
		t.Errorf("ReplicaStatus after ResetReplication = %+v, %v; want not configured", summarize(st), err)
	}
	ss, err := ReadSemiSync(ctx, rdb, FlavorMariaDB)
	if err != nil || !ss.Available || ss.PrimaryEnabled || ss.ReplicaEnabled {
		t.Errorf("semi-sync after ResetReplication = %+v, %v; want available and off", ss, err)
	}
}

func TestSetReplicationPositionAndDemotedPrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oldPrimary := mariadbtest.Start(t, mariadbtest.Options{})
	newPrimary := mariadbtest.Start(t, mariadbtest.Options{})
	odb, ndb := oldPrimary.RootDB(t), newPrimary.RootDB(t)

	schema := []string{"CREATE DATABASE repltest", "CREATE TABLE repltest.t (id INT PRIMARY KEY)"}
	oldPrimary.Exec(t, append(schema, "INSERT INTO repltest.t VALUES (1), (2)")...)
	start := primaryPos(ctx, t, odb)

	// A restore: the data arrives without binlogs, the position is set.
	newPrimary.Exec(t, append([]string{"SET sql_log_bin = 0"}, append(schema, "INSERT INTO repltest.t VALUES (1), (2)")...)...)
	checkSetReplicationPosition(ctx, t, ndb, start)
	if err := SetSource(ctx, ndb, FlavorMariaDB, sourceOf(oldPrimary), true); err != nil {
		t.Fatalf("SetSource: %v", err)
	}
	oldPrimary.Exec(t, "INSERT INTO repltest.t VALUES (3)")
	last := primaryPos(ctx, t, odb)
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	if err := WaitForPosition(waitCtx, ndb, FlavorMariaDB, last); err != nil {
		t.Fatalf("WaitForPosition: %v", err)
	}

	// Planned reparent: the old primary stops writing, the replica is promoted and writes.
	if err := SetReadOnly(ctx, odb, FlavorMariaDB, true); err != nil {
		t.Fatal(err)
	}
	if err := ResetReplicationParameters(ctx, ndb, FlavorMariaDB); err != nil {
		t.Fatalf("ResetReplicationParameters: %v", err)
	}
	if st, err := ReplicaStatus(ctx, ndb, FlavorMariaDB); err != nil || st.Configured {
		t.Fatalf("promoted replica status = %+v, %v; want not configured", summarize(st), err)
	}
	newPrimary.Exec(t, "INSERT INTO repltest.t VALUES (4)")
	newPos := primaryPos(ctx, t, ndb)

	checkDemotedPrimaryPreconditions(ctx, t, oldPrimary, newPrimary)
	if err := SetSource(ctx, odb, FlavorMariaDB, sourceOf(newPrimary), true); err != nil {
		t.Fatalf("SetSource on the demoted primary: %v", err)
	}
	catchUp, catchUpCancel := context.WithTimeout(ctx, 30*time.Second)
	defer catchUpCancel()
	st := waitStatus(catchUp, t, odb, "demoted primary to catch up", func(st Status) bool {
		return st.Running() && st.Position.AtLeast(newPos)
	})
	if st.LastIOErrno != 0 || st.LastSQLErrno != 0 || !st.Position.Equal(newPos) {
		t.Errorf("demoted primary status = %+v, want no errors and position %s", st, newPos)
	}
	// No missing and no duplicate transaction: both servers hold the same
	// binlog position and the same rows.
	if got := primaryPos(ctx, t, odb); !got.Equal(newPos) {
		t.Errorf("demoted primary binlog position %s, want %s", got, newPos)
	}
	for _, db := range []*sql.DB{odb, ndb} {
		if v := queryValue(ctx, t, db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM repltest.t"); v != "1,2,3,4" {
			t.Errorf("rows = %s, want 1,2,3,4", v)
		}
	}
}

// checkSetReplicationPosition sets db's position to pos and checks the
// server variables; a position of the other flavor changes nothing.
func checkSetReplicationPosition(ctx context.Context, t *testing.T, db *sql.DB, pos Position) {
	t.Helper()
	if err := SetReplicationPosition(ctx, db, FlavorMariaDB, pos); err != nil {
		t.Fatalf("SetReplicationPosition(%s): %v", pos, err)
	}
	for _, v := range []string{"gtid_slave_pos", "gtid_binlog_state", "gtid_binlog_pos"} {
		if got := queryValue(ctx, t, db, "SELECT @@global."+v); got != pos.GTIDSet() {
			t.Errorf("%s after SetReplicationPosition = %q, want %q", v, got, pos.GTIDSet())
		}
	}
	other := mustParse(t, "MySQL56/"+uuidA+":1-5")
	if err := SetReplicationPosition(ctx, db, FlavorMariaDB, other); !errors.Is(err, ErrPositionFlavor) {
		t.Errorf("SetReplicationPosition(%s) = %v, want ErrPositionFlavor", other, err)
	}
	if got := primaryPos(ctx, t, db); !got.Equal(pos) {
		t.Errorf("position after a refused SetReplicationPosition = %s, want %s", got, pos)
	}
}

// checkDemotedPrimaryPreconditions shows the situation SetSource must fix:
// the demoted primary's gtid_slave_pos lacks its own writes, and the new
// primary's binlog does not hold them (its history starts at the restored
// position), so connecting with the stale gtid_slave_pos fails. It also
// checks that the demoted primary has no errant GTID.
func checkDemotedPrimaryPreconditions(ctx context.Context, t *testing.T, oldPrimary, newPrimary *mariadbtest.Server) {
	t.Helper()
	odb, ndb := oldPrimary.RootDB(t), newPrimary.RootDB(t)
	slavePos := mustParse(t, "MariaDB/"+queryValue(ctx, t, odb, "SELECT @@global.gtid_slave_pos"))
	if own := primaryPos(ctx, t, odb); slavePos.AtLeast(own) {
		t.Fatalf("demoted primary's gtid_slave_pos %s already holds its writes %s", slavePos, own)
	}
	state, err := ReadGTIDState(ctx, ndb, FlavorMariaDB)
	if err != nil {
		t.Fatal(err)
	}
	if errant, err := ErrantGTIDs(ctx, odb, FlavorMariaDB, state); err != nil || !errant.IsEmpty() {
		t.Fatalf("ErrantGTIDs(demoted primary) = %q, %v; want none", errant, err)
	}
	// What MASTER_USE_GTID=slave_pos without the fix does.
	oldPrimary.Exec(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', "+
		"MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos", newPrimary.Port, mariadbtest.UserRepl, mariadbtest.Password),
		"START SLAVE")
	waitStatus(ctx, t, odb, "stale gtid_slave_pos to be refused", func(st Status) bool {
		return st.LastIOErrno == errMasterFatalReadingB
	})
	if err := StopReplication(ctx, odb, FlavorMariaDB); err != nil {
		t.Fatal(err)
	}
}
