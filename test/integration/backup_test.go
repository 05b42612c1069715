package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/backup"
	"github.com/tabletd/tabletd/backup/mysqlctl"
	"github.com/tabletd/tabletd/proto/logutilpb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// backupTweak gives a tablet file backup storage in root, progress every 100ms.
func backupTweak(root string, stripes int) func(*tablet.Config) {
	return func(c *tablet.Config) {
		c.Backup.StorageImplementation, c.Backup.FileRoot = "file", root
		c.Backup.Engine.ProgressInterval = 100 * time.Millisecond
		c.Backup.Engine.Stripes = stripes
		c.Backup.CatchUpTimeout = time.Minute
	}
}

// cnfServer is a MariaDB started from a my.cnf with mariadbd --defaults-file, as a managed
// tablet's server is: tabletd may stop it and start it again.
type cnfServer struct {
	cnf     string
	dataDir string
	port    int
	socket  string
	root    *sql.DB
}

// startFromMyCnf prepares a fresh MariaDB (the test users, no tablet database) described by a
// my.cnf and starts it detached; it is killed when the test ends.
func startFromMyCnf(t *testing.T, serverID uint32) *cnfServer {
	t.Helper()
	s := mariadbtest.Start(t, mariadbtest.Options{ServerID: serverID})
	s.Stop(t)
	base := filepath.Dir(s.DataDir)
	cs := &cnfServer{cnf: filepath.Join(base, "my.cnf"), dataDir: s.DataDir, port: s.Port, socket: s.Socket}
	user := ""
	if os.Geteuid() == 0 {
		user = "user=root\n"
	}
	body := fmt.Sprintf(`[mysqld]
datadir=%s
port=%d
bind-address=127.0.0.1
socket=%s
pid-file=%s
log-error=%s
server-id=%d
log-bin=mysql-bin
relay-log=relay-bin
binlog-format=ROW
log-slave-updates
gtid-strict-mode=1
skip-slave-start
report-host=127.0.0.1
report-port=%d
innodb-flush-log-at-trx-commit=2
tmpdir=%s
skip-name-resolve
innodb-buffer-pool-size=32M
innodb-log-file-size=8M
innodb-use-native-aio=0
performance-schema=OFF
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
%s`, s.DataDir, s.Port, s.Socket, filepath.Join(base, "mariadbd.pid"), filepath.Join(base, "mysqld.err"),
		serverID, s.Port, filepath.Join(base, "tmp"), user)
	if err := os.WriteFile(cs.cnf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "unix", s.Socket, 2*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs.root = sql.OpenDB(conn)
	t.Cleanup(func() { cs.root.Close() })
	cnf, err := mysqlctl.ReadMyCnf(cs.cnf)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := mysqlctl.NewLocal(cnf, "", cs.root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(base, "mariadbd.pid")
	t.Cleanup(func() { killPidFile(t, pidFile) })
	return cs
}

// killPidFile kills the mysqld of a pid file and waits until it is gone.
func killPidFile(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("mysqld %d did not die", pid)
}

// cnfTablet configures a tablet on a my.cnf-managed server.
func cnfTablet(e *env, cs *cnfServer, uid uint32, tweak func(*tablet.Config)) tablet.Config {
	cfg := tabletConfig(e, &mariadbtest.Server{Host: "127.0.0.1", Port: cs.port}, tabletOpts{uid: uid})
	cfg.Backup.MyCnfFile = cs.cnf
	if tweak != nil {
		tweak(&cfg)
	}
	return cfg
}

// events collects a Backup's or RestoreFromBackup's stream.
type events struct {
	mu   sync.Mutex
	list []*logutilpb.Event
}

func (ev *events) add(e *logutilpb.Event) {
	ev.mu.Lock()
	ev.list = append(ev.list, e)
	ev.mu.Unlock()
}

func (ev *events) text() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var b strings.Builder
	for _, e := range ev.list {
		fmt.Fprintf(&b, "%v %s\n", e.Level, e.Value)
	}
	return b.String()
}

func (ev *events) has(substr string) bool { return strings.Contains(ev.text(), substr) }

// runBackup calls Backup on r and returns the events and the stream's final error.
func runBackup(ctx context.Context, r *running, req *tmpb.BackupRequest) (*events, error) {
	ev := &events{}
	st, err := r.tm.Backup(ctx, req)
	if err != nil {
		return ev, err
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return ev, nil
		}
		if err != nil {
			return ev, err
		}
		ev.add(m.Event)
	}
}

func runRestore(ctx context.Context, r *running, req *tmpb.RestoreFromBackupRequest) (*events, error) {
	ev := &events{}
	st, err := r.tm.RestoreFromBackup(ctx, req)
	if err != nil {
		return ev, err
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return ev, nil
		}
		if err != nil {
			return ev, err
		}
		ev.add(m.Event)
	}
}

// primaryWriter inserts rows into vt_commerce.t on the primary until stopped.
type primaryWriter struct {
	stop, done chan struct{}
	n          int
}

func startPrimaryWriter(t *testing.T, p *member, from int) *primaryWriter {
	w := &primaryWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for id := from; ; id++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if _, err := p.root.Exec("INSERT INTO vt_commerce.t VALUES (?)", id); err != nil {
				t.Errorf("primary write %d: %v", id, err)
				return
			}
			w.n++
			time.Sleep(5 * time.Millisecond) // a steady load, not a flood the 8 MB redo log of the test servers would wrap under
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *primaryWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// tableState is a table's row count and CHECKSUM TABLE.
func tableState(t *testing.T, db *sql.DB) string {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM vt_commerce.t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	var name string
	var sum sql.NullInt64
	if err := db.QueryRow("CHECKSUM TABLE vt_commerce.t").Scan(&name, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, checksum %d", n, sum.Int64)
}

// manifests reads the MANIFESTs of commerce/0 in a file storage root, by backup name.
func manifests(t *testing.T, root string) map[string]*backup.Manifest {
	t.Helper()
	out := map[string]*backup.Manifest{}
	dirs, _ := os.ReadDir(filepath.Join(root, "commerce", "0"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(root, "commerce", "0", d.Name(), backup.ManifestFile))
		if err != nil {
			out[d.Name()] = nil
			continue
		}
		var m backup.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("MANIFEST of %s: %v", d.Name(), err)
		}
		out[d.Name()] = &m
	}
	return out
}

// replicatingFrom reports whether the server of db replicates from port with both threads
// running; false while it cannot be asked (mysqld restarting).
func replicatingFrom(db *sql.DB, port int) bool {
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		return false
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return false
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if rows.Scan(ptrs...) != nil {
		return false
	}
	row := map[string]string{}
	for i, c := range cols {
		row[c] = vals[i].String
	}
	return row["Master_Port"] == fmt.Sprint(port) && row["Slave_IO_Running"] == "Yes" && row["Slave_SQL_Running"] == "Yes"
}

// waitReplicatingFrom waits until the server of db replicates from port with both threads.
func waitReplicatingFrom(t *testing.T, db *sql.DB, port int) {
	t.Helper()
	eventually(t, 60*time.Second, "replicating from the primary", func() bool { return replicatingFrom(db, port) })
}

// tableStateOK is tableState, "" while the server cannot answer.
func tableStateOK(db *sql.DB) string {
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM vt_commerce.t").Scan(&n); err != nil {
		return ""
	}
	var name string
	var sum sql.NullInt64
	if err := db.QueryRow("CHECKSUM TABLE vt_commerce.t").Scan(&name, &sum); err != nil {
		return ""
	}
	return fmt.Sprintf("%d rows, checksum %d", n, sum.Int64)
}

// TestBackupRestoreRoundTrip: a replica is backed up online (two stripes) while the primary
// takes writes; a tablet on an empty MariaDB started from a my.cnf restores it at start,
// replicates from the primary and catches up with no row missing. A corrupted stripe is
// then refused by RestoreFromBackup, naming the file, with the tablet's data untouched; a
// later backup restores through the RPC.
func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := t.TempDir()
	ms := newShardOf(t, e, 2, backupTweak(root, 2))
	p, r := ms[0], ms[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eventually(t, 20*time.Second, "replica replicating", func() bool { _, ok := r.sourcePort(t); return ok })
	// A steady writer (the test servers' redo log is 8 MB: a bulk load during the backup
	// would overtake mariabackup's redo copy, which then fails, as it should).
	w := startPrimaryWriter(t, p, 1)

	ev, err := runBackup(ctx, r.running, &tmpb.BackupRequest{})
	if err != nil {
		t.Fatalf("Backup: %v\n%s", err, ev.text())
	}
	for _, want := range []string{"Starting backup", "engine mariabackup", "progress:", "position MariaDB/", "complete"} {
		if !ev.has(want) {
			t.Errorf("Backup events lack %q:\n%s", want, ev.text())
		}
	}
	if r.typ() != topodatapb.TabletType_REPLICA {
		t.Fatalf("after the backup the replica is %v", r.typ())
	}
	mans := manifests(t, root)
	if len(mans) != 1 {
		t.Fatalf("backups in storage: %v", mans)
	}
	var first *backup.Manifest
	var firstName string
	for n, m := range mans {
		first, firstName = m, n
	}
	if first == nil || first.BackupMethod != "mariabackup" || len(first.Stripes) != 2 || first.NumStripes != 2 ||
		!strings.HasPrefix(first.Position, "MariaDB/") || first.TabletAlias != aliasString(r.alias.Uid) {
		t.Fatalf("MANIFEST of %s: %+v", firstName, first)
	}

	// Restore on start into an empty MariaDB managed through its my.cnf.
	cs := startFromMyCnf(t, 4242)
	nt := startTablet(t, cnfTablet(e, cs, 310, func(c *tablet.Config) {
		backupTweak(root, 2)(c)
		c.Backup.RestoreOnStart = true
	}))
	eventually(t, 3*time.Minute, "the restored tablet replicates from the primary", func() bool {
		return replicatingFrom(cs.root, p.db.Port) && nt.t.Manager().Tablet().Type == topodatapb.TabletType_REPLICA
	})
	w.halt()
	want := tableState(t, p.root)
	eventually(t, time.Minute, "the restored tablet caught up", func() bool { return tableStateOK(cs.root) == want })
	st := nt.t.Manager().BackupStatus()
	if st == nil || st.LastRestore.Err != "" || st.LastRestore.Name != firstName || len(st.LastRestore.Phases) < 5 {
		t.Fatalf("restore status: %+v", st)
	}
	t.Logf("restore phases: %+v", st.LastRestore.Phases)
	if backup.MarkerExists(cs.dataDir) {
		t.Fatal("the restore-in-progress marker is left after a successful restore")
	}

	// A corrupted stripe: RestoreFromBackup refuses, naming the file; nothing is touched.
	stripe := filepath.Join(root, "commerce", "0", firstName, first.Stripes[1].Name)
	b, err := os.ReadFile(stripe)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(stripe, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := tableState(t, cs.root)
	rev, err := runRestore(ctx, nt, &tmpb.RestoreFromBackupRequest{})
	if code(err) != vtrpcpb.Code_DATA_LOSS || !strings.Contains(fmt.Sprint(err), first.Stripes[1].Name) {
		t.Fatalf("restore of a corrupt backup: %v; want DATA_LOSS naming %s\n%s", err, first.Stripes[1].Name, rev.text())
	}
	if got := tableState(t, cs.root); got != before || nt.t.Manager().Tablet().Type != topodatapb.TabletType_REPLICA || backup.MarkerExists(cs.dataDir) {
		t.Fatalf("after the refused restore: %s (was %s), type %v, marker %v", got, before, nt.t.Manager().Tablet().Type, backup.MarkerExists(cs.dataDir))
	}
	waitReplicatingFrom(t, cs.root, p.db.Port)

	// Dry run, then a new backup restored through the RPC.
	p.db.Exec(t, "INSERT INTO vt_commerce.t VALUES (1000000)")
	if _, err := runBackup(ctx, r.running, &tmpb.BackupRequest{}); err != nil {
		t.Fatalf("second backup: %v", err)
	}
	if ev, err := runRestore(ctx, nt, &tmpb.RestoreFromBackupRequest{DryRun: true}); err != nil || !ev.has("Dry run") {
		t.Fatalf("dry run: %v\n%s", err, ev.text())
	}
	rev, err = runRestore(ctx, nt, &tmpb.RestoreFromBackupRequest{})
	if err != nil {
		t.Fatalf("RestoreFromBackup: %v\n%s", err, rev.text())
	}
	waitReplicatingFrom(t, cs.root, p.db.Port)
	want = tableState(t, p.root)
	eventually(t, time.Minute, "caught up after the RPC restore", func() bool { return tableStateOK(cs.root) == want })
	if nt.t.Manager().Tablet().Type != topodatapb.TabletType_REPLICA {
		t.Fatalf("after RestoreFromBackup: %v", nt.t.Manager().Tablet().Type)
	}
}
