package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
)

// Leg names, in report order.
const (
	legDirect   = "mariadb-direct"
	legTabletd  = "tabletd"
	legVttablet = "vttablet"
)

// meta describes the run.
type meta struct {
	Date            string            `json:"date"`
	Command         string            `json:"command"`
	Machine         machine           `json:"machine"`
	GoVersion       string            `json:"go_version"`
	MariaDBVersion  string            `json:"mariadb_version"`
	VttabletVersion string            `json:"vttablet_version,omitempty"`
	TabletdVersion  string            `json:"tabletd_version,omitempty"`
	Duration        string            `json:"duration"`
	Warmup          string            `json:"warmup"`
	Rounds          int               `json:"rounds"`
	Clients         []int             `json:"clients"`
	Rows            int               `json:"rows"`
	StreamRows      int               `json:"stream_rows"`
	MariaDBSettings []string          `json:"mariadb_settings"`
	TabletFlags     map[string]string `json:"tablet_flags,omitempty"`

	// TabletdCommit is the full commit tabletd was built from; TreeDirty
	// marks a run allowed (-allow-dirty) on a tree with changes outside
	// test/bench and docs, which DirtyFiles lists.
	TabletdCommit string   `json:"tabletd_commit,omitempty"`
	TreeDirty     bool     `json:"tree_dirty,omitempty"`
	DirtyFiles    []string `json:"dirty_files,omitempty"`
	// TabletTypes, Consolidator and GOGC state what the two tablets ran
	// with (GOGC: the effective value per process and where it comes from).
	TabletTypes  map[string]string `json:"tablet_types,omitempty"`
	Consolidator string            `json:"consolidator,omitempty"`
	GOGC         map[string]string `json:"gogc,omitempty"`
	// DirectConnection is how the mariadb-direct leg connects.
	DirectConnection string `json:"direct_connection,omitempty"`
	// The through-vtgate leg.
	VtgateVersion   string   `json:"vtgate_version,omitempty"`
	VtgateFlags     string   `json:"vtgate_flags,omitempty"`
	SysbenchVersion string   `json:"sysbench_version,omitempty"`
	SysbenchTests   []string `json:"sysbench_tests,omitempty"`
	VtgateThreads   []int    `json:"vtgate_threads,omitempty"`
}

// machine is what the numbers were measured on.
type machine struct {
	Nproc    int     `json:"nproc"`
	CPUModel string  `json:"cpu_model"`
	MemGiB   float64 `json:"mem_gib"`
	Kernel   string  `json:"kernel"`
}

// report is everything a run produced; it is also the raw JSON output.
type report struct {
	Meta          meta              `json:"meta"`
	Unavailable   map[string]string `json:"unavailable,omitempty"` // leg → why it was not measured
	Points        []pointResult     `json:"points"`
	Streams       []streamResult    `json:"streams"`
	Gate          []gateResult      `json:"vtgate_points,omitempty"`
	Idle          []idleRSS         `json:"idle_rss,omitempty"`
	Medians       []pointResult     `json:"medians"`
	StreamMedians []streamResult    `json:"stream_medians"`
	GateMedians   []gateResult      `json:"vtgate_medians,omitempty"`
	Checks        []check           `json:"checks,omitempty"`
	Profiles      []profileResult   `json:"profiles,omitempty"` // -profile: kept out of the medians
}

// idleRSS is a process's VmRSS with no load: after setup ("start") and
// after the last point ("end").
type idleRSS struct {
	Target string  `json:"target"`
	When   string  `json:"when"`
	MiB    float64 `json:"rss_mib"`
}

// gateResult is one sysbench point through vtgate (or, for mariadb-direct,
// straight to MariaDB's socket): one target, workload, thread count, round.
type gateResult struct {
	Target       string  `json:"target"`
	Workload     string  `json:"workload"`
	Threads      int     `json:"threads"`
	Round        int     `json:"round"`
	Seq          int     `json:"seq"` // place in the run's order of points
	Seconds      float64 `json:"seconds"`
	TPS          float64 `json:"tps"`
	QPS          float64 `json:"qps"`
	Transactions uint64  `json:"transactions"`
	Queries      uint64  `json:"queries"`
	Errors       uint64  `json:"ignored_errors"`
	Reconnects   uint64  `json:"reconnects"`
	LatAvgMs     float64 `json:"latency_avg_ms"`
	LatP95Ms     float64 `json:"latency_p95_ms"`
	LatMaxMs     float64 `json:"latency_max_ms"`
	// CPU µs per sysbench query over the measured window, from /proc.
	TabletCPUus  float64 `json:"tablet_cpu_us_per_query,omitempty"`
	TabletSysUs  float64 `json:"tablet_sys_cpu_us_per_query,omitempty"`
	VtgateCPUus  float64 `json:"vtgate_cpu_us_per_query,omitempty"`
	MariaCPUus   float64 `json:"mariadbd_cpu_us_per_query"`
	ClientCPUus  float64 `json:"sysbench_cpu_us_per_query"`
	TabletRSSMiB float64 `json:"tablet_rss_mib,omitempty"`
	VtgateRSSMiB float64 `json:"vtgate_rss_mib,omitempty"`
}

// check is one of issue 13's targets for tabletd, on the paired ratios.
type check struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	Goal     string `json:"goal"`
	Met      bool   `json:"met"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf applies median to one field across results.
func medianOf[T any](rs []T, f func(T) float64) float64 {
	xs := make([]float64, 0, len(rs))
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	return median(xs)
}

// summarize fills the medians (each metric's median over the rounds,
// independently) and the checks.
func (r *report) summarize(legs []string) {
	r.Medians, r.StreamMedians, r.GateMedians = nil, nil, nil
	for _, c := range r.Meta.Clients {
		for _, name := range legs {
			if ps := r.pointsOf(name, c); len(ps) > 0 {
				r.Medians = append(r.Medians, pointMedian(ps))
			}
		}
	}
	for _, name := range legs {
		var ss []streamResult
		for _, s := range r.Streams {
			if s.Target == name {
				ss = append(ss, s)
			}
		}
		if len(ss) > 0 {
			r.StreamMedians = append(r.StreamMedians, streamMedian(ss))
		}
	}
	for _, w := range r.gateWorkloads() {
		for _, n := range r.Meta.VtgateThreads {
			for _, name := range legs {
				if gs := r.gatePointsOf(name, w, n); len(gs) > 0 {
					r.GateMedians = append(r.GateMedians, gateMedian(gs))
				}
			}
		}
	}
	r.Checks = r.checks()
}

func pointMedian(ps []pointResult) pointResult {
	m := pointResult{Target: ps[0].Target, Clients: ps[0].Clients, Round: len(ps)}
	for _, p := range ps {
		m.Queries += p.Queries
		m.Errors += p.Errors
		if m.FirstErr == "" {
			m.FirstErr = p.FirstErr
		}
	}
	m.Seconds = medianOf(ps, func(p pointResult) float64 { return p.Seconds })
	m.QPS = medianOf(ps, qps)
	m.P50us = medianOf(ps, p50)
	m.P99us = medianOf(ps, p99)
	m.MaxUs = medianOf(ps, func(p pointResult) float64 { return p.MaxUs })
	m.TabletCPUus = medianOf(ps, tabletCPU)
	m.TabletSysUs = medianOf(ps, func(p pointResult) float64 { return p.TabletSysUs })
	m.MariaCPUus = medianOf(ps, func(p pointResult) float64 { return p.MariaCPUus })
	m.MariaStmts = medianOf(ps, func(p pointResult) float64 { return p.MariaStmts })
	m.ClientCPUus = medianOf(ps, func(p pointResult) float64 { return p.ClientCPUus })
	m.TabletRSSMiB = medianOf(ps, rss)
	return m
}

func streamMedian(ss []streamResult) streamResult {
	m := streamResult{Target: ss[0].Target, Round: len(ss), Rows: ss[0].Rows}
	m.Seconds = medianOf(ss, func(s streamResult) float64 { return s.Seconds })
	m.RowsPS = medianOf(ss, func(s streamResult) float64 { return s.RowsPS })
	m.TabletCPUms = medianOf(ss, func(s streamResult) float64 { return s.TabletCPUms })
	m.MariaCPUms = medianOf(ss, func(s streamResult) float64 { return s.MariaCPUms })
	m.ClientCPUms = medianOf(ss, func(s streamResult) float64 { return s.ClientCPUms })
	m.TabletRSSMiB = medianOf(ss, func(s streamResult) float64 { return s.TabletRSSMiB })
	return m
}

func gateMedian(gs []gateResult) gateResult {
	m := gateResult{Target: gs[0].Target, Workload: gs[0].Workload, Threads: gs[0].Threads, Round: len(gs)}
	for _, g := range gs {
		m.Transactions += g.Transactions
		m.Queries += g.Queries
		m.Errors += g.Errors
		m.Reconnects += g.Reconnects
	}
	m.Seconds = medianOf(gs, func(g gateResult) float64 { return g.Seconds })
	m.TPS = medianOf(gs, func(g gateResult) float64 { return g.TPS })
	m.QPS = medianOf(gs, gateQPS)
	m.LatAvgMs = medianOf(gs, func(g gateResult) float64 { return g.LatAvgMs })
	m.LatP95Ms = medianOf(gs, gateP95)
	m.LatMaxMs = medianOf(gs, func(g gateResult) float64 { return g.LatMaxMs })
	m.TabletCPUus = medianOf(gs, gateTabletCPU)
	m.TabletSysUs = medianOf(gs, func(g gateResult) float64 { return g.TabletSysUs })
	m.VtgateCPUus = medianOf(gs, gateVtgateCPU)
	m.MariaCPUus = medianOf(gs, func(g gateResult) float64 { return g.MariaCPUus })
	m.ClientCPUus = medianOf(gs, func(g gateResult) float64 { return g.ClientCPUus })
	m.TabletRSSMiB = medianOf(gs, func(g gateResult) float64 { return g.TabletRSSMiB })
	m.VtgateRSSMiB = medianOf(gs, func(g gateResult) float64 { return g.VtgateRSSMiB })
	return m
}

// pointsOf are one target's points at one concurrency, in round order.
func (r *report) pointsOf(name string, clients int) []pointResult {
	var ps []pointResult
	for _, p := range r.Points {
		if p.Target == name && p.Clients == clients {
			ps = append(ps, p)
		}
	}
	slices.SortStableFunc(ps, func(a, b pointResult) int { return a.Round - b.Round })
	return ps
}

// gatePointsOf are one target's sysbench points for a workload and thread count.
func (r *report) gatePointsOf(name, workload string, threads int) []gateResult {
	var gs []gateResult
	for _, g := range r.Gate {
		if g.Target == name && g.Workload == workload && g.Threads == threads {
			gs = append(gs, g)
		}
	}
	slices.SortStableFunc(gs, func(a, b gateResult) int { return a.Round - b.Round })
	return gs
}

// gateWorkloads are the sysbench tests in the run, in the order given.
func (r *report) gateWorkloads() []string {
	if len(r.Meta.SysbenchTests) > 0 {
		return r.Meta.SysbenchTests
	}
	var ws []string
	for _, g := range r.Gate {
		if !slices.Contains(ws, g.Workload) {
			ws = append(ws, g.Workload)
		}
	}
	return ws
}

func (r *report) median(name string, clients int) (pointResult, bool) {
	for _, m := range r.Medians {
		if m.Target == name && m.Clients == clients {
			return m, true
		}
	}
	return pointResult{}, false
}

func (r *report) streamMedian(name string) (streamResult, bool) {
	for _, m := range r.StreamMedians {
		if m.Target == name {
			return m, true
		}
	}
	return streamResult{}, false
}

func (r *report) gateMedian(name, workload string, threads int) (gateResult, bool) {
	for _, m := range r.GateMedians {
		if m.Target == name && m.Workload == workload && m.Threads == threads {
			return m, true
		}
	}
	return gateResult{}, false
}

// pointOf finds one round's point.
func (r *report) pointOf(name string, clients, round int) (pointResult, bool) {
	for _, p := range r.Points {
		if p.Target == name && p.Clients == clients && p.Round == round {
			return p, true
		}
	}
	return pointResult{}, false
}

// pairedOver is the median over rounds of f(a's, b's) for the rounds where
// get finds both. Within a round the two ran minutes apart at most, so a
// burst of noise on the shared machine moves both; the median of per-round
// ratios is steadier than the ratio of the medians.
func pairedOver[T any](rounds int, get func(name string, round int) (T, bool), a, b string, f func(pa, pb T) float64) (float64, bool) {
	var xs []float64
	for round := 1; round <= rounds; round++ {
		pa, ok1 := get(a, round)
		pb, ok2 := get(b, round)
		if ok1 && ok2 {
			xs = append(xs, f(pa, pb))
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	return median(xs), true
}

// paired is pairedOver for the gRPC points at one concurrency.
func (r *report) paired(a, b string, clients int, f func(pa, pb pointResult) float64) (float64, bool) {
	get := func(name string, round int) (pointResult, bool) { return r.pointOf(name, clients, round) }
	return pairedOver(r.Meta.Rounds, get, a, b, f)
}

// pairedRatio is paired with f(a)/f(b).
func (r *report) pairedRatio(a, b string, clients int, f func(pointResult) float64) (float64, bool) {
	return r.paired(a, b, clients, func(pa, pb pointResult) float64 { return f(pa) / f(pb) })
}

// gatePairedRatio is the median over rounds of f(a)/f(b) for one sysbench point.
func (r *report) gatePairedRatio(a, b, workload string, threads int, f func(gateResult) float64) (float64, bool) {
	get := func(name string, round int) (gateResult, bool) {
		for _, g := range r.Gate {
			if g.Target == name && g.Workload == workload && g.Threads == threads && g.Round == round {
				return g, true
			}
		}
		return gateResult{}, false
	}
	return pairedOver(r.Meta.Rounds, get, a, b, func(pa, pb gateResult) float64 { return f(pa) / f(pb) })
}

// addedP50 is the median over rounds of a tablet's p50 minus the direct p50.
func (r *report) addedP50(name string, clients int) (float64, bool) {
	return r.paired(name, legDirect, clients, func(pt, pd pointResult) float64 { return pt.P50us - pd.P50us })
}

// streamRatio is the median over rounds of a's rows/s over b's.
func (r *report) streamRatio(a, b string) (float64, bool) {
	get := func(name string, round int) (streamResult, bool) {
		for _, s := range r.Streams {
			if s.Round == round && s.Target == name {
				return s, true
			}
		}
		return streamResult{}, false
	}
	return pairedOver(r.Meta.Rounds, get, a, b, func(sa, sb streamResult) float64 { return sa.RowsPS / sb.RowsPS })
}

// idle is a target's idle RSS at "start" or "end".
func (r *report) idle(name, when string) (float64, bool) {
	for _, x := range r.Idle {
		if x.Target == name && x.When == when {
			return x.MiB, true
		}
	}
	return 0, false
}

var (
	qps           = func(p pointResult) float64 { return p.QPS }
	p50           = func(p pointResult) float64 { return p.P50us }
	p99           = func(p pointResult) float64 { return p.P99us }
	tabletCPU     = func(p pointResult) float64 { return p.TabletCPUus }
	rss           = func(p pointResult) float64 { return p.TabletRSSMiB }
	gateQPS       = func(g gateResult) float64 { return g.QPS }
	gateP95       = func(g gateResult) float64 { return g.LatP95Ms }
	gateTabletCPU = func(g gateResult) float64 { return g.TabletCPUus }
	gateVtgateCPU = func(g gateResult) float64 { return g.VtgateCPUus }
)

// checks evaluates issue 13's targets where both tablets were measured, on
// the per-round paired ratios: CPU per point select ≤ 0.5× vttablet's at 8
// and 64 clients over gRPC and through vtgate, QPS ≥ 1.5× at 8 clients, p99
// never above vttablet's, RSS ≤ 0.6× (idle and under load).
func (r *report) checks() []check {
	var out []check
	add := func(name, measured, goal string, met bool) {
		out = append(out, check{name, measured, goal, met})
	}
	for _, c := range r.Meta.Clients {
		td, ok1 := r.median(legTabletd, c)
		vt, ok2 := r.median(legVttablet, c)
		if !ok1 || !ok2 {
			continue
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, tabletCPU); ok && (c == 8 || c == 64) {
			add(fmt.Sprintf("CPU/query, gRPC, %d clients", c), fmt.Sprintf("%.2f× (medians %.0f vs %.0f µs)", x, td.TabletCPUus, vt.TabletCPUus), "≤ 0.50× vttablet", x <= 0.5)
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, qps); ok && c == 8 {
			add("QPS, gRPC, 8 clients", fmt.Sprintf("%.2f× (medians %.0f vs %.0f)", x, td.QPS, vt.QPS), "≥ 1.50× vttablet", x >= 1.5)
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, p99); ok {
			add(fmt.Sprintf("p99, gRPC, %d clients", c), fmt.Sprintf("%.2f× (medians %.0f vs %.0f µs)", x, td.P99us, vt.P99us), "≤ 1× vttablet", x <= 1)
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, rss); ok {
			add(fmt.Sprintf("RSS, %d clients", c), fmt.Sprintf("%.2f× (medians %.0f vs %.0f MiB)", x, td.TabletRSSMiB, vt.TabletRSSMiB), "≤ 0.60× vttablet", x <= 0.6)
		}
	}
	if a, ok1 := r.idle(legTabletd, "start"); ok1 {
		if b, ok2 := r.idle(legVttablet, "start"); ok2 && b > 0 {
			add("RSS, idle", fmt.Sprintf("%.2f× (%.0f vs %.0f MiB)", a/b, a, b), "≤ 0.60× vttablet", a/b <= 0.6)
		}
	}
	for _, n := range r.Meta.VtgateThreads {
		td, ok1 := r.gateMedian(legTabletd, sbPointSelect, n)
		vt, ok2 := r.gateMedian(legVttablet, sbPointSelect, n)
		if !ok1 || !ok2 {
			continue
		}
		if x, ok := r.gatePairedRatio(legTabletd, legVttablet, sbPointSelect, n, gateTabletCPU); ok {
			add(fmt.Sprintf("CPU/query, vtgate point select, %d threads", n), fmt.Sprintf("%.2f× (medians %.0f vs %.0f µs)", x, td.TabletCPUus, vt.TabletCPUus), "≤ 0.50× vttablet", x <= 0.5)
		}
	}
	return out
}

// readReport reads the raw results written by writeJSON.
func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// writeJSON writes the raw results.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
