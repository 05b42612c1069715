//go:build interop

package interop

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"
)

var (
	vdiffBenchRows   = flag.Int("vdiff-bench-rows", 20000, "rows of the sysbench table TestVDiffBenchmark diffs")
	vdiffBenchRounds = flag.Int("vdiff-bench-rounds", 1, "rounds per side of TestVDiffBenchmark")
	vdiffBenchOut    = flag.String("vdiff-bench-out", "", "write TestVDiffBenchmark's figures here (JSON)")
)

// vdiffRun is one VDiff of the moved table.
type vdiffRun struct {
	Rows          int64   `json:"rows_compared"`
	Seconds       float64 `json:"seconds"` // VDiff create started → _vt.vdiff state completed
	RowsPerSecond float64 `json:"rows_per_second"`
}

type vdiffBenchReport struct {
	Date     string     `json:"date"`
	Commit   string     `json:"commit"`
	MariaDB  string     `json:"mariadb"`
	Vitess   string     `json:"vitess"`
	Setup    string     `json:"setup"`
	Vttablet []vdiffRun `json:"vttablet_rounds"`
	Tabletd  []vdiffRun `json:"tabletd_rounds"`
	Median   struct {
		Vttablet vdiffRun `json:"vttablet"`
		Tabletd  vdiffRun `json:"tabletd"`
	} `json:"median"`
}

// TestVDiffBenchmark measures VDiff's rows compared per second, side by side: MoveTables of
// one sysbench table with vttablet on both ends and with tabletd on both ends (default
// settings each), then `vtctldclient VDiff create` on the workflow, timed from the command's
// start until the target's _vt.vdiff row says completed (polled every 100 ms). Rounds
// alternate sides; medians are reported. Every diff must be clean with every row compared;
// the figures are logged (and written with -vdiff-bench-out), never asserted.
func TestVDiffBenchmark(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is missing: run scripts/install-deps.sh --interop (make interop installs it)")
	}
	rep := vdiffBenchReport{Date: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(), MariaDB: mariadbVersion(), Vitess: vitessVersion(),
		Setup: fmt.Sprintf("MoveTables of one sysbench table of %d rows (id, k, c, pad), then VDiff create; 2 MariaDB 10.11 servers "+
			"(512 MB buffer pool), source and target primaries of the same kind, vtctld of Vitess v23, 2 shared cores", *vdiffBenchRows)}
	for round := 0; round < *vdiffBenchRounds; round++ {
		for _, side := range []struct {
			name string
			vt   bool
			out  *[]vdiffRun
		}{{"vttablet", true, &rep.Vttablet}, {"tabletd", false, &rep.Tabletd}} {
			t.Run(fmt.Sprintf("%s-%d", side.name, round+1), func(t *testing.T) {
				r := benchVDiff(t, side.vt, *vdiffBenchRows)
				*side.out = append(*side.out, r)
				t.Logf("%s round %d: %d rows compared in %.2fs, %.0f rows/s", side.name, round+1, r.Rows, r.Seconds, r.RowsPerSecond)
			})
		}
	}
	rep.Median.Vttablet, rep.Median.Tabletd = medianDiff(rep.Vttablet), medianDiff(rep.Tabletd)
	if v := rep.Median.Vttablet.RowsPerSecond; v > 0 {
		t.Logf("median: vttablet %.0f rows/s, tabletd %.0f rows/s (%.2fx)", v, rep.Median.Tabletd.RowsPerSecond, rep.Median.Tabletd.RowsPerSecond/v)
	}
	if *vdiffBenchOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*vdiffBenchOut, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func benchVDiff(t *testing.T, vt bool, rows int) vdiffRun {
	c, _, dst, _ := benchMove(t, vt, 1, rows)
	c.waitWorkflowState(t, "customer", "bench", "Running", 5*time.Minute)
	uuid := newVDiffUUID(t)
	// Timed from before the command: the diff starts on the target while vtctldclient is
	// still returning, so the command's own start-up (the same for both sides) is counted in.
	start := time.Now()
	c.ctl("VDiff", "--target-keyspace", "customer", "--workflow", "bench", "create", uuid, "--tables", "sbtest1")
	var state string
	deadline := start.Add(30 * time.Minute)
	for {
		_ = dst.root.QueryRow("select state from _vt.vdiff where vdiff_uuid = ?", uuid).Scan(&state)
		if state == "completed" || state == "error" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the diff is still %q after 30 minutes", state)
		}
		time.Sleep(100 * time.Millisecond) // polling precision of the measurement
	}
	took := time.Since(start)
	var compared, mismatch int64
	if err := dst.root.QueryRow("select ifnull(sum(vdt.rows_compared), 0), max(vdt.mismatch) from _vt.vdiff vd join _vt.vdiff_table vdt on vd.id = vdt.vdiff_id where vd.vdiff_uuid = ?", uuid).Scan(&compared, &mismatch); err != nil {
		t.Fatal(err)
	}
	if state != "completed" || mismatch != 0 || compared != int64(rows) {
		t.Fatalf("diff %s: state %s, %d rows compared (want %d), mismatch %d", uuid, state, compared, rows, mismatch)
	}
	return vdiffRun{Rows: compared, Seconds: took.Seconds(), RowsPerSecond: float64(compared) / took.Seconds()}
}

func medianDiff(rs []vdiffRun) vdiffRun {
	if len(rs) == 0 {
		return vdiffRun{}
	}
	s := append([]vdiffRun(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].RowsPerSecond < s[j].RowsPerSecond })
	return s[len(s)/2]
}
