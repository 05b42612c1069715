//go:build interop

package interop

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	vreplBenchRows   = flag.Int("vrepl-bench-rows", 20000, "rows per sysbench table in TestVReplicationBenchmark")
	vreplBenchTables = flag.Int("vrepl-bench-tables", 2, "tables of the multi-table copy in TestVReplicationBenchmark")
	vreplBenchLoad   = flag.Duration("vrepl-bench-load", 15*time.Second, "sysbench oltp_write_only duration for the apply lag")
	vreplBenchOut    = flag.String("vrepl-bench-out", "", "write TestVReplicationBenchmark's figures here (JSON)")
	vreplBenchRounds = flag.Int("vrepl-bench-rounds", 1, "rounds of the one-table copy per side")
)

// vreplCopy is one MoveTables copy.
type vreplCopy struct {
	Tables        int     `json:"tables"`
	RowsPerTable  int     `json:"rows_per_table"`
	Seconds       float64 `json:"seconds"` // MoveTables create until every stream is Running
	RowsPerSecond float64 `json:"rows_per_second"`
}

// vreplLag is the apply lag under a sysbench write load on the source.
type vreplLag struct {
	Threads       int     `json:"threads"`
	Seconds       float64 `json:"seconds"`
	SourceTPS     float64 `json:"source_tps"` // sysbench's transactions/s on the source
	Probes        int     `json:"probes"`
	P50, P99, Max float64 // seconds from a source commit to the row on the target
}

type vreplSide struct {
	Single       vreplCopy   `json:"single_table"` // the median round
	SingleRounds []vreplCopy `json:"single_table_rounds"`
	Multi        vreplCopy   `json:"multi_table"`
	Lag          vreplLag    `json:"apply_lag"`
}

type vreplReport struct {
	Date     string    `json:"date"`
	Commit   string    `json:"commit"`
	MariaDB  string    `json:"mariadb"`
	Vitess   string    `json:"vitess"`
	Setup    string    `json:"setup"`
	Vttablet vreplSide `json:"vttablet"`
	Tabletd  vreplSide `json:"tabletd"`
}

// benchMySQL gives every server of the benchmark the same room (the tests' default buffer
// pool is 32 MB).
var benchMySQL = []string{"--innodb-buffer-pool-size=512M", "--innodb-log-file-size=256M"}

// TestVReplicationBenchmark measures, side by side, with vttablet on both ends and with tabletd
// on both ends (default settings each): the copy rate of MoveTables on one sysbench table and
// on several, and the replication-phase apply lag under sysbench oltp_write_only at 8 threads
// on the source. The one-table copy runs -vrepl-bench-rounds times per side, alternating
// sides, and the median is reported (the machine is shared). Figures are logged (and
// written with -vrepl-bench-out), never asserted; every copy is checked to be exact.
func TestVReplicationBenchmark(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is missing: run scripts/install-deps.sh --interop (make interop installs it)")
	}
	rep := vreplReport{Date: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(), MariaDB: mariadbVersion(), Vitess: vitessVersion(),
		Setup: "2 MariaDB 10.11 servers per run (512 MB buffer pool), sysbench tables (id, k, c, pad; key k_1), source and target " +
			"primaries of the same kind, vtctld and vtgate of Vitess v23, 2 shared cores"}
	sides := []struct {
		name string
		vt   bool
		out  *vreplSide
	}{{"vttablet", true, &rep.Vttablet}, {"tabletd", false, &rep.Tabletd}}
	for round := 0; round < *vreplBenchRounds; round++ {
		for _, side := range sides {
			t.Run(fmt.Sprintf("%s-one-table-%d", side.name, round+1), func(t *testing.T) {
				cp, _ := benchCopy(t, side.vt, 1, *vreplBenchRows, false)
				side.out.SingleRounds = append(side.out.SingleRounds, cp)
				t.Logf("%s round %d: 1 table %.0f rows/s (%.1fs)", side.name, round+1, cp.RowsPerSecond, cp.Seconds)
			})
		}
	}
	for _, side := range sides {
		side.out.Single = medianCopy(side.out.SingleRounds)
		t.Run(side.name+"-lag", func(t *testing.T) {
			_, side.out.Lag = benchCopy(t, side.vt, 1, *vreplBenchRows, true)
			t.Logf("%s: apply lag under %.0f tps: p50 %.3fs p99 %.3fs max %.3fs", side.name, side.out.Lag.SourceTPS, side.out.Lag.P50, side.out.Lag.P99, side.out.Lag.Max)
		})
		t.Run(fmt.Sprintf("%s-%d-tables", side.name, *vreplBenchTables), func(t *testing.T) {
			side.out.Multi, _ = benchCopy(t, side.vt, *vreplBenchTables, *vreplBenchRows, false)
			t.Logf("%s: %d tables %.0f rows/s (%.1fs)", side.name, side.out.Multi.Tables, side.out.Multi.RowsPerSecond, side.out.Multi.Seconds)
		})
	}
	for _, side := range sides {
		t.Logf("%s: 1 table %.0f rows/s (median of %d); %d tables %.0f rows/s; apply lag p50 %.3fs p99 %.3fs", side.name,
			side.out.Single.RowsPerSecond, len(side.out.SingleRounds), side.out.Multi.Tables, side.out.Multi.RowsPerSecond, side.out.Lag.P50, side.out.Lag.P99)
	}
	if *vreplBenchOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*vreplBenchOut, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func medianCopy(cs []vreplCopy) vreplCopy {
	if len(cs) == 0 {
		return vreplCopy{}
	}
	s := append([]vreplCopy(nil), cs...)
	sort.Slice(s, func(i, j int) bool { return s[i].RowsPerSecond < s[j].RowsPerSecond })
	return s[len(s)/2]
}

// benchCopy times MoveTables of n sysbench tables of rows rows, then (withLag) the apply lag
// under load.
func benchCopy(t *testing.T, vt bool, n, rows int, withLag bool) (vreplCopy, vreplLag) {
	_, src, dst, took := benchMove(t, vt, n, rows)
	cp := vreplCopy{Tables: n, RowsPerTable: rows, Seconds: took.Seconds(), RowsPerSecond: float64(n*rows) / took.Seconds()}
	if !withLag {
		return cp, vreplLag{}
	}
	return cp, measureLag(t, src, dst, n, rows)
}

// benchMove runs MoveTables "bench" of n sysbench tables of rows rows (and the probe table)
// commerce → customer, with vttablet (vt) or tabletd on both ends, and returns once the copy
// is done and checked exact, with how long it took.
func benchMove(t *testing.T, vt bool, n, rows int) (*cluster, *vrTablet, *vrTablet, time.Duration) {
	c := newCluster(t)
	src := c.vrPrimaryOn(benchMySQL, 100, "commerce", "0", vt)
	dst := c.vrPrimaryOn(benchMySQL, 200, "customer", "0", vt)
	sysbench(t, src, "prepare", n, rows, "--threads=2")
	mustExec(t, src.root, "create table vt_commerce.probe (id int primary key, ts bigint not null)")
	mustExec(t, src.root, "insert into vt_commerce.probe values (1, 0)")
	tables := []string{"probe"}
	vs := map[string]any{"probe": map[string]any{}}
	for i := 1; i <= n; i++ {
		tables = append(tables, fmt.Sprintf("sbtest%d", i))
		vs[fmt.Sprintf("sbtest%d", i)] = map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"tables": vs})
	c.ctl("ApplyVSchema", "--vschema", string(b), "commerce")
	c.ctl("ReloadSchema", src.alias) // vttablet's schema engine reloads only every 30 minutes
	start := time.Now()
	c.ctl("MoveTables", "--workflow", "bench", "--target-keyspace", "customer", "create", "--source-keyspace", "commerce",
		"--tables", strings.Join(tables, ","))
	c.waitCopied(t, dst, 30*time.Minute)
	took := time.Since(start)
	if rows, err := dst.root.Query("select message from _vt.vreplication_log where type = 'Error'"); err == nil {
		for rows.Next() {
			var m string
			_ = rows.Scan(&m)
			t.Logf("the copy failed and was retried: %s", m) // a copy slower than expected says why
		}
		rows.Close()
	}
	for _, tb := range tables[1:] {
		benchSame(t, src, dst, tb)
	}
	return c, src, dst, took
}

// waitCopied waits until the target has no copy state left and its streams run (polled
// every 200ms: the copy's end is known to that precision).
func (c *cluster) waitCopied(t *testing.T, dst *vrTablet, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var copying, running int
		if dst.root.QueryRow("select (select count(*) from _vt.copy_state), (select count(*) from _vt.vreplication where state = 'Running' and pos != '')").Scan(&copying, &running) == nil &&
			copying == 0 && running > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the copy did not end within %v", timeout)
}

func benchSame(t *testing.T, src, dst *vrTablet, table string) {
	t.Helper()
	sum := func(v *vrTablet) string {
		var n, s sql.NullInt64
		if err := v.root.QueryRow(fmt.Sprintf("select count(*), sum(crc32(concat_ws('#', id, k, c, pad))) from %s.%s", v.dbName(), table)).Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(n.Int64, s.Int64)
	}
	var a, b string
	eventually(t, 5*time.Minute, table+" identical on both sides", func() bool {
		a, b = sum(src), sum(dst)
		return a == b
	})
}

// sysbench runs a sysbench oltp_write_only command against v's MariaDB as root.
func sysbench(t *testing.T, v *vrTablet, cmd string, tables, rows int, extra ...string) string {
	t.Helper()
	args := append([]string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1", fmt.Sprintf("--mysql-port=%d", v.db.Port),
		"--mysql-user=root", "--mysql-db=" + v.dbName(), fmt.Sprintf("--tables=%d", tables), fmt.Sprintf("--table-size=%d", rows)}, extra...)
	out, err := exec.Command("sysbench", append(args, cmd)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sysbench %s: %v\n%s", cmd, err, tail(out, 3000))
	}
	return string(out)
}

// measureLag runs sysbench oltp_write_only (8 threads) on the source while a probe row is
// updated every 100ms with the time; the target is read every 5ms to see when each value
// arrives.
func measureLag(t *testing.T, src, dst *vrTablet, n, rows int) vreplLag {
	wctx, stopWriter := context.WithCancel(context.Background())
	rctx, stopReader := context.WithCancel(context.Background())
	defer stopWriter()
	defer stopReader()
	var mu sync.Mutex
	written, observed := map[int64]time.Time{}, map[int64]time.Time{}
	var last, seen int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the probe writer
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for v := int64(1); ; v++ {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			_, err := src.root.Exec("update vt_commerce.probe set ts = ? where id = 1", v)
			mu.Lock()
			if err == nil {
				// The commit's time: the lag is from the source's commit, not from the
				// request (which may wait on the loaded source).
				written[v], last = time.Now(), v
			}
			mu.Unlock()
		}
	}()
	go func() { // the probe reader
		defer wg.Done()
		for rctx.Err() == nil {
			var v int64
			if dst.root.QueryRow("select ts from vt_customer.probe where id = 1").Scan(&v) == nil {
				now := time.Now()
				mu.Lock()
				for ; seen < v; seen++ {
					observed[seen+1] = now
				}
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Add(1)
	go func() { // how many source transactions the target is behind, every 5s (logged)
		defer wg.Done()
		for rctx.Err() == nil {
			select {
			case <-rctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			var srcPos, dstPos string
			_ = src.root.QueryRow("select @@global.gtid_binlog_pos").Scan(&srcPos)
			_ = dst.root.QueryRow("select pos from _vt.vreplication where workflow = 'bench'").Scan(&dstPos)
			t.Logf("source at %s, target applied %s", srcPos, dstPos)
		}
	}()
	out := sysbench(t, src, "run", n, rows, "--threads=8", fmt.Sprintf("--time=%d", int(vreplBenchLoad.Seconds())), "--report-interval=0")
	stopWriter()
	eventually(t, 2*time.Minute, "the last probe reached the target", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen >= last
	})
	stopReader()
	wg.Wait()
	var lags []float64
	for v := int64(1); v <= last; v++ {
		w, okw := written[v]
		o, oko := observed[v]
		if okw && oko {
			lags = append(lags, max(0, o.Sub(w).Seconds())) // seen before its commit was acknowledged: 0
		}
	}
	lag := vreplLag{Threads: 8, Seconds: vreplBenchLoad.Seconds(), SourceTPS: sysbenchTPSOf(out), Probes: len(lags)}
	sort.Float64s(lags)
	if len(lags) > 0 {
		q := func(p float64) float64 { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
		lag.P50, lag.P99, lag.Max = q(0.5), q(0.99), lags[len(lags)-1]
	}
	benchSame(t, src, dst, "sbtest1")
	return lag
}

// sysbenchTPSOf is the transactions per second of sysbench's summary (0 without one).
func sysbenchTPSOf(out string) float64 {
	tot, _ := parseSysbenchTotals(out)
	return tot.TPS
}
