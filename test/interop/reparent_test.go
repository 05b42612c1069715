//go:build interop

package interop

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// semiSyncArgs are the MariaDB settings Vitess's mariadb10.cnf gives every server: with
// semi-sync on, a commit waits for a replica's ack and never falls back to asynchronous
// replication (the timeout is an hour here), and the binlog is synced before the ack is
// waited for (AFTER_SYNC), so an acknowledged write is on a replica before the client hears
// of it.
var semiSyncArgs = []string{"--rpl-semi-sync-master-timeout=3600000", "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
	"--rpl-semi-sync-master-wait-no-slave=ON", "--read-only"}

// crashRecoveryArgs restart a killed semi-sync primary as MariaDB recommends: it truncates
// from its binlog the transactions no replica acknowledged (they were never acknowledged to a
// client either), so it can rejoin the shard as a replica of the new primary. And, as with
// Vitess's my.cnf (semiSyncArgs), mysqld starts read-only: nothing writes to it until its
// tablet has checked the shard record (here: it steps down).
var crashRecoveryArgs = []string{"--init-rpl-role=SLAVE", "--rpl-semi-sync-slave-enabled=ON"}

// shardTablet is one MariaDB with its tabletd.
type shardTablet struct {
	uid   int
	alias string // zone1-0000000101
	db    *mariadbtest.Server
	root  *sql.DB
	tab   *tabletd
	// vttablet: a Vitess vttablet runs beside this MariaDB (it never makes a MariaDB replica
	// read-only: it sets super_read_only, which MariaDB lacks).
	vttablet bool
}

// startTabletdAs starts tabletd as zone1-<uid> in keyspace commerce, shard 0, on db.
func (c *cluster) startTabletdAs(uid int, db *mariadbtest.Server, initType string, extra ...string) *tabletd {
	t := c.t
	t.Helper()
	tab := &tabletd{grpcPort: freePort(t), httpPort: freePort(t), exited: make(chan error, 1)}
	args := append(c.topoFlags(), "--tablet-path", fmt.Sprintf("zone1-%d", uid), "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", "commerce", "--init-shard", "0", "--init-tablet-type", initType,
		"--db-host", "127.0.0.1", "--db-port", fmt.Sprint(db.Port),
		"--db-dba-user", "vt_dba", "--db-dba-password", mariadbtest.Password,
		"--db-app-user", "vt_app", "--db-app-password", mariadbtest.Password,
		"--db-repl-user", "vt_repl", "--db-repl-password", mariadbtest.Password,
		"--port", fmt.Sprint(tab.httpPort), "--grpc-port", fmt.Sprint(tab.grpcPort),
		"--service-map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
		"--health-check-interval", healthInterval.String())
	args = append(args, extra...)
	tab.cmd = exec.Command(c.tabletd, args...)
	logName := filepath.Join(c.dir, fmt.Sprintf("tabletd-%d.log", uid))
	logf, _ := os.Create(logName)
	tab.cmd.Stdout, tab.cmd.Stderr = logf, logf
	tab.started = time.Now()
	if err := tab.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tab.exited <- tab.cmd.Wait() }()
	t.Cleanup(func() {
		_ = tab.cmd.Process.Kill()
		<-tab.exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logName)
			t.Logf("tabletd zone1-%d log (tail):\n%s", uid, tail(b, 8000))
		}
	})
	return tab
}

// newShard starts n MariaDB servers, each with a tabletd as REPLICA, and waits until vtctld
// lists them all.
func (c *cluster) newShard(n int, mysqlArgs []string, tabletArgs ...string) []*shardTablet {
	c.t.Helper()
	var ts []*shardTablet
	for i := 0; i < n; i++ {
		uid := 101 + i
		db := mariadbtest.Start(c.t, mariadbtest.Options{ExtraArgs: mysqlArgs})
		st := &shardTablet{uid: uid, alias: fmt.Sprintf("zone1-%010d", uid), db: db, root: db.RootDB(c.t)}
		st.tab = c.startTabletdAs(uid, db, "REPLICA", tabletArgs...)
		ts = append(ts, st)
	}
	eventually(c.t, 60*time.Second, "GetTablets lists the shard", func() bool {
		out, err := c.tryCtl("GetTablets", "--keyspace", "commerce")
		return err == nil && strings.Count(out, "commerce 0 ") == n
	})
	return ts
}

// primaryOf returns the tablet the shard record names as primary (a dead old primary may
// still call itself PRIMARY in its own record for a while).
func (c *cluster) primaryOf(ts []*shardTablet) *shardTablet {
	c.t.Helper()
	out := c.ctl("GetShard", "commerce/0")
	m := regexp.MustCompile(`"primary_alias":\s*\{[^}]*"uid":\s*(\d+)`).FindStringSubmatch(out)
	if m == nil {
		c.t.Fatalf("no primary in the shard record:\n%s", out)
	}
	for _, st := range ts {
		if fmt.Sprint(st.uid) == m[1] {
			return st
		}
	}
	c.t.Fatalf("the shard names uid %s, not a tablet of this test:\n%s", m[1], out)
	return nil
}

// replicaState is what MariaDB itself says about a tablet's replication and read-only mode.
type replicaState struct {
	sourcePort            int
	ioRunning, sqlRunning string
	readOnly              bool
	lastError             string
}

func (st *shardTablet) mysqlState(t *testing.T) replicaState {
	t.Helper()
	var s replicaState
	if err := st.root.QueryRow("SELECT @@global.read_only").Scan(&s.readOnly); err != nil {
		t.Fatalf("%s: read_only: %v", st.alias, err)
	}
	rows, err := st.root.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatalf("%s: SHOW SLAVE STATUS: %v", st.alias, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, col := range cols {
			switch col {
			case "Master_Port":
				fmt.Sscan(vals[i].String, &s.sourcePort)
			case "Slave_IO_Running":
				s.ioRunning = vals[i].String
			case "Slave_SQL_Running":
				s.sqlRunning = vals[i].String
			case "Last_Error":
				s.lastError = vals[i].String
			}
		}
	}
	return s
}

// waitReplicating waits until every tablet but the primary replicates from it, read-only.
func waitReplicating(t *testing.T, primary *shardTablet, ts []*shardTablet) {
	t.Helper()
	for _, st := range ts {
		if st == primary {
			continue
		}
		var last replicaState
		eventually(t, 30*time.Second, st.alias+" replicates from "+primary.alias, func() bool {
			last = st.mysqlState(t)
			return last.sourcePort == primary.db.Port && last.ioRunning == "Yes" && last.sqlRunning == "Yes" &&
				(last.readOnly || st.vttablet)
		})
	}
	if s := primary.mysqlState(t); (s.readOnly && !primary.vttablet) || s.sourcePort != 0 {
		t.Fatalf("primary %s: read_only=%v, replicating from port %d", primary.alias, s.readOnly, s.sourcePort)
	}
}

// writer inserts rows through vtgate one after another and records every acknowledged id
// with the time it was acknowledged.
type writer struct {
	db     *sql.DB
	mu     sync.Mutex
	acked  []int64
	ackAt  []time.Time
	errors []string
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(t *testing.T, c *cluster) *writer {
	db, err := sql.Open("mysql", fmt.Sprintf("user@tcp(127.0.0.1:%d)/commerce", c.vtgateMySQLPort))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	w := &writer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for id := int64(1); ; id++ {
			select {
			case <-w.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := db.ExecContext(ctx, "INSERT INTO writes (id, note) VALUES (?, 'w')", id)
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked, w.ackAt = append(w.acked, id), append(w.ackAt, time.Now())
			} else {
				w.errors = append(w.errors, fmt.Sprintf("%s id %d: %v", time.Now().Format("15:04:05.000"), id, err))
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond) // a failed write: do not spin
			}
		}
	}()
	t.Cleanup(func() { w.halt(); db.Close() })
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcks waits until n more writes than now are acknowledged.
func (w *writer) waitAcks(t *testing.T, n int, what string) {
	t.Helper()
	target := w.count() + n
	eventually(t, 60*time.Second, what, func() bool { return w.count() >= target })
}

// longestGap is the longest time between two acknowledged writes (or from since to the first
// one) in [since, until]: the write unavailability clients saw.
func (w *writer) longestGap(since, until time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, gap := since, time.Duration(0)
	for _, at := range w.ackAt {
		if at.Before(since) {
			continue
		}
		if at.After(until) {
			break
		}
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return gap
}

// checkNoLoss asserts that every acknowledged id is in the writes table of db.
func (w *writer) checkNoLoss(t *testing.T, st *shardTablet) {
	t.Helper()
	w.mu.Lock()
	acked := append([]int64(nil), w.acked...)
	w.mu.Unlock()
	have := map[int64]bool{}
	rows, err := st.root.Query("SELECT id FROM vt_commerce.writes")
	if err != nil {
		t.Fatalf("%s: reading writes: %v", st.alias, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	var lost []int64
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost on %s (of %d acknowledged): %v", len(lost), st.alias, len(acked), lost[:min(len(lost), 20)])
	}
	t.Logf("%s holds all %d acknowledged writes (%d rows)", st.alias, len(acked), len(have))
}

// TestReparentMariaDB is the reparent life of a three-tablet MariaDB shard driven by an
// unmodified vtctld, with a writer through vtgate (buffering on) counting every
// acknowledged write: InitShardPrimary, PlannedReparentShard with --new-primary and
// --avoid-primary, semi-sync by durability policy, kill -9 of the primary's mariadbd and
// EmergencyReparentShard, the old primary rejoining by ReparentTablet — zero acknowledged
// writes lost at every step. vttablet v23 fails at the first PRS on MariaDB.
func TestReparentMariaDB(t *testing.T) {
	c := newCluster(t, "--enable-buffer", "--buffer-window", "20s", "--buffer-size", "10000",
		"--buffer-min-time-between-failovers", "1s", "--buffer-max-failover-duration", "20s")
	ts := c.newShard(3, semiSyncArgs)

	// InitShardPrimary on a fresh shard (vtctld needs --force): the others replicate.
	c.ctl("InitShardPrimary", "--force", "commerce/0", ts[0].alias)
	if p := c.primaryOf(ts); p != ts[0] {
		t.Fatalf("primary after InitShardPrimary: %s", p.alias)
	}
	waitReplicating(t, ts[0], ts)
	c.waitState(ts[0].alias, "PRIMARY SERVING", 30*time.Second)
	if _, err := c.vtgateDB.Exec("CREATE TABLE commerce.writes (id BIGINT PRIMARY KEY, note VARCHAR(16))"); err != nil {
		t.Fatalf("create table through vtgate: %v", err)
	}
	if _, err := c.vtgateDB.Exec("INSERT INTO commerce.writes (id, note) VALUES (0, 'first')"); err != nil {
		t.Fatalf("first write through vtgate: %v", err)
	}
	for _, st := range ts[1:] {
		eventually(t, 10*time.Second, "the first write reaches "+st.alias, func() bool {
			var n int
			return st.root.QueryRow("SELECT COUNT(*) FROM vt_commerce.writes WHERE id = 0").Scan(&n) == nil && n == 1
		})
	}
	for _, st := range ts[1:] {
		c.waitState(st.alias, "REPLICA SERVING", 30*time.Second)
	}

	w := startWriter(t, c)
	w.waitAcks(t, 50, "writes flowing")

	// PRS to a chosen tablet, under the writer.
	reparent := func(what string, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		c.ctl(append([]string{"PlannedReparentShard", "commerce/0"}, args...)...)
		took := time.Since(start)
		w.waitAcks(t, 50, "writes flowing after "+what)
		gap := w.longestGap(start, time.Now())
		t.Logf("%s: vtctldclient took %v; longest wait for a write %v", what, took.Round(time.Millisecond), gap.Round(time.Millisecond))
		return gap
	}
	gapNew := reparent("PlannedReparentShard --new-primary "+ts[1].alias, "--new-primary", ts[1].alias)
	if p := c.primaryOf(ts); p != ts[1] {
		t.Fatalf("primary after PRS --new-primary: %s", p.alias)
	}
	waitReplicating(t, ts[1], ts)
	w.checkNoLoss(t, ts[1])

	gapAvoid := reparent("PlannedReparentShard --avoid-primary "+ts[1].alias, "--avoid-primary", ts[1].alias)
	p := c.primaryOf(ts)
	if p == ts[1] {
		t.Fatal("PRS --avoid-primary kept the avoided primary")
	}
	waitReplicating(t, p, ts)
	w.checkNoLoss(t, p)

	// Semi-sync by durability policy: the primary waits for a replica's ack.
	c.ctl("SetKeyspaceDurabilityPolicy", "--durability-policy=semi_sync", "commerce")
	eventually(t, 30*time.Second, "semi-sync active on the primary", func() bool {
		var name, status, clients string
		if p.root.QueryRow("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'").Scan(&name, &status) != nil {
			return false
		}
		if p.root.QueryRow("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&name, &clients) != nil {
			return false
		}
		return status == "ON" && clients != "0"
	})
	w.waitAcks(t, 50, "writes flowing with semi-sync")

	// kill -9 of the primary's mariadbd under the writer, then ERS.
	killAt := time.Now()
	p.db.Kill(t)
	c.ctl("EmergencyReparentShard", "commerce/0", "--wait-replicas-timeout", "20s")
	ersTook := time.Since(killAt)
	w.waitAcks(t, 50, "writes flowing after ERS")
	gapERS := w.longestGap(killAt, time.Now())
	t.Logf("EmergencyReparentShard: %v after the kill; longest wait for a write %v", ersTook.Round(time.Millisecond), gapERS.Round(time.Millisecond))
	np := c.primaryOf(ts)
	if np == p {
		t.Fatal("ERS kept the dead primary")
	}
	var others []*shardTablet
	for _, st := range ts {
		if st != p {
			others = append(others, st)
		}
	}
	waitReplicating(t, np, others)
	w.halt()
	w.checkNoLoss(t, np)

	// The old primary comes back and rejoins as a replica.
	p.db.RestartWith(t, crashRecoveryArgs...)
	eventually(t, 30*time.Second, "the old primary's tablet steps down", func() bool {
		out, err := c.tryCtl("GetTablet", p.alias)
		return err == nil && strings.Contains(out, `"type": "REPLICA"`)
	})
	c.ctl("ReparentTablet", p.alias)
	waitReplicating(t, np, ts)
	eventually(t, 30*time.Second, "the old primary caught up", func() bool {
		var n int
		return p.root.QueryRow("SELECT COUNT(*) FROM vt_commerce.writes").Scan(&n) == nil && n >= w.count()+1
	})
	w.checkNoLoss(t, p)

	tabletCommands(t, c, np, p)

	t.Logf("write unavailability: PRS --new-primary %v, PRS --avoid-primary %v, ERS %v after kill -9",
		gapNew.Round(time.Millisecond), gapAvoid.Round(time.Millisecond), gapERS.Round(time.Millisecond))
	if n := len(w.errors); n > 0 {
		t.Logf("%d writes failed (not acknowledged; allowed): first %s", n, w.errors[0])
	}
}

// startVttablet starts Vitess v23's own vttablet (unmanaged) as zone1-<uid> on db, as the vt
// user; c.start adds the topology flags and --log_dir.
func (c *cluster) startVttablet(uid int, db *mariadbtest.Server) {
	c.t.Helper()
	args := []string{"--tablet-path", fmt.Sprintf("zone1-%d", uid), "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", "commerce", "--init-shard", "0", "--init-tablet-type", "REPLICA", "--unmanaged",
		"--db-host", "127.0.0.1", "--db-port", fmt.Sprint(db.Port), "--init-db-name-override", "vt_commerce",
		"--port", fmt.Sprint(freePort(c.t)), "--grpc-port", fmt.Sprint(freePort(c.t)),
		"--service-map", "grpc-queryservice,grpc-tabletmanager", "--health-check-interval", healthInterval.String(),
		"--enable-replication-reporter"}
	for _, r := range []string{"app", "appdebug", "allprivs", "dba", "filtered", "repl", "erepl"} {
		args = append(args, "--db-"+r+"-user", "vt_"+r, "--db-"+r+"-password", mariadbtest.Password, "--db-"+r+"-use-ssl=false")
	}
	c.start("vttablet", args...)
}

// TestMixedShardWithVttablet: operators migrate one tablet at a time, so a shard can hold a
// Vitess vttablet beside tabletd. A tabletd primary with a vttablet replica on MariaDB:
// InitShardPrimary, PRS to the vttablet and back, no acknowledged write lost. (vttablet
// re-pointed at a primary reads its server_uuid, which MariaDB lacks; tabletd reports one
// derived from server_id so that vttablet's check passes.)
func TestMixedShardWithVttablet(t *testing.T) {
	c := newCluster(t, "--enable-buffer", "--buffer-window", "20s", "--buffer-size", "10000",
		"--buffer-min-time-between-failovers", "1s")
	dbT := mariadbtest.Start(t, mariadbtest.Options{})
	dbV := mariadbtest.Start(t, mariadbtest.Options{})
	td := &shardTablet{uid: 101, alias: "zone1-0000000101", db: dbT, root: dbT.RootDB(t)}
	td.tab = c.startTabletdAs(101, dbT, "REPLICA")
	vt := &shardTablet{uid: 102, alias: "zone1-0000000102", db: dbV, root: dbV.RootDB(t), vttablet: true}
	c.startVttablet(102, dbV)
	ts := []*shardTablet{td, vt}
	eventually(t, 60*time.Second, "GetTablets lists both tablets", func() bool {
		out, err := c.tryCtl("GetTablets", "--keyspace", "commerce")
		return err == nil && strings.Contains(out, td.alias) && strings.Contains(out, vt.alias)
	})

	c.ctl("InitShardPrimary", "--force", "commerce/0", td.alias)
	waitReplicating(t, td, ts)
	c.waitState(td.alias, "PRIMARY SERVING", 30*time.Second)
	if _, err := c.vtgateDB.Exec("CREATE TABLE commerce.writes (id BIGINT PRIMARY KEY, note VARCHAR(16))"); err != nil {
		t.Fatalf("create table through vtgate: %v", err)
	}
	w := startWriter(t, c)
	w.waitAcks(t, 50, "writes flowing")

	for _, to := range []*shardTablet{vt, td} {
		start := time.Now()
		c.ctl("PlannedReparentShard", "commerce/0", "--new-primary", to.alias)
		w.waitAcks(t, 50, "writes flowing after PRS to "+to.alias)
		if p := c.primaryOf(ts); p != to {
			t.Fatalf("primary after PRS to %s: %s", to.alias, p.alias)
		}
		from := td
		if to == td {
			from = vt
		}
		eventually(t, 30*time.Second, from.alias+" replicates from "+to.alias, func() bool {
			s := from.mysqlState(t)
			return s.sourcePort == to.db.Port && s.ioRunning == "Yes" && s.sqlRunning == "Yes"
		})
		w.checkNoLoss(t, to)
		t.Logf("PRS to %s: longest wait for a write %v", to.alias, w.longestGap(start, time.Now()).Round(time.Millisecond))
	}
	w.halt()
	w.checkNoLoss(t, td)
}

// tabletCommands runs vtctldclient's per-tablet commands against a replica r of primary p and
// checks their effect in MySQL and in the topology.
func tabletCommands(t *testing.T, c *cluster, p, r *shardTablet) {
	t.Helper()
	fs := c.ctl("GetFullStatus", r.alias)
	for _, want := range []string{`"server_uuid": "00000000-0000-0000-0000-`, `"replication_status"`, `"read_only": true`,
		`"gtid_mode": "ON"`, `"semi_sync_replica_enabled": true`} {
		if !strings.Contains(fs, want) {
			t.Fatalf("GetFullStatus %s lacks %s:\n%s", r.alias, want, fs)
		}
	}
	for _, tt := range []string{"rdonly", "spare", "replica"} {
		c.ctl("ChangeTabletType", r.alias, tt)
		eventually(t, 10*time.Second, "GetTablets shows "+tt, func() bool {
			return strings.Contains(c.ctl("GetTablets", "--keyspace", "commerce"), r.alias+" commerce 0 "+tt)
		})
		if s := r.mysqlState(t); !s.readOnly || s.sourcePort != p.db.Port {
			t.Fatalf("after ChangeTabletType %s: read_only=%v source port %d", tt, s.readOnly, s.sourcePort)
		}
	}
	c.ctl("StopReplication", r.alias)
	if s := r.mysqlState(t); s.ioRunning != "No" || s.sqlRunning != "No" {
		t.Fatalf("after StopReplication: IO %s SQL %s", s.ioRunning, s.sqlRunning)
	}
	c.ctl("StartReplication", r.alias)
	eventually(t, 10*time.Second, "replication running after StartReplication", func() bool {
		s := r.mysqlState(t)
		return s.ioRunning == "Yes" && s.sqlRunning == "Yes"
	})
	c.ctl("SetWritable", r.alias, "true")
	if r.mysqlState(t).readOnly {
		t.Fatal("SetWritable true left MySQL read-only")
	}
	c.ctl("SetWritable", r.alias, "false")
	if !r.mysqlState(t).readOnly {
		t.Fatal("SetWritable false left MySQL writable")
	}
	c.ctl("ChangeTabletTags", r.alias, "rack=r1")
	if out := c.ctl("GetTablet", r.alias); !strings.Contains(out, `"rack": "r1"`) {
		t.Fatalf("ChangeTabletTags: tags not in the record:\n%s", out)
	}
	c.ctl("SleepTablet", r.alias, "100ms")
}

// TestReparentRefusals: what vtctld refuses, and what tabletd refuses under it, leaves the
// shard as it was: PRS to a missing tablet or one of another shard, ERS with no reachable
// candidate (every replica's mysqld down).
func TestReparentRefusals(t *testing.T) {
	c := newCluster(t)
	ts := c.newShard(2, nil)
	c.ctl("InitShardPrimary", "--force", "commerce/0", ts[0].alias)
	waitReplicating(t, ts[0], ts)

	other := mariadbtest.Start(t, mariadbtest.Options{})
	c.startTabletdAs(201, other, "REPLICA", "--init-keyspace", "customer") // later flags win
	eventually(t, 30*time.Second, "the other keyspace's tablet is listed", func() bool {
		out, err := c.tryCtl("GetTablets", "--keyspace", "customer")
		return err == nil && strings.Contains(out, "zone1-0000000201")
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"PRS to a missing tablet", []string{"PlannedReparentShard", "commerce/0", "--new-primary", "zone1-999"}},
		{"PRS to a tablet of another shard", []string{"PlannedReparentShard", "commerce/0", "--new-primary", "zone1-201"}},
	} {
		out, err := c.tryCtl(tc.args...)
		if err == nil {
			t.Fatalf("%s succeeded:\n%s", tc.name, out)
		}
		t.Logf("%s refused: %s", tc.name, strings.TrimSpace(out))
		if p := c.primaryOf(ts); p != ts[0] {
			t.Fatalf("%s moved the primary to %s", tc.name, p.alias)
		}
		waitReplicating(t, ts[0], ts)
	}

	// A replica holding a transaction of its own (an errant GTID) is refused as the new
	// primary, with the GTID named; the shard keeps its primary.
	ts[1].db.Exec(t, "STOP SLAVE", "SET GLOBAL read_only = OFF", "CREATE DATABASE IF NOT EXISTS errant",
		"SET GLOBAL read_only = ON", "START SLAVE")
	out, err := c.tryCtl("PlannedReparentShard", "commerce/0", "--new-primary", ts[1].alias)
	if err == nil || !strings.Contains(out, "Errant GTID detected - 0-"+fmt.Sprint(ts[1].db.ServerID)+"-") {
		t.Fatalf("PRS to a replica with an errant GTID: err %v\n%s", err, out)
	}
	t.Logf("PRS to a replica with an errant GTID refused: %s", lastLine(out))
	if p := c.primaryOf(ts); p != ts[0] {
		t.Fatalf("the refused PRS moved the primary to %s", p.alias)
	}
	if s := ts[0].mysqlState(t); s.readOnly {
		t.Fatal("the refused PRS left the primary read-only")
	}
	c.waitState(ts[0].alias, "PRIMARY SERVING", 30*time.Second)

	ts[1].db.Kill(t)
	ts[0].db.Kill(t)
	out, err = c.tryCtl("EmergencyReparentShard", "commerce/0", "--wait-replicas-timeout", "5s")
	if err == nil {
		t.Fatalf("ERS with every mysqld down succeeded:\n%s", out)
	}
	t.Logf("ERS with no reachable candidate refused: %s", strings.TrimSpace(out))
	if p := c.primaryOf(ts); p != ts[0] {
		t.Fatalf("a refused ERS changed the primary to %s", p.alias)
	}
}
