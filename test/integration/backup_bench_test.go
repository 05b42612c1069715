package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/backup"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

var (
	backupBenchMB     = flag.Int("backup-bench-mb", 0, "TestBackupThroughput: datadir size to build, in MB (0: the test is not run; make bench-backup sets it)")
	backupBenchRounds = flag.Int("backup-bench-rounds", 3, "TestBackupThroughput: rounds per leg (the median is reported)")
	backupBenchOut    = flag.String("backup-bench-out", "", "TestBackupThroughput: write the raw figures as JSON here")
)

// benchLeg is one measured leg: seconds per round.
type benchLeg struct {
	Name    string
	Seconds []float64
	Bytes   int64 // output bytes of the last round
}

func (l benchLeg) median() float64 {
	s := append([]float64(nil), l.Seconds...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// TestBackupThroughput measures, side by side on one datadir: the raw pipe
// `mariabackup --backup --stream=mbstream | zstd -1 -T2 > file`, tabletd's Backup RPC to file
// storage (zstd level 1, one and two stripes), and tabletd's RestoreFromBackup with its
// phases. Run by `make bench-backup` (docs/benchmarks.md); without -backup-bench-mb it only
// says so.
func TestBackupThroughput(t *testing.T) {
	if *backupBenchMB == 0 {
		t.Skip("a benchmark: run with -backup-bench-mb N (make bench-backup)")
	}
	for _, bin := range []string{"zstd", "mariabackup"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed for the raw leg: %v (apt-get install zstd mariadb-backup)", bin, err)
		}
	}
	e := newEnv(t)
	root := t.TempDir()
	db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--innodb-log-file-size=256M", "--innodb-buffer-pool-size=1G"}})
	loadDatadir(t, db, *backupBenchMB)
	size := dirBytes(db.DataDir)
	t.Logf("datadir %s: %.2f GB (without the redo log and binary logs)", db.DataDir, float64(size)/1e9)

	cfg := tabletConfig(e, db, tabletOpts{uid: 400})
	backupTweak(root, 0)(&cfg)
	cfg.Backup.Engine.ProgressInterval = 5 * time.Second
	one := startTablet(t, cfg)
	cfg2 := tabletConfig(e, db, tabletOpts{uid: 401})
	backupTweak(root, 2)(&cfg2)
	cfg2.Backup.Engine.ProgressInterval = 5 * time.Second
	two := startTablet(t, cfg2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	raw := benchLeg{Name: "raw: mariabackup --stream=mbstream \\| zstd -1 -T2 > file"}
	tab1 := benchLeg{Name: "tabletd Backup, file storage, zstd 1, 1 stripe"}
	tab2 := benchLeg{Name: "tabletd Backup, file storage, zstd 1, 2 stripes"}
	for round := 0; round < *backupBenchRounds; round++ {
		out := filepath.Join(t.TempDir(), "raw.mbstream.zst")
		tgt, lsn := t.TempDir(), t.TempDir()
		cnf := filepath.Join(t.TempDir(), "b.cnf")
		_ = os.WriteFile(cnf, []byte(fmt.Sprintf("[mariabackup]\nuser=root\nsocket=%s\ndatadir=%s\n", db.Socket, db.DataDir)), 0o600)
		begin := time.Now()
		cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf("set -o pipefail; mariabackup --defaults-file=%s --backup --stream=mbstream --target-dir=%s --extra-lsndir=%s 2>/dev/null | zstd -1 -T2 -q > %s", cnf, tgt, lsn, out))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("raw pipe: %v %s", err, b)
		}
		raw.Seconds = append(raw.Seconds, time.Since(begin).Seconds())
		raw.Bytes = fileBytes(out)
		_ = os.Remove(out)
		for _, leg := range []struct {
			l *benchLeg
			r *running
		}{{&tab1, one}, {&tab2, two}} {
			begin = time.Now()
			if ev, err := runBackup(ctx, leg.r, &tmpb.BackupRequest{}); err != nil {
				t.Fatalf("%s: %v\n%s", leg.l.Name, err, ev.text())
			}
			leg.l.Seconds = append(leg.l.Seconds, time.Since(begin).Seconds())
			st := leg.r.t.Manager().BackupStatus()
			leg.l.Bytes = st.LastBackup.Size
		}
		t.Logf("round %d: raw %.2fs, tabletd %.2fs (1 stripe) %.2fs (2 stripes)", round+1, raw.Seconds[round], tab1.Seconds[round], tab2.Seconds[round])
	}

	// Restore the newest backup into a my.cnf-managed server, with its phases.
	cs := startFromMyCnf(t, 4444)
	rt := startTablet(t, cnfTablet(e, cs, 402, func(c *tablet.Config) { backupTweak(root, 0)(c) }))
	eventually(t, 10*time.Second, "registered", func() bool { reg, _, _ := rt.t.Manager().TopoStatus(); return reg })
	var restore benchLeg
	restore.Name = "tabletd RestoreFromBackup (total)"
	var phases []backup.Phase
	for round := 0; round < *backupBenchRounds; round++ {
		begin := time.Now()
		if ev, err := runRestore(ctx, rt, &tmpb.RestoreFromBackupRequest{}); err != nil {
			t.Fatalf("restore: %v\n%s", err, ev.text())
		}
		restore.Seconds = append(restore.Seconds, time.Since(begin).Seconds())
		phases = rt.t.Manager().BackupStatus().LastRestore.Phases
		t.Logf("restore round %d: %.2fs %+v", round+1, restore.Seconds[round], phases)
	}

	gb := float64(size) / 1e9
	var b strings.Builder
	fmt.Fprintf(&b, "| Leg | median s | MB/s of datadir | output | throughput vs raw pipe (median of per-round ratios) |\n|---|---|---|---|---|\n")
	for _, l := range []benchLeg{raw, tab1, tab2} {
		// Each round runs the legs back to back: the per-round ratio cancels most of the
		// machine's noise (shared cores).
		ratios := benchLeg{}
		for i := range l.Seconds {
			ratios.Seconds = append(ratios.Seconds, raw.Seconds[i]/l.Seconds[i])
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.0f | %.0f MB (%.2f:1) | %.2fx |\n", l.Name, l.median(), float64(size)/1e6/l.median(),
			float64(l.Bytes)/1e6, float64(size)/float64(max(l.Bytes, 1)), ratios.median())
	}
	fmt.Fprintf(&b, "| %s | %.2f | %.0f | | |\n", restore.Name, restore.median(), float64(size)/1e6/restore.median())
	for _, p := range phases {
		fmt.Fprintf(&b, "| restore phase: %s (last round) | %.2f | | | |\n", p.Name, p.Duration.Seconds())
	}
	t.Logf("datadir %.2f GB, %d rounds (median):\n%s", gb, *backupBenchRounds, b.String())
	if *backupBenchOut != "" {
		raw := map[string]any{"datadir_bytes": size, "legs": []benchLeg{raw, tab1, tab2, restore}, "restore_phases": phases, "table": b.String()}
		j, _ := json.MarshalIndent(raw, "", "  ")
		if err := os.WriteFile(*backupBenchOut, j, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadDatadir fills vt_commerce.bench until the datadir holds about mb megabytes: rows of
// hex digests and a few words, compressible about as real rows are (2-3:1 with zstd 1).
func loadDatadir(t *testing.T, db *mariadbtest.Server, mb int) {
	t.Helper()
	// Not in the binary log: a backup does not copy binlogs, and the datadir's size is the
	// measure of what it copies.
	db.Exec(t, "SET SESSION sql_log_bin = 0", "CREATE DATABASE IF NOT EXISTS vt_commerce",
		"CREATE TABLE vt_commerce.bench (id BIGINT PRIMARY KEY, a CHAR(32), b VARCHAR(255), c INT, KEY (c))")
	next := 1
	for dirBytes(db.DataDir) < int64(mb)<<20 {
		db.Exec(t, "SET SESSION sql_log_bin = 0", fmt.Sprintf("INSERT INTO vt_commerce.bench SELECT seq, MD5(seq), CONCAT('order ', seq * 7919, ' status shipped ', SHA1(seq), SHA1(seq + 1), MD5(seq + 2)), seq %% 1000 "+
			"FROM mysql.seq_%d_to_%d", next, next+499999))
		next += 500000
	}
	db.Exec(t, "FLUSH TABLES")
}

// dirBytes is the datadir's size without what a backup does not copy: the redo log
// (ib_logfile*, preallocated), binary and relay logs.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil // a file removed while walking
		}
		name := fi.Name()
		if fi.Mode().IsRegular() && !strings.HasPrefix(name, "ib_logfile") &&
			!strings.HasPrefix(name, "mysql-bin.") && !strings.HasPrefix(name, "relay-bin.") {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func fileBytes(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
