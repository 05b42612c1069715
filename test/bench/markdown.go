package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// markdown writes the result tables.
func (r *report) markdown(w io.Writer, legs []string) {
	r.runTable(w)
	if len(r.Medians) > 0 {
		r.pointTable(w, legs)
		r.roundsTable(w, legs)
		r.ratioTable(w)
	}
	r.memoryTable(w)
	if len(r.StreamMedians) > 0 {
		r.streamTable(w, legs)
	}
	if len(r.GateMedians) > 0 {
		for _, wl := range r.gateWorkloads() {
			r.gateTable(w, legs, wl)
		}
		r.gateRatioTable(w)
	}
	r.profileTable(w)
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "### Issue 13 targets for tabletd")
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
	for _, name := range slices.Sorted(maps.Keys(r.Unavailable)) {
		fmt.Fprintf(w, "**%s not measured:** %s\n\n", name, indentBlock(r.Unavailable[name]))
	}
}

// runTable states what was measured and how the tablets were set up.
func (r *report) runTable(w io.Writer) {
	m := r.Meta
	if m.TabletdCommit == "" && m.Consolidator == "" {
		return // a report from before these were recorded
	}
	fmt.Fprintln(w, "### Run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "|---|---|")
	commit := m.TabletdCommit
	if m.TreeDirty {
		commit += " **plus uncommitted changes (-allow-dirty)**: " + strings.Join(m.DirtyFiles, "; ")
	} else if commit != "" {
		commit += " (clean tree outside test/bench and docs)"
	}
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "| %s | %s |\n", k, v)
		}
	}
	row("date", m.Date)
	row("tabletd commit", commit)
	row("vttablet", m.VttabletVersion)
	row("tablet types", joinMap(m.TabletTypes))
	row("consolidator", m.Consolidator)
	row("GOGC", joinMap(m.GOGC))
	row("mariadb-direct connects", m.DirectConnection)
	row("points", fmt.Sprintf("%d rounds × %s measured after %s of warm-up; within a round the targets' order rotates", m.Rounds, m.Duration, m.Warmup))
	if m.VtgateVersion != "" {
		row("vtgate", m.VtgateVersion)
		row("sysbench", m.SysbenchVersion)
	}
	fmt.Fprintln(w)
}

// spreadCell is "median (min–max)" of xs; just the value with one round.
func spreadCell(xs []float64, format string) string {
	if len(xs) == 0 {
		return "—"
	}
	med := fmt.Sprintf(format, median(xs))
	if len(xs) == 1 {
		return med
	}
	return fmt.Sprintf("%s ("+format+"–"+format+")", med, slices.Min(xs), slices.Max(xs))
}

// valuesOf applies f to each result.
func valuesOf[T any](rs []T, f func(T) float64) []float64 {
	xs := make([]float64, 0, len(rs))
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	return xs
}

// pointTable writes the medians of the point selects, with the spread.
func (r *report) pointTable(w io.Writer, legs []string) {
	fmt.Fprintf(w, "### Primary-key point select over gRPC — median (min–max) of %d rounds, %s each\n\n", r.Meta.Rounds, r.Meta.Duration)
	fmt.Fprintln(w, "| clients | target | QPS | p50 µs | p99 µs | tablet CPU µs/query; kernel part | mariadbd CPU µs/query | mariadbd statements/query | client CPU µs/query | tablet RSS MiB | errors |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range r.Meta.Clients {
		for _, name := range legs {
			m, ok := r.median(name, c)
			if !ok {
				continue
			}
			ps := r.pointsOf(name, c)
			cpu := "—"
			if name != legDirect {
				cpu = fmt.Sprintf("%s; kernel %.0f", spreadCell(valuesOf(ps, tabletCPU), "%.1f"), m.TabletSysUs)
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %.1f | %.2f | %.1f | %s | %d |\n", c, name,
				spreadCell(valuesOf(ps, qps), "%.0f"), spreadCell(valuesOf(ps, p50), "%.0f"), spreadCell(valuesOf(ps, p99), "%.0f"),
				cpu, m.MariaCPUus, m.MariaStmts, m.ClientCPUus, tabletOnly(name, "%.0f", m.TabletRSSMiB), m.Errors)
		}
	}
	fmt.Fprintln(w)
}

// roundsTable writes every round's p50 / p99, with each point's place in
// its round's order.
func (r *report) roundsTable(w io.Writer, legs []string) {
	fmt.Fprintln(w, "### p50 / p99 µs per round (in parentheses: the target's place in that round's order)")
	fmt.Fprintln(w)
	head, rule := "| clients | target |", "|---:|---|"
	for round := 1; round <= r.Meta.Rounds; round++ {
		head += fmt.Sprintf(" round %d |", round)
		rule += "---:|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, rule)
	for _, c := range r.Meta.Clients {
		for _, name := range legs {
			if _, ok := r.median(name, c); !ok {
				continue
			}
			line := fmt.Sprintf("| %d | %s |", c, name)
			for round := 1; round <= r.Meta.Rounds; round++ {
				p, ok := r.pointOf(name, c, round)
				if !ok {
					line += " — |"
					continue
				}
				line += fmt.Sprintf(" %.0f / %.0f%s |", p.P50us, p.P99us, r.placeCell(p))
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w)
}

// placeCell is " (n)": the point's place among its round's points at the
// same concurrency, by Seq; empty for reports without Seq.
func (r *report) placeCell(p pointResult) string {
	if p.Seq == 0 {
		return ""
	}
	place := 1
	for _, q := range r.Points {
		if q.Round == p.Round && q.Clients == p.Clients && q.Seq != 0 && q.Seq < p.Seq {
			place++
		}
	}
	return fmt.Sprintf(" (%d)", place)
}

// ratioTable writes the paired ratios of the gRPC points.
func (r *report) ratioTable(w io.Writer) {
	fmt.Fprintln(w, "### Ratios over gRPC (median over rounds of the per-round ratio)")
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

// memoryTable writes each tablet's RSS idle and at the end of each
// concurrency's measured window (median over rounds), and the ratio.
func (r *report) memoryTable(w io.Writer) {
	if len(r.Idle) == 0 {
		return
	}
	fmt.Fprintln(w, "### Tablet memory: VmRSS MiB, idle and under load over gRPC (median over rounds, sampled while the clients run)")
	fmt.Fprintln(w)
	head, rule := "| target | idle after start |", "|---|---:|"
	for _, c := range r.Meta.Clients {
		head += fmt.Sprintf(" %d clients |", c)
		rule += "---:|"
	}
	fmt.Fprintln(w, head+" idle at the end |")
	fmt.Fprintln(w, rule+"---:|")
	cell := func(v float64, ok bool) string {
		if !ok {
			return "—"
		}
		return fmt.Sprintf("%.0f", v)
	}
	for _, name := range []string{legTabletd, legVttablet, "vtgate"} {
		start, ok := r.idle(name, "start")
		if !ok {
			continue
		}
		line := fmt.Sprintf("| %s | %s |", name, cell(start, true))
		for _, c := range r.Meta.Clients {
			m, ok := r.median(name, c)
			line += " " + cell(m.TabletRSSMiB, ok) + " |"
		}
		fmt.Fprintln(w, line+" "+cell(r.idle(name, "end"))+" |")
	}
	a, ok1 := r.idle(legTabletd, "start")
	b, ok2 := r.idle(legVttablet, "start")
	if ok1 && ok2 && b > 0 {
		line := fmt.Sprintf("| tabletd/vttablet | %.2f× |", a/b)
		for _, c := range r.Meta.Clients {
			if x, ok := r.pairedRatio(legTabletd, legVttablet, c, rss); ok {
				line += fmt.Sprintf(" %.2f× |", x)
			} else {
				line += " — |"
			}
		}
		e1, ok1 := r.idle(legTabletd, "end")
		e2, ok2 := r.idle(legVttablet, "end")
		end := "—"
		if ok1 && ok2 && e2 > 0 {
			end = fmt.Sprintf("%.2f×", e1/e2)
		}
		fmt.Fprintln(w, line+" "+end+" |")
	}
	fmt.Fprintln(w)
}

// streamTable writes the full-scan medians.
func (r *report) streamTable(w io.Writer, legs []string) {
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

// gateTable writes one sysbench workload's medians through vtgate.
func (r *report) gateTable(w io.Writer, legs []string, workload string) {
	fmt.Fprintf(w, "### Through vtgate: sysbench `%s` — median (min–max) of %d rounds, %s each\n\n", workload, r.Meta.Rounds, r.Meta.Duration)
	fmt.Fprintln(w, "mariadb-direct is sysbench straight to MariaDB's unix socket, no vtgate and no tablet.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| threads | target | QPS | TPS | p95 ms | avg ms | tablet CPU µs/query; kernel part | vtgate CPU µs/query | mariadbd CPU µs/query | sysbench CPU µs/query | tablet RSS MiB | vtgate RSS MiB | errors |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range r.Meta.VtgateThreads {
		for _, name := range legs {
			m, ok := r.gateMedian(name, workload, n)
			if !ok {
				continue
			}
			gs := r.gatePointsOf(name, workload, n)
			cpu, gcpu := "—", "—"
			if name != legDirect {
				cpu = fmt.Sprintf("%s; kernel %.0f", spreadCell(valuesOf(gs, gateTabletCPU), "%.1f"), m.TabletSysUs)
				gcpu = spreadCell(valuesOf(gs, gateVtgateCPU), "%.1f")
			}
			fmt.Fprintf(w, "| %d | %s | %s | %.0f | %s | %.2f | %s | %s | %.1f | %.1f | %s | %s | %d |\n", n, name,
				spreadCell(valuesOf(gs, gateQPS), "%.0f"), m.TPS, spreadCell(valuesOf(gs, gateP95), "%.2f"), m.LatAvgMs,
				cpu, gcpu, m.MariaCPUus, m.ClientCPUus, tabletOnly(name, "%.0f", m.TabletRSSMiB),
				tabletOnly(name, "%.0f", m.VtgateRSSMiB), m.Errors+m.Reconnects)
		}
	}
	fmt.Fprintln(w)
}

// gateRatioTable writes the paired ratios of the through-vtgate points.
func (r *report) gateRatioTable(w io.Writer) {
	fmt.Fprintln(w, "### Ratios through vtgate (median over rounds of the per-round ratio)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload | threads | QPS tabletd/vttablet | tablet CPU/query tabletd/vttablet | vtgate CPU/query tabletd/vttablet | p95 tabletd/vttablet | QPS tabletd/direct | QPS vttablet/direct |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, wl := range r.gateWorkloads() {
		for _, n := range r.Meta.VtgateThreads {
			ratio := func(a, b string, f func(gateResult) float64) string {
				if x, ok := r.gatePairedRatio(a, b, wl, n, f); ok {
					return fmt.Sprintf("%.2f×", x)
				}
				return "—"
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", wl, n,
				ratio(legTabletd, legVttablet, gateQPS), ratio(legTabletd, legVttablet, gateTabletCPU),
				ratio(legTabletd, legVttablet, gateVtgateCPU), ratio(legTabletd, legVttablet, gateP95),
				ratio(legTabletd, legDirect, gateQPS), ratio(legVttablet, legDirect, gateQPS))
		}
	}
	fmt.Fprintln(w)
}

func tabletOnly(name, format string, v float64) string {
	if name == legDirect {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// joinMap is "k: v; k: v" in key order.
func joinMap(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+": "+m[k])
	}
	return strings.Join(parts, "; ")
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
