package replication

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// waitSemiSync polls ReadSemiSync until cond holds or ctx ends.
func waitSemiSync(ctx context.Context, t *testing.T, db *sql.DB, what string, cond func(SemiSync) bool) SemiSync {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last SemiSync
	waitUntil(ctx, t, what, func() (bool, error) {
		var err error
		last, err = ReadSemiSync(ctx, db, FlavorMariaDB)
		return err == nil && cond(last), err
	})
	return last
}

func TestSemiSyncMariaDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary := mariadbtest.Start(t, mariadbtest.Options{})
	replica := mariadbtest.Start(t, mariadbtest.Options{})
	pdb, rdb := primary.RootDB(t), replica.RootDB(t)

	ss, err := ReadSemiSync(ctx, pdb, FlavorMariaDB)
	if err != nil || ss != (SemiSync{Available: true, Timeout: 10 * time.Second, WaitForReplicaCount: 1}) {
		t.Fatalf("ReadSemiSync on a fresh server = %+v, %v; want built in, off, 10s timeout", ss, err)
	}
	if err := SetSource(ctx, rdb, FlavorMariaDB, sourceOf(primary), true); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, rdb, "replication to run", func(st Status) bool { return st.Running() })

	// The replica side is turned on while its I/O thread runs: SetSemiSync
	// restarts the thread, or the primary would never count it.
	if err := SetSemiSync(ctx, pdb, FlavorMariaDB, true, false); err != nil {
		t.Fatalf("SetSemiSync(primary): %v", err)
	}
	if err := SetSemiSync(ctx, rdb, FlavorMariaDB, false, true); err != nil {
		t.Fatalf("SetSemiSync(replica): %v", err)
	}
	rs, err := ReadSemiSync(ctx, rdb, FlavorMariaDB)
	if err != nil || !rs.ReplicaEnabled || !rs.ReplicaActive || rs.PrimaryEnabled {
		t.Fatalf("replica semi-sync = %+v, %v; want replica side enabled and active", rs, err)
	}
	ps := waitSemiSync(ctx, t, pdb, "the primary to count its semi-sync replica", func(s SemiSync) bool {
		return s.PrimaryClients == 1
	})
	if !ps.PrimaryEnabled || !ps.PrimaryActive || ps.ReplicaEnabled || ps.WaitingSessions != 0 {
		t.Errorf("primary semi-sync = %+v, want primary side enabled and active", ps)
	}

	before := ackedTransactions(ctx, t, pdb)
	primary.Exec(t, "CREATE DATABASE semisync")
	if after := ackedTransactions(ctx, t, pdb); after <= before {
		t.Errorf("Rpl_semi_sync_master_yes_tx %d -> %d: the commit was not acknowledged", before, after)
	}
	checkBlockedCommit(ctx, t, primary, rdb)

	// Turning the replica side off also restarts the I/O thread.
	if err := SetSemiSync(ctx, rdb, FlavorMariaDB, false, false); err != nil {
		t.Fatal(err)
	}
	if rs, err := ReadSemiSync(ctx, rdb, FlavorMariaDB); err != nil || rs.ReplicaEnabled || rs.ReplicaActive {
		t.Errorf("replica semi-sync after disabling = %+v, %v", rs, err)
	}
	waitSemiSync(ctx, t, pdb, "the primary to lose its semi-sync replica", func(s SemiSync) bool {
		return s.PrimaryClients == 0
	})
}

// ackedTransactions returns Rpl_semi_sync_master_yes_tx.
func ackedTransactions(ctx context.Context, t *testing.T, db *sql.DB) int {
	t.Helper()
	vars, err := ReadGlobalStatusVars(ctx, db, []string{"rpl_semi_sync_master_yes_tx"})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := vars["rpl_semi_sync_master_yes_tx"]
	if !ok {
		t.Fatalf("ReadGlobalStatusVars = %v, want the name as given", vars)
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		t.Fatalf("Rpl_semi_sync_master_yes_tx = %q: %v", v, err)
	}
	return n
}

// checkBlockedCommit stops the replica's receiver, so a commit on the
// primary waits for an acknowledgement: WaitingSessions counts it until
// the receiver is back.
func checkBlockedCommit(ctx context.Context, t *testing.T, primary *mariadbtest.Server, rdb *sql.DB) {
	t.Helper()
	pdb := primary.RootDB(t)
	if _, err := pdb.ExecContext(ctx, "SET GLOBAL rpl_semi_sync_master_timeout = 120000"); err != nil {
		t.Fatal(err)
	}
	if err := StopIOThread(ctx, rdb, FlavorMariaDB); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := pdb.ExecContext(ctx, "CREATE DATABASE semisync_blocked")
		done <- err
	}()
	ps := waitSemiSync(ctx, t, pdb, "the commit to wait for an acknowledgement", func(s SemiSync) bool {
		return s.WaitingSessions == 1
	})
	if ps.Timeout != 120*time.Second {
		t.Errorf("Timeout = %v, want 120s", ps.Timeout)
	}
	if err := StartReplication(ctx, rdb, FlavorMariaDB); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked commit: %v", err)
	}
	waitSemiSync(ctx, t, pdb, "no commit to wait", func(s SemiSync) bool { return s.WaitingSessions == 0 })
}

func TestErrantGTIDsMariaDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary := mariadbtest.Start(t, mariadbtest.Options{})
	replica := mariadbtest.Start(t, mariadbtest.Options{})
	pdb, rdb := primary.RootDB(t), replica.RootDB(t)

	if err := SetSource(ctx, rdb, FlavorMariaDB, sourceOf(primary), true); err != nil {
		t.Fatal(err)
	}
	primary.Exec(t, "CREATE DATABASE errant", "CREATE TABLE errant.t (id INT PRIMARY KEY)", "INSERT INTO errant.t VALUES (1)")
	pos := primaryPos(ctx, t, pdb)
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	if err := WaitForPosition(waitCtx, rdb, FlavorMariaDB, pos); err != nil {
		t.Fatal(err)
	}
	state, err := ReadGTIDState(ctx, pdb, FlavorMariaDB)
	if err != nil || state.ServerID != primary.ServerID || state.BinlogState.String() != pos.GTIDSet() {
		t.Fatalf("ReadGTIDState(primary) = %+v, %v; want server %d, state %s", state, err, primary.ServerID, pos.GTIDSet())
	}
	if errant, err := ErrantGTIDs(ctx, rdb, FlavorMariaDB, state); err != nil || !errant.IsEmpty() {
		t.Fatalf("ErrantGTIDs(clean replica) = %q, %v; want none", errant, err)
	}

	// A local write on the replica (binlogged under its own server_id).
	replica.Exec(t, "INSERT INTO errant.t VALUES (100)")
	local := primaryPos(ctx, t, rdb)
	state, err = ReadGTIDState(ctx, pdb, FlavorMariaDB)
	if err != nil {
		t.Fatal(err)
	}
	errant, err := ErrantGTIDs(ctx, rdb, FlavorMariaDB, state)
	if err != nil {
		t.Fatal(err)
	}
	want := []ErrantRange{{Domain: 0, ServerID: replica.ServerID, After: pos.MariaDBGTIDs()[0].Sequence,
		Last: local.MariaDBGTIDs()[0].Sequence}}
	if got := errant.MariaDB(); len(got) != 1 || got[0] != want[0] || errant.String() != local.GTIDSet() {
		t.Fatalf("ErrantGTIDs(replica after a local write) = %+v (%q), want %+v (%q)", got, errant, want, local.GTIDSet())
	}
}
