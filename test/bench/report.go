package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
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
	Medians       []pointResult     `json:"medians"`
	StreamMedians []streamResult    `json:"stream_medians"`
	Checks        []check           `json:"checks,omitempty"`
}

// check is one of issue 3's targets for tabletd, evaluated on the medians.
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
	r.Medians, r.StreamMedians = nil, nil
	for _, c := range r.Meta.Clients {
		for _, name := range legs {
			var ps []pointResult
			for _, p := range r.Points {
				if p.Target == name && p.Clients == c {
					ps = append(ps, p)
				}
			}
			if len(ps) == 0 {
				continue
			}
			m := pointResult{Target: name, Clients: c, Round: len(ps)}
			for _, p := range ps {
				m.Queries += p.Queries
				m.Errors += p.Errors
				if m.FirstErr == "" {
					m.FirstErr = p.FirstErr
				}
			}
			m.Seconds = medianOf(ps, func(p pointResult) float64 { return p.Seconds })
			m.QPS = medianOf(ps, func(p pointResult) float64 { return p.QPS })
			m.P50us = medianOf(ps, func(p pointResult) float64 { return p.P50us })
			m.P99us = medianOf(ps, func(p pointResult) float64 { return p.P99us })
			m.MaxUs = medianOf(ps, func(p pointResult) float64 { return p.MaxUs })
			m.TabletCPUus = medianOf(ps, func(p pointResult) float64 { return p.TabletCPUus })
			m.TabletSysUs = medianOf(ps, func(p pointResult) float64 { return p.TabletSysUs })
			m.MariaCPUus = medianOf(ps, func(p pointResult) float64 { return p.MariaCPUus })
			m.MariaStmts = medianOf(ps, func(p pointResult) float64 { return p.MariaStmts })
			m.ClientCPUus = medianOf(ps, func(p pointResult) float64 { return p.ClientCPUus })
			m.TabletRSSMiB = medianOf(ps, func(p pointResult) float64 { return p.TabletRSSMiB })
			r.Medians = append(r.Medians, m)
		}
	}
	for _, name := range legs {
		var ss []streamResult
		for _, s := range r.Streams {
			if s.Target == name {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		m := streamResult{Target: name, Round: len(ss), Rows: ss[0].Rows}
		m.Seconds = medianOf(ss, func(s streamResult) float64 { return s.Seconds })
		m.RowsPS = medianOf(ss, func(s streamResult) float64 { return s.RowsPS })
		m.TabletCPUms = medianOf(ss, func(s streamResult) float64 { return s.TabletCPUms })
		m.MariaCPUms = medianOf(ss, func(s streamResult) float64 { return s.MariaCPUms })
		m.ClientCPUms = medianOf(ss, func(s streamResult) float64 { return s.ClientCPUms })
		m.TabletRSSMiB = medianOf(ss, func(s streamResult) float64 { return s.TabletRSSMiB })
		r.StreamMedians = append(r.StreamMedians, m)
	}
	r.Checks = r.checks()
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

// pointOf finds one round's point.
func (r *report) pointOf(name string, clients, round int) (pointResult, bool) {
	for _, p := range r.Points {
		if p.Target == name && p.Clients == clients && p.Round == round {
			return p, true
		}
	}
	return pointResult{}, false
}

// paired is the median over rounds of f(a's point, b's point), over the
// rounds where both were measured. Within a round the two ran a minute
// apart at most, so a burst of noise on the shared machine moves both; the
// median of per-round ratios is steadier than the ratio of the medians.
func (r *report) paired(a, b string, clients int, f func(pa, pb pointResult) float64) (float64, bool) {
	var xs []float64
	for round := 1; round <= r.Meta.Rounds; round++ {
		pa, ok1 := r.pointOf(a, clients, round)
		pb, ok2 := r.pointOf(b, clients, round)
		if ok1 && ok2 {
			xs = append(xs, f(pa, pb))
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	return median(xs), true
}

// pairedRatio is paired with f(a)/f(b).
func (r *report) pairedRatio(a, b string, clients int, f func(pointResult) float64) (float64, bool) {
	return r.paired(a, b, clients, func(pa, pb pointResult) float64 { return f(pa) / f(pb) })
}

// addedP50 is the median over rounds of a tablet's p50 minus the direct p50.
func (r *report) addedP50(name string, clients int) (float64, bool) {
	return r.paired(name, legDirect, clients, func(pt, pd pointResult) float64 { return pt.P50us - pd.P50us })
}

// streamRatio is the median over rounds of a's rows/s over b's.
func (r *report) streamRatio(a, b string) (float64, bool) {
	var xs []float64
	for round := 1; round <= r.Meta.Rounds; round++ {
		var sa, sb *streamResult
		for i := range r.Streams {
			s := &r.Streams[i]
			if s.Round == round && s.Target == a {
				sa = s
			}
			if s.Round == round && s.Target == b {
				sb = s
			}
		}
		if sa != nil && sb != nil {
			xs = append(xs, sa.RowsPS/sb.RowsPS)
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	return median(xs), true
}

var (
	qps       = func(p pointResult) float64 { return p.QPS }
	tabletCPU = func(p pointResult) float64 { return p.TabletCPUus }
	p99       = func(p pointResult) float64 { return p.P99us }
	rss       = func(p pointResult) float64 { return p.TabletRSSMiB }
)

// checks evaluates issue 3's targets where both sides were measured, on
// the per-round paired ratios.
func (r *report) checks() []check {
	var out []check
	add := func(name, measured, goal string, met bool) {
		out = append(out, check{name, measured, goal, met})
	}
	for _, c := range r.Meta.Clients {
		td, ok1 := r.median(legTabletd, c)
		vt, _ := r.median(legVttablet, c)
		direct, _ := r.median(legDirect, c)
		if !ok1 {
			continue
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, tabletCPU); ok {
			add(fmt.Sprintf("CPU/query, %d clients", c), fmt.Sprintf("%.2f× (medians %.0f vs %.0f µs)", x, td.TabletCPUus, vt.TabletCPUus), "≤ 0.50× vttablet", x <= 0.5)
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, qps); ok && c == 8 {
			add("QPS, 8 clients", fmt.Sprintf("%.2f× (medians %.0f vs %.0f)", x, td.QPS, vt.QPS), "≥ 1.50× vttablet", x >= 1.5)
		}
		if x, ok := r.pairedRatio(legTabletd, legDirect, c, qps); ok && c == 64 {
			add("QPS, 64 clients", fmt.Sprintf("%.0f%% of direct (medians %.0f vs %.0f)", 100*x, td.QPS, direct.QPS), "≥ 90% of MariaDB direct", x >= 0.9)
		}
		a, okA := r.addedP50(legTabletd, c)
		b, okB := r.addedP50(legVttablet, c)
		if okA && okB && c == 1 {
			add("p50 added over direct, 1 client", fmt.Sprintf("%.0f vs %.0f µs (%.2f×)", a, b, a/b), "≤ 0.50× vttablet's", a <= b/2)
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, p99); ok {
			add(fmt.Sprintf("p99, %d clients", c), fmt.Sprintf("%.2f× (medians %.0f vs %.0f µs)", x, td.P99us, vt.P99us), "≤ 1× vttablet", x <= 1)
		}
		if x, ok := r.pairedRatio(legTabletd, legVttablet, c, rss); ok {
			add(fmt.Sprintf("RSS, %d clients", c), fmt.Sprintf("%.2f× (medians %.0f vs %.0f MiB)", x, td.TabletRSSMiB, vt.TabletRSSMiB), "≤ 0.60× vttablet", x <= 0.6)
		}
	}
	if x, ok := r.streamRatio(legTabletd, legVttablet); ok {
		td, _ := r.streamMedian(legTabletd)
		vt, _ := r.streamMedian(legVttablet)
		add("stream rows/s", fmt.Sprintf("%.2f× (medians %.0f vs %.0f)", x, td.RowsPS, vt.RowsPS), "≥ 1.50× vttablet", x >= 1.5)
	}
	return out
}

// pointTable writes the medians of the point selects.
func (r *report) pointTable(w io.Writer, legs []string) {
	fmt.Fprintf(w, "### Primary-key point select — median of %d rounds, %s each\n\n", r.Meta.Rounds, r.Meta.Duration)
	fmt.Fprintln(w, "| clients | target | QPS | p50 µs | p99 µs | tablet CPU µs/query (of which kernel) | mariadbd CPU µs/query | mariadbd statements/query | client CPU µs/query | tablet RSS MiB | errors |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range r.Meta.Clients {
		for _, name := range legs {
			m, ok := r.median(name, c)
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %d | %s | %.0f | %.0f | %.0f | %s | %.1f | %.2f | %.1f | %s | %d |\n", c, name, m.QPS, m.P50us, m.P99us,
				tabletCPUCell(name, m), m.MariaCPUus, m.MariaStmts, m.ClientCPUus, tabletOnly(name, "%.0f", m.TabletRSSMiB), m.Errors)
		}
	}
	fmt.Fprintln(w)
}

// markdown writes the result tables.
func (r *report) markdown(w io.Writer, legs []string) {
	if len(r.Medians) > 0 {
		r.pointTable(w, legs)
	}
	if len(r.Medians) > 0 {
		fmt.Fprintln(w, "### Ratios (median over rounds of the per-round ratio)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| clients | QPS tabletd/vttablet | QPS tabletd/direct | QPS vttablet/direct | CPU/query tabletd/vttablet | p50 added over direct µs: tabletd / vttablet | p99 tabletd/vttablet | RSS tabletd/vttablet |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, c := range r.Meta.Clients {
			ratio := func(a, b string, f func(pointResult) float64) string {
				if x, ok := r.pairedRatio(a, b, c, f); ok {
					return fmt.Sprintf("%.2f×", x)
				}
				return "—"
			}
			addedStr := func(name string) string {
				if x, ok := r.addedP50(name, c); ok {
					return fmt.Sprintf("%.0f", x)
				}
				return "—"
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s / %s | %s | %s |\n", c,
				ratio(legTabletd, legVttablet, qps), ratio(legTabletd, legDirect, qps), ratio(legVttablet, legDirect, qps),
				ratio(legTabletd, legVttablet, tabletCPU), addedStr(legTabletd), addedStr(legVttablet),
				ratio(legTabletd, legVttablet, p99), ratio(legTabletd, legVttablet, rss))
		}
		fmt.Fprintln(w)
	}
	if len(r.StreamMedians) > 0 {
		fmt.Fprintf(w, "### Streaming scan: `%s`, %d rows — median of %d rounds\n\n", streamSQL, r.Meta.StreamRows, r.Meta.Rounds)
		fmt.Fprintln(w, "| target | rows/s | seconds | tablet CPU ms / 1k rows | mariadbd CPU ms / 1k rows | client CPU ms / 1k rows | tablet RSS MiB after |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
		for _, name := range legs {
			m, ok := r.streamMedian(name)
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s | %.0f | %.2f | %s | %.2f | %.2f | %s |\n", name, m.RowsPS, m.Seconds,
				tabletOnly(name, "%.2f", m.TabletCPUms), m.MariaCPUms, m.ClientCPUms, tabletOnly(name, "%.0f", m.TabletRSSMiB))
		}
		fmt.Fprintln(w)
		if x, ok := r.streamRatio(legTabletd, legVttablet); ok {
			fmt.Fprintf(w, "Rows/s tabletd/vttablet, median of the per-round ratios: %.2f×\n\n", x)
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "### Issue 3 targets for tabletd")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| target | measured | goal | met |")
		fmt.Fprintln(w, "|---|---|---|:---:|")
		for _, c := range r.Checks {
			mark := "✅"
			if !c.Met {
				mark = "❌"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, c.Measured, c.Goal, mark)
		}
		fmt.Fprintln(w)
	}
	for _, name := range legs {
		if why, ok := r.Unavailable[name]; ok {
			fmt.Fprintf(w, "**%s not measured:** %s\n\n", name, indentBlock(why))
		}
	}
}

func tabletCPUCell(name string, m pointResult) string {
	if name == legDirect {
		return "—"
	}
	return fmt.Sprintf("%.1f (%.0f)", m.TabletCPUus, m.TabletSysUs)
}

func tabletOnly(name, format string, v float64) string {
	if name == legDirect {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// indentBlock keeps a multi-line reason readable in markdown.
func indentBlock(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "\n") {
		return s
	}
	first, rest, _ := strings.Cut(s, "\n")
	return first + "\n\n```\n" + rest + "\n```"
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
