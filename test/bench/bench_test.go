package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	var h histogram
	// 1..100000 µs, uniformly: quantile q is q*100000 µs.
	for i := 1; i <= 100000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		got := float64(h.quantile(q))
		want := q * 100000 * float64(time.Microsecond)
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v ± 1%%", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.quantile(1) != 100*time.Millisecond {
		t.Errorf("quantile(1) = %v, want the max 100ms", h.quantile(1))
	}
}

func TestHistogramBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 1000, 123456, 1 << 33, 10 * uint64(time.Second)} {
		b := bucketOf(v)
		back := bucketValue(b)
		if v >= subBuckets && math.Abs(float64(back)-float64(v))/float64(v) > 1.0/subBuckets {
			t.Errorf("value %d → bucket %d → %d: off by more than 1/%d", v, b, back, subBuckets)
		}
		if v < subBuckets && back != v {
			t.Errorf("value %d → bucket %d → %d, want exact", v, b, back)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b histogram
	a.record(time.Millisecond)
	b.record(3 * time.Millisecond)
	b.record(5 * time.Millisecond)
	a.merge(&b)
	if a.total != 3 || a.max != 5*time.Millisecond {
		t.Fatalf("merged total %d max %v", a.total, a.max)
	}
	if got := a.quantile(0.5); got < 2970*time.Microsecond || got > 3030*time.Microsecond {
		t.Errorf("median %v, want ~3ms", got)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func TestRotateStartsEachRoundWithAnotherTarget(t *testing.T) {
	ls := []*leg{{name: "a"}, {name: "b"}, {name: "c"}}
	var firsts []string
	for k := range 4 {
		r := rotate(ls, k)
		if len(r) != 3 {
			t.Fatalf("rotate lost legs: %d", len(r))
		}
		firsts = append(firsts, r[0].name)
	}
	if got := strings.Join(firsts, ""); got != "abca" {
		t.Errorf("first legs %q, want abca", got)
	}
}

func TestProcReadersOnSelf(t *testing.T) {
	cpu, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 0 {
		t.Errorf("cpu %v", cpu)
	}
	rss, err := rssBytes(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("rss %d, %v", rss, err)
	}
}

// knownReport is two rounds where tabletd meets every issue 13 target.
func knownReport() *report {
	r := &report{Meta: meta{Clients: []int{1, 8, 64}, Rounds: 2, VtgateThreads: []int{8}, SysbenchTests: []string{sbPointSelect}}}
	for round := 1; round <= 2; round++ {
		for _, c := range []int{1, 8, 64} {
			r.Points = append(r.Points,
				pointResult{Target: legDirect, Clients: c, Round: round, QPS: 20000, P50us: 100, P99us: 500, MariaCPUus: 30},
				pointResult{Target: legVttablet, Clients: c, Round: round, QPS: 10000, P50us: 300, P99us: 2000, TabletCPUus: 100, TabletRSSMiB: 100},
				pointResult{Target: legTabletd, Clients: c, Round: round, QPS: 19000, P50us: 150, P99us: 1000, TabletCPUus: 40, TabletRSSMiB: 50})
		}
		r.Streams = append(r.Streams,
			streamResult{Target: legTabletd, Round: round, Rows: 10, RowsPS: 2000},
			streamResult{Target: legVttablet, Round: round, Rows: 10, RowsPS: 1000})
		r.Gate = append(r.Gate,
			gateResult{Target: legTabletd, Workload: sbPointSelect, Threads: 8, Round: round, QPS: 6000, TPS: 6000, LatP95Ms: 2, TabletCPUus: 60, VtgateCPUus: 150},
			gateResult{Target: legVttablet, Workload: sbPointSelect, Threads: 8, Round: round, QPS: 4000, TPS: 4000, LatP95Ms: 3, TabletCPUus: 150, VtgateCPUus: 160})
	}
	r.Idle = []idleRSS{{legTabletd, "start", 30}, {legVttablet, "start", 80}, {legTabletd, "end", 40}, {legVttablet, "end", 90}}
	return r
}

func TestChecksOnKnownMedians(t *testing.T) {
	r := knownReport()
	r.summarize([]string{legDirect, legTabletd, legVttablet})
	// CPU at 8 and 64, QPS at 8, p99 and RSS at each of 3 levels, idle RSS, vtgate CPU.
	if len(r.Checks) != 11 {
		t.Fatalf("%d checks, want 11: %+v", len(r.Checks), r.Checks)
	}
	for _, c := range r.Checks {
		if !c.Met {
			t.Errorf("check %q not met: %s (goal %s)", c.Name, c.Measured, c.Goal)
		}
	}
	var md strings.Builder
	r.markdown(&md, []string{legDirect, legTabletd, legVttablet})
	for _, want := range []string{
		"| 8 | tabletd | 19000 (19000–19000) | 150 (150–150) | 1000 (1000–1000) | 40.0 (40.0–40.0); kernel 0 |",
		"| 8 | 1.90× | 0.95× | 0.50× | 0.40× | 50 / 200 | 0.50× | 0.50× |",
		"| 8 | tabletd | 150 / 1000 | 150 / 1000 |", // per round, no Seq: no place
		"| tabletd | 30 | 50 | 50 | 50 | 40 |",
		"| tabletd/vttablet | 0.38× | 0.50× | 0.50× | 0.50× | 0.44× |",
		"| oltp_point_select | 8 | 1.50× | 0.40× | 0.94× | 0.67× | — | — |",
		"| CPU/query, vtgate point select, 8 threads | 0.40× (medians 60 vs 150 µs) | ≤ 0.50× vttablet | ✅ |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := knownReport()
	r.Meta.TabletdCommit, r.Meta.Consolidator = "0123456789abcdef", "on"
	r.Meta.GOGC = map[string]string{legTabletd: "200", legVttablet: "100"}
	r.summarize(legOrder)
	path := filepath.Join(t.TempDir(), "raw.json")
	if err := r.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := readReport(path)
	if err != nil {
		t.Fatal(err)
	}
	back.summarize(legOrder)
	var a, b strings.Builder
	r.markdown(&a, legOrder)
	back.markdown(&b, legOrder)
	if a.String() != b.String() {
		t.Errorf("tables differ after a JSON round trip:\n%s\n---\n%s", a.String(), b.String())
	}
	if !strings.Contains(b.String(), "| GOGC | tabletd: 200; vttablet: 100 |") {
		t.Errorf("run table lacks GOGC:\n%s", b.String())
	}
}

// oldReport is the raw JSON of a run from before the vtgate leg, idle RSS,
// Seq and the run facts (docs/benchmarks-raw.json of 2026-11-22).
const oldReport = `{"meta": {"date": "2026-11-22T00:46:00Z", "rounds": 1, "clients": [8], "duration": "10s", "stream_rows": 0},
 "points": [
  {"target": "tabletd", "clients": 8, "round": 1, "qps": 12399, "p50_us": 535, "p99_us": 2843, "tablet_cpu_us_per_query": 52.1, "tablet_rss_mib": 48},
  {"target": "vttablet", "clients": 8, "round": 1, "qps": 10637, "p50_us": 629, "p99_us": 3023, "tablet_cpu_us_per_query": 73.7, "tablet_rss_mib": 86}],
 "streams": null, "medians": null, "stream_medians": null}`

func TestReprintOfAnOldReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(path, []byte(oldReport), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := readReport(path)
	if err != nil {
		t.Fatal(err)
	}
	r.summarize(legOrder)
	var md strings.Builder
	r.markdown(&md, legOrder)
	out := md.String()
	for _, want := range []string{"| 8 | tabletd | 12399 | 535 | 2843 | 52.1; kernel 0 |", "| 8 | tabletd | 535 / 2843 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("reprint lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"### Run", "Through vtgate", "Tablet memory"} {
		if strings.Contains(out, absent) {
			t.Errorf("reprint of an old report has %q:\n%s", absent, out)
		}
	}
}

func TestPairedRatioIsTheMedianOfPerRoundRatios(t *testing.T) {
	r := &report{Meta: meta{Clients: []int{8}, Rounds: 3}}
	// Round 2 is a noisy round that hit both targets: per-round ratios are 2, 2, 2.
	for i, q := range []float64{1000, 100, 1200} {
		r.Points = append(r.Points,
			pointResult{Target: legTabletd, Clients: 8, Round: i + 1, QPS: 2 * q},
			pointResult{Target: legVttablet, Clients: 8, Round: i + 1, QPS: q})
	}
	if x, ok := r.pairedRatio(legTabletd, legVttablet, 8, qps); !ok || x != 2 {
		t.Errorf("paired ratio %v %v, want 2", x, ok)
	}
	if _, ok := r.pairedRatio(legTabletd, legDirect, 8, qps); ok {
		t.Error("paired ratio with an unmeasured target")
	}
}

// helpText is the shape of tabletd's --help (pflag's usage).
const helpText = `Usage:
  tabletd [flags]

Flags:
  -h, --help                                       print this help and exit
      --queryserver-config-pool-size int           query pool size (default 16)
      --enable-consolidator                        share identical concurrent reads on a PRIMARY too
      --enable-consolidator-replicas               share identical concurrent reads on REPLICA/RDONLY (default true)
      --gc-percent int                             Go GC target percentage (GOGC) (default 200)
      --consolidator-stream-query-size int         vttablet v23 flag, accepted by tabletd but not implemented (reported at start and on /debug/status); vttablet's default: 2097152
`

func TestCheckTabletdFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of the error; none: no error
	}{
		{"all listed", []string{"--queryserver-config-pool-size=16", "--enable-consolidator=true", "--gc-percent", "100", "-x"}, nil},
		{"values are not flags", []string{"--enable-consolidator-replicas=false", "/tmp/--not-a-flag"}, nil},
		{"missing", []string{"--queryserver-config-pool-size=16", "--health-check-interval=1s", "--heartbeat-enable=false"},
			[]string{"does not list --health-check-interval, --heartbeat-enable", "will not drop a flag"}},
		{"not implemented", []string{"--consolidator-stream-query-size=1"}, []string{"accepts but does not implement --consolidator-stream-query-size"}},
		{"both", []string{"--nope", "--consolidator-stream-query-size=1"}, []string{"does not list --nope", "does not implement --consolidator-stream-query-size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTabletdFlags(helpText, tc.args)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestHelpDefault(t *testing.T) {
	for _, tc := range []struct {
		flag, want string
		ok         bool
	}{
		{"--gc-percent", "200", true},
		{"--queryserver-config-pool-size", "16", true},
		{"--enable-consolidator", "", false}, // no default printed
		{"--absent", "", false},
	} {
		got, ok := helpDefault(helpText, tc.flag)
		if got != tc.want || ok != tc.ok {
			t.Errorf("helpDefault(%s) = %q, %v; want %q, %v", tc.flag, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCommonFlagsAreFlagEqualsValue(t *testing.T) {
	// pflag reads "--bool false" as a flag and an argument: every common flag
	// carries its value after "=".
	for _, f := range append(append([]string{}, commonTabletFlags...), consolidatorFlags(true)...) {
		name, ok := flagName(f)
		if !ok || !strings.Contains(f, "=") || len(name) >= len(f)-1 {
			t.Errorf("%q is not --name=value", f)
		}
	}
	if got := strings.Join(consolidatorFlags(false), " "); got != "--enable-consolidator=false --enable-consolidator-replicas=false" {
		t.Errorf("consolidator off: %s", got)
	}
}

// sysbenchOut is sysbench 1.0.20's output with --report-checkpoints=1.
const sysbenchOut = `sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)

Threads started!

[ 1s ] Checkpoint report:
SQL statistics:
    queries performed:
        read:                            22019
        other:                           3144
        total:                           25163
    transactions:                        1571   (1569.72 per sec.)
    queries:                             25163  (25142.49 per sec.)
    ignored errors:                      0      (0.00 per sec.)
    reconnects:                          0      (0.00 per sec.)

Latency (ms):
         min:                                    0.62
         avg:                                    1.27
         max:                                   35.19
         95th percentile:                        1.64

SQL statistics:
    queries performed:
        read:                            52881
        other:                           7556
        total:                           60437
    transactions:                        3779   (1888.68 per sec.)
    queries:                             60437  (30205.32 per sec.)
    ignored errors:                      2      (0.00 per sec.)
    reconnects:                          1      (0.00 per sec.)

General statistics:
    total time:                          3.0013s

Latency (ms):
         min:                                    0.57
         avg:                                    1.06
         max:                                   14.88
         95th percentile:                        1.39
         sum:                                 3992.95
`

func TestParseSysbench(t *testing.T) {
	for _, tc := range []struct {
		name    string
		out     string
		want    sbStats
		wantErr string
	}{
		{"final report after the checkpoint", sysbenchOut, sbStats{Transactions: 3779, Queries: 60437, Errors: 2, Reconnects: 1,
			TPS: 1888.68, QPS: 30205.32, LatAvgMs: 1.06, LatP95Ms: 1.39, LatMaxMs: 14.88}, ""},
		{"no checkpoint", sysbenchOut[strings.LastIndex(sysbenchOut, "SQL statistics:"):], sbStats{Transactions: 3779, Queries: 60437, Errors: 2, Reconnects: 1,
			TPS: 1888.68, QPS: 30205.32, LatAvgMs: 1.06, LatP95Ms: 1.39, LatMaxMs: 14.88}, ""},
		{"fatal", "FATAL: mysql_drv_query() returned error 1105\n" + sysbenchOut, sbStats{}, "FATAL"},
		{"no report", "Threads started!\n", sbStats{}, "no \"SQL statistics:\""},
		{"no latency", sysbenchOut[:strings.LastIndex(sysbenchOut, "Latency")], sbStats{}, "lacks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSysbench(tc.out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSbArgs(t *testing.T) {
	got := strings.Join(sbArgs(sbReadOnly, []string{"--mysql-port=1"}, 64, 100, 3, 10), " ")
	want := "oltp_read_only --mysql-port=1 --db-ps-mode=disable --tables=1 --table-size=100 --rand-type=uniform --threads=64 --time=13 --report-interval=0 --percentile=95 --report-checkpoints=3 run"
	if got != want {
		t.Errorf("sbArgs:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(sbArgs(sbPointSelect, nil, 1, 1, 0, 2), " "); strings.Contains(got, "checkpoints") || !strings.Contains(got, "--time=2 ") {
		t.Errorf("no warm-up: %s", got)
	}
	for d, want := range map[time.Duration]int{0: 0, 500 * time.Millisecond: 1, time.Second: 1, 2500 * time.Millisecond: 3} {
		if got := wholeSeconds(d); got != want {
			t.Errorf("wholeSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestGateResultFill(t *testing.T) {
	t0 := time.Unix(1000, 0)
	before := gateSample{at: t0, tablet: time.Second, tabSys: 100 * time.Millisecond, vtgate: 2 * time.Second, mariadb: 3 * time.Second, client: 0}
	after := gateSample{at: t0.Add(10 * time.Second), tablet: 2 * time.Second, tabSys: 400 * time.Millisecond, vtgate: 4 * time.Second,
		mariadb: 3500 * time.Millisecond, client: time.Second, tabletRSS: 64 << 20, vtgateRSS: 32 << 20}
	var r gateResult
	r.fill(sbStats{QPS: 1000, TPS: 100, Queries: 10000}, before, after) // 10,000 queries in the window
	want := gateResult{Seconds: 10, QPS: 1000, TPS: 100, Queries: 10000, TabletCPUus: 100, TabletSysUs: 30,
		VtgateCPUus: 200, MariaCPUus: 50, ClientCPUus: 100, TabletRSSMiB: 64, VtgateRSSMiB: 32}
	if r != want {
		t.Errorf("fill:\n got %+v\nwant %+v", r, want)
	}
}

func TestSourceVerdict(t *testing.T) {
	clean := treeState{Commit: "aaaaaaaaaa"}
	dirty := treeState{Commit: "aaaaaaaaaa", Dirty: []string{" M tablet/x.go"}}
	moved := treeState{Commit: "bbbbbbbbbb"}
	for _, tc := range []struct {
		name          string
		before, after treeState
		allow         bool
		wantDirty     bool
		wantErr       string
	}{
		{"clean", clean, clean, false, false, ""},
		{"dirty refused", dirty, dirty, false, true, "tablet/x.go"},
		{"dirty allowed", dirty, dirty, true, true, ""},
		{"changed during the build", clean, dirty, false, true, "changes outside test/bench and docs"},
		{"HEAD moved", clean, moved, false, true, "HEAD moved from aaaaaaa to bbbbbbb"},
		{"HEAD moved, allowed", clean, moved, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := sourceVerdict(tc.before, tc.after, tc.allow)
			if d != tc.wantDirty {
				t.Errorf("dirty %v, want %v", d, tc.wantDirty)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestPorcelainLines(t *testing.T) {
	got := porcelainLines(" M a.go\n?? b/c\n\n")
	if strings.Join(got, "|") != " M a.go|?? b/c" {
		t.Errorf("porcelainLines = %q", got)
	}
	if porcelainLines("") != nil {
		t.Error("empty status is not clean")
	}
}

func TestPrebuiltVerdictOnThisTestBinary(t *testing.T) {
	// A test binary carries no vcs.revision: unknown commit, refused unless allowed.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, dirty, err := prebuiltVerdict(exe, false); !dirty || err == nil {
		t.Errorf("prebuilt without vcs info: dirty %v, err %v; want refused", dirty, err)
	}
	if _, dirty, err := prebuiltVerdict(exe, true); !dirty || err != nil {
		t.Errorf("prebuilt with -allow-dirty: dirty %v, err %v; want dirty, no error", dirty, err)
	}
}

func TestSpreadCell(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want string
	}{
		{nil, "—"},
		{[]float64{5}, "5"},
		{[]float64{3, 1, 2}, "2 (1–3)"},
		{[]float64{10, 20}, "15 (10–20)"},
	} {
		if got := spreadCell(tc.xs, "%.0f"); got != tc.want {
			t.Errorf("spreadCell(%v) = %q, want %q", tc.xs, got, tc.want)
		}
	}
}

func TestPlaceCellFollowsTheRunOrder(t *testing.T) {
	r := &report{Points: []pointResult{
		{Target: "a", Clients: 8, Round: 1, Seq: 5}, {Target: "b", Clients: 8, Round: 1, Seq: 3},
		{Target: "c", Clients: 8, Round: 1, Seq: 4}, {Target: "a", Clients: 64, Round: 1, Seq: 1},
	}}
	for i, want := range []string{" (3)", " (1)", " (2)", " (1)"} {
		if got := r.placeCell(r.Points[i]); got != want {
			t.Errorf("point %d: place %q, want %q", i, got, want)
		}
	}
}

func TestMetricValue(t *testing.T) {
	text := "# HELP go_gc_gogc_percent Heap size target percentage.\n# TYPE go_gc_gogc_percent gauge\ngo_gc_gogc_percent 200\ngo_gc_gogc_percent_x 1\n"
	if v, ok := metricValue(text, "go_gc_gogc_percent"); !ok || v != "200" {
		t.Errorf("metricValue = %q, %v", v, ok)
	}
	if _, ok := metricValue(text, "go_gc_gomemlimit_bytes"); ok {
		t.Error("found an absent metric")
	}
}

func TestChildEnvDropsGCSettings(t *testing.T) {
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "1GiB")
	t.Setenv("HOME", "/root")
	env := strings.Join(childEnv(true, "/tmp/x"), "\n")
	for _, absent := range []string{"GOGC=", "GOMEMLIMIT=", "HOME=/root"} {
		if strings.Contains(env, absent) {
			t.Errorf("child environment has %s", absent)
		}
	}
	if !strings.Contains(env, "HOME=/tmp/x") || !strings.Contains(env, "USER=vt") {
		t.Errorf("vt child lacks its HOME/USER:\n%s", env)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, _, err := parseFlags(nil)
	if err != nil || !cfg.grpcLeg || cfg.vtgateLeg || !cfg.consolidate || cfg.tabletdGOGC != 0 || cfg.allowDirty {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, _, err = parseFlags([]string{"-vtgate-leg", "-grpc-leg=false", "-vtgate-threads", "8, 64", "-consolidator", "off", "-tabletd-gogc", "100", "-clients", "1,1000"})
	if err != nil || cfg.grpcLeg || !cfg.vtgateLeg || cfg.consolidate || cfg.tabletdGOGC != 100 || len(cfg.vtgateThreads) != 2 || cfg.clients[1] != 1000 {
		t.Fatalf("vtgate alone: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"-grpc-leg=false"},
		{"-consolidator", "maybe"},
		{"-sysbench-tests", "oltp_write_only"},
		{"-targets", "vtgate"},
		{"-clients", "0"},
		{"-tabletd-gogc", "-1"},
	} {
		if _, _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	if _, from, err := parseFlags([]string{"-report", "x.json"}); err != nil || from != "x.json" {
		t.Errorf("-report: %q, %v", from, err)
	}
}

func TestTabletdArgsPassTheCommonFlags(t *testing.T) {
	args := strings.Join(tabletdArgs([]string{"--topo-implementation", "etcd2"}, &mariadb{socket: "/s"}, []int{1, 2}, tabletdOptions{consolidate: true, gogc: 100}), " ")
	for _, want := range append(append([]string{"--init-tablet-type PRIMARY", "--db-socket /s", "--gc-percent=100"}, commonTabletFlags...), consolidatorFlags(true)...) {
		if !strings.Contains(args, want) {
			t.Errorf("tabletd args lack %q: %s", want, args)
		}
	}
	if args := strings.Join(tabletdArgs(nil, &mariadb{socket: "/s"}, []int{1, 2}, tabletdOptions{}), " "); strings.Contains(args, "--gc-percent") {
		t.Errorf("-tabletd-gogc 0 passes --gc-percent: %s", args)
	}
}

func TestTabletdHelpListsEveryFlagTheBenchPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/tabletd")
	}
	bin := filepath.Join(t.TempDir(), "tabletd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/tabletd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tabletd: %v\n%s", err, out)
	}
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	args := tabletdArgs([]string{"--topo-implementation", "etcd2", "--topo-global-server-address", "x", "--topo-global-root", "/r"},
		&mariadb{socket: "/s"}, []int{1, 2}, tabletdOptions{consolidate: true, gogc: 100})
	if err := checkTabletdFlags(string(help), args); err != nil {
		t.Error(err)
	}
	if v, ok := helpDefault(string(help), "--gc-percent"); !ok || v == "" {
		t.Errorf("tabletd --help states no --gc-percent default")
	}
}

func TestParsePerfCounts(t *testing.T) {
	out := "# started on Wed Dec  2\n\n" +
		"60000,,raw_syscalls:sys_enter,10000000000,100.00,,\n" +
		"20000,,syscalls:sys_enter_read,10000000000,100.00,,\n" +
		"0,,syscalls:sys_enter_writev,10000000000,100.00,,\n" +
		"<not counted>,,syscalls:sys_enter_futex,0,0.00,,\n"
	got := parsePerfCounts(out, 10000)
	want := map[string]float64{"total": 6, "read": 2}
	if len(got) != len(want) {
		t.Fatalf("parsePerfCounts = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("parsePerfCounts[%q] = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
