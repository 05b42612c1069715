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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/backup/mysqlctl"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// startBackupVtctld starts a second vtctld (through scripts/vitess-local.sh, as newCluster
// does) that has the shared file backup storage: GetBackups and RemoveBackup are served by
// vtctld itself from its own --file-backup-storage-root. It returns its gRPC address.
func (c *cluster) startBackupVtctld(root string) string {
	c.t.Helper()
	port, grpcPort := freePort(c.t), freePort(c.t)
	cmd := exec.Command("../../scripts/vitess-local.sh", "vtctld",
		"--backup-storage-implementation", "file", "--file-backup-storage-root", root)
	cmd.Env = append(os.Environ(), "VITESS_BIN="+c.bin, "VT_USER=vt", "VT_TOPO_ADDR="+c.etcd.Endpoint(), "VT_CELL=zone1",
		"VT_DIR="+c.dir, fmt.Sprint("VTCTLD_PORT=", port), fmt.Sprint("VTCTLD_GRPC_PORT=", grpcPort))
	c.launch("vtctld-backup", cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	eventually(c.t, 60*time.Second, "the backup vtctld answers", func() bool {
		_, err := c.tryCtl("--server", addr, "GetCellInfoNames")
		return err == nil
	})
	return addr
}

// cnfMariaDB is a MariaDB described by a my.cnf (tabletd --mycnf-file stops and starts it).
type cnfMariaDB struct {
	cnf, dataDir string
	port         int
	root         *sql.DB
	server       *mariadbtest.Server // stopped; owns the directories
}

func startCnfMariaDB(t *testing.T, serverID uint32) *cnfMariaDB {
	t.Helper()
	s := mariadbtest.Start(t, mariadbtest.Options{ServerID: serverID})
	s.Stop(t)
	base := filepath.Dir(s.DataDir)
	m := &cnfMariaDB{cnf: filepath.Join(base, "my.cnf"), dataDir: s.DataDir, port: s.Port, server: s}
	body := fmt.Sprintf("[mysqld]\ndatadir=%s\nport=%d\nbind-address=127.0.0.1\nsocket=%s\npid-file=%s\nlog-error=%s\n"+
		"server-id=%d\nlog-bin=mysql-bin\nrelay-log=relay-bin\nbinlog-format=ROW\nlog-slave-updates\ngtid-strict-mode=1\n"+
		"skip-slave-start\nread-only\ninnodb-flush-log-at-trx-commit=2\ntmpdir=%s\nskip-name-resolve\ninnodb-buffer-pool-size=32M\n"+
		"innodb-log-file-size=8M\ninnodb-use-native-aio=0\nperformance-schema=OFF\nuser=root\n",
		s.DataDir, s.Port, s.Socket, filepath.Join(base, "mariadbd.pid"), filepath.Join(base, "mysqld.err"), serverID, filepath.Join(base, "tmp"))
	if err := os.WriteFile(m.cnf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "unix", s.Socket, 2*time.Second
	conn, _ := mysql.NewConnector(cfg)
	m.root = sql.OpenDB(conn)
	t.Cleanup(func() { m.root.Close() })
	cnf, err := mysqlctl.ReadMyCnf(m.cnf)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := mysqlctl.NewLocal(cnf, "", m.root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(base, "mariadbd.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			var pid int
			fmt.Sscan(string(b), &pid)
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				for i := 0; i < 300; i++ {
					st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
					if err != nil || strings.Contains(string(st), ") Z") {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
	})
	return m
}

var backupNameRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}\.\d{6}\.zone1-\d{10}`)

func rowCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM vt_commerce.writes").Scan(&n); err != nil {
		return -1
	}
	return n
}

// TestBackupThroughVtctld: vtctldclient Backup and BackupShard stream tabletd's events; a
// vtctld with the same file storage lists them (GetBackups); a tablet on an empty,
// my.cnf-managed MariaDB restores at start and replicates; vtctldclient RestoreFromBackup
// restores it again (vtctld then re-points it at the primary); no acknowledged write is
// missing. tabletd killed mid-backup leaves no MANIFEST and comes back REPLICA, replicating.
func TestBackupThroughVtctld(t *testing.T) {
	c := newCluster(t)
	root := filepath.Join(c.dir, "backups")
	if err := os.Mkdir(root, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(root, 0o777)
	bctld := c.startBackupVtctld(root)
	backupArgs := []string{"--backup-storage-implementation", "file", "--file-backup-storage-root", root, "--backup-progress-interval", "500ms"}
	ts := c.newShard(2, []string{"--read-only"}, backupArgs...)
	c.ctl("InitShardPrimary", "--force", "commerce/0", ts[0].alias)
	waitReplicating(t, ts[0], ts)
	c.waitState(ts[0].alias, "PRIMARY SERVING", 30*time.Second)
	if _, err := c.vtgateDB.Exec("CREATE TABLE commerce.writes (id BIGINT PRIMARY KEY, note VARCHAR(16))"); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, c)
	w.waitAcks(t, 50, "writes flowing")

	// vtctldclient Backup: the events reach the client; the replica keeps serving.
	out := c.ctl("Backup", ts[1].alias)
	for _, want := range []string{"Starting backup", "progress", "position MariaDB/", "complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("vtctldclient Backup output lacks %q:\n%s", want, out)
		}
	}
	c.waitState(ts[1].alias, "REPLICA SERVING", 30*time.Second)
	out = c.ctl("BackupShard", "commerce/0")
	if !strings.Contains(out, "complete") {
		t.Errorf("vtctldclient BackupShard output:\n%s", out)
	}
	list := c.ctl("--server", bctld, "GetBackups", "commerce/0")
	names := backupNameRE.FindAllString(list, -1)
	if len(names) != 2 {
		t.Fatalf("GetBackups lists %d backups, want 2:\n%s", len(names), list)
	}
	t.Logf("GetBackups: %v", names)
	w.waitAcks(t, 50, "writes flowing after the backups")

	// Restore on start into an empty MariaDB managed through its my.cnf.
	cm := startCnfMariaDB(t, 5103)
	nt := c.startTabletdAs(103, &mariadbtest.Server{Host: "127.0.0.1", Port: cm.port},
		"REPLICA", append(backupArgs, "--mycnf-file", cm.cnf, "--restore-from-backup")...)
	_ = nt
	restored := &shardTablet{uid: 103, alias: "zone1-0000000103", db: &mariadbtest.Server{Port: cm.port}, root: cm.root}
	waitReplicatingIn(t, restored, ts[0], 3*time.Minute)
	c.waitState(restored.alias, "REPLICA SERVING", 60*time.Second)

	// vtctldclient RestoreFromBackup on it; vtctld re-points it at the primary afterwards.
	out = c.ctl("RestoreFromBackup", restored.alias)
	if !strings.Contains(out, "Restore phase prepare") {
		t.Errorf("vtctldclient RestoreFromBackup output:\n%s", out)
	}
	waitReplicatingIn(t, restored, ts[0], time.Minute)
	c.waitState(restored.alias, "REPLICA SERVING", 60*time.Second)
	w.waitAcks(t, 50, "writes flowing after the restore")
	w.halt()
	eventually(t, time.Minute, "the restored tablet has every write", func() bool { return rowCount(t, cm.root) >= w.count()+0 })
	w.checkNoLoss(t, restored)

	// tabletd killed mid-backup: no MANIFEST, back as REPLICA, replicating; the next backup
	// removes the leftover.
	before := map[string]bool{}
	for _, n := range names {
		before[n] = true
	}
	bk := exec.Command("runuser", "-u", "vt", "--", filepath.Join(c.bin, "vtctldclient"), "--server", c.vtctld, "Backup", ts[1].alias)
	if err := bk.Start(); err != nil {
		t.Fatal(err)
	}
	var partial string
	eventually(t, 30*time.Second, "the backup has started writing", func() bool {
		ents, _ := os.ReadDir(filepath.Join(root, "commerce", "0"))
		for _, e := range ents {
			if !before[e.Name()] {
				files, _ := os.ReadDir(filepath.Join(root, "commerce", "0", e.Name()))
				if len(files) > 0 {
					partial = e.Name()
					return true
				}
			}
		}
		return false
	})
	_ = ts[1].tab.cmd.Process.Signal(syscall.SIGKILL)
	<-ts[1].tab.exited
	ts[1].tab.exited <- nil // for the cleanup
	_ = bk.Wait()
	eventually(t, 10*time.Second, "no mariabackup left running", func() bool {
		out, _ := exec.Command("pgrep", "-f", "mariabackup --defaults-file").Output()
		return strings.TrimSpace(string(out)) == ""
	})
	if _, err := os.Stat(filepath.Join(root, "commerce", "0", partial, "MANIFEST")); err == nil {
		t.Fatalf("the interrupted backup %s has a MANIFEST", partial)
	}
	// Restarted on its ports, as a supervisor restarts it (the killed process could not clear
	// its record's addresses; another address would be refused as a second holder).
	old := ts[1].tab
	ts[1].tab = c.startTabletdAs(ts[1].uid, ts[1].db, "REPLICA", append(backupArgs,
		"--port", fmt.Sprint(old.httpPort), "--grpc-port", fmt.Sprint(old.grpcPort))...)
	eventually(t, 60*time.Second, "the restarted tablet serves", func() bool {
		return c.tabletState(ts[1].alias) == "REPLICA SERVING"
	})
	eventually(t, 60*time.Second, "the restarted tablet is REPLICA", func() bool {
		out, err := c.tryCtl("GetTablet", ts[1].alias)
		return err == nil && strings.Contains(out, `"type": "REPLICA"`)
	})
	waitReplicating(t, ts[0], ts)
	c.ctl("Backup", ts[1].alias)
	// The leftover is gone (or, when the next backup started within the same second, its
	// name now holds that complete backup): no backup without a MANIFEST remains.
	ents, _ := os.ReadDir(filepath.Join(root, "commerce", "0"))
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(root, "commerce", "0", e.Name(), "MANIFEST")); err != nil {
			t.Fatalf("backup %s has no MANIFEST after the next backup (the interrupted one was %s)", e.Name(), partial)
		}
	}
}

// waitReplicatingIn waits until st replicates from primary (its mysqld may be restarting).
func waitReplicatingIn(t *testing.T, st, primary *shardTablet, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, st.alias+" replicates from "+primary.alias, func() bool {
		rows, err := st.root.Query("SHOW SLAVE STATUS")
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
		return row["Master_Port"] == fmt.Sprint(primary.db.Port) && row["Slave_IO_Running"] == "Yes" && row["Slave_SQL_Running"] == "Yes"
	})
}
