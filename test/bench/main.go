// Command bench measures tabletd side by side with Vitess v23's vttablet and
// with MariaDB itself, in one run on one machine, with the same load
// generator.
//
// It starts everything it needs in a temporary directory and stops it on
// exit or Ctrl-C: a mariadbd (fresh data dir from mariadb-install-db) loaded
// with a sysbench-style table sbtest1 (-rows rows) and sbtest2 (-stream-rows
// rows), an in-process etcd holding the topology, Vitess's vttablet
// (unmanaged, REPLICA, keyspace "bench", run as the vt user), and tabletd
// built from this checkout with `go build ./cmd/tabletd` (PRIMARY, keyspace
// "bench2"). Both tablets serve the same database. If tabletd does not
// build, or its query service answers UNIMPLEMENTED, that leg is reported
// as not measured and the others still run.
//
// The workload is sysbench's primary-key point select, sent as vtgate sends
// it: queryservice Execute with a Target, `select c from sbtest1 where id =
// :id` with an INT64 bind variable and an ImmediateCallerId; to MariaDB
// directly the same select over the MySQL protocol (go-sql-driver/mysql with
// interpolated parameters, one *sql.DB with MaxOpenConns = clients). Each
// concurrency level (-clients) is run for -warmup, then measured for
// -duration; the three targets are interleaved within each of -rounds rounds
// (rotating who goes first) so that noise on a shared machine hits them
// alike, and the report gives each metric's median over the rounds: QPS,
// client-side p50/p99, CPU µs per query of the tablet process and of mariadbd
// (utime+stime from /proc over the measured window, divided by the queries),
// and the tablet's VmRSS. Ratios between targets (and issue 3's targets,
// checked at the end) are the median of the per-round ratios. A full scan of
// sbtest2 through StreamExecute gives rows/s and CPU per 1,000 rows.
//
// Usage (as root, from the module root; VITESS_BIN holds vttablet and
// vtctldclient, built by ../shared/interop/build-vitess.sh):
//
//	go run ./test/bench -duration 10s -rounds 3 -clients 1,8,64 -out docs/benchmarks-raw.json
//
// `go run ./test/bench -report docs/benchmarks-raw.json` prints the tables of
// a recorded run again. The markdown tables go to stdout, progress to
// stderr. Exit status: 0 when every requested target was measured, 3 when
// some could not be (the reason is in the report), 1 on a setup failure,
// 130 on interrupt.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/tabletd/tabletd/proto/querypb"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the parsed command line.
type config struct {
	duration, warmup time.Duration
	rounds           int
	clients          []int
	out, mdOut       string
	rows, streamRows int
	vitessBin        string
	tabletdSrc       string
	tabletdBin       string
	targets          []string
	keep             bool
	tabletProcs      int    // GOMAXPROCS for both tablets; 0 = Go's default
	hot              string // "on"/"off": every client reads row 1, consolidation asked on/off per request
}

func main() {
	var cfg config
	var clients, targets string
	defBin := os.Getenv("VITESS_BIN")
	if defBin == "" {
		defBin = "/opt/vitess-v23/bin"
	}
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per point")
	flag.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured load before each point")
	flag.StringVar(&cfg.hot, "hot", "", `"on" or "off": every client reads the same row, with consolidation asked on or off per request (ExecuteOptions.consolidator, honoured by both tablets)`)
	flag.IntVar(&cfg.tabletProcs, "tablet-gomaxprocs", 0, "GOMAXPROCS for both tablets, e.g. 1 as a sidecar limited to one CPU (0: Go's default)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each metric is reported as its median over the rounds")
	flag.StringVar(&clients, "clients", "1,8,64", "comma-separated concurrency levels")
	flag.StringVar(&cfg.out, "out", "", "write raw results as JSON to this file")
	flag.StringVar(&cfg.mdOut, "md", "", "also write the markdown tables to this file")
	flag.IntVar(&cfg.rows, "rows", 100000, "rows in sbtest1 (point selects)")
	flag.IntVar(&cfg.streamRows, "stream-rows", 1000000, "rows in sbtest2 (streaming scan; 0 skips the scan)")
	flag.StringVar(&cfg.vitessBin, "vitess-bin", defBin, "directory with vttablet and vtctldclient (default $VITESS_BIN)")
	flag.StringVar(&cfg.tabletdSrc, "tabletd-src", ".", "module root to build ./cmd/tabletd from")
	flag.StringVar(&cfg.tabletdBin, "tabletd-bin", "", "use this tabletd binary instead of building one")
	flag.StringVar(&targets, "targets", strings.Join([]string{legDirect, legTabletd, legVttablet}, ","), "targets to measure")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (logs, data) after the run")
	reportFrom := flag.String("report", "", "measure nothing: print the tables for this raw JSON file (from -out)")
	flag.Parse()
	if *reportFrom != "" {
		os.Exit(reprint(*reportFrom, cfg.mdOut, cfg.out))
	}
	var err error
	if cfg.hot != "" && cfg.hot != "on" && cfg.hot != "off" {
		fmt.Fprintf(os.Stderr, "bench: -hot %q: want on or off\n", cfg.hot)
		os.Exit(2)
	}
	if cfg.clients, err = parseInts(clients); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -clients:", err)
		os.Exit(2)
	}
	for _, t := range strings.Split(targets, ",") {
		if t = strings.TrimSpace(t); t != legDirect && t != legTabletd && t != legVttablet {
			fmt.Fprintf(os.Stderr, "bench: -targets: unknown target %q (want %s, %s, %s)\n", t, legDirect, legTabletd, legVttablet)
			os.Exit(2)
		}
		cfg.targets = append(cfg.targets, strings.TrimSpace(t))
	}
	if cfg.rounds < 1 || cfg.duration <= 0 || cfg.rows < 1 || cfg.streamRows < 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: need -rounds ≥ 1, -duration > 0, -rows ≥ 1, -stream-rows ≥ 0 and no arguments")
		os.Exit(2)
	}
	os.Exit(run(cfg))
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func wants(cfg config, name string) bool {
	for _, t := range cfg.targets {
		if t == name {
			return true
		}
	}
	return false
}

func run(cfg config) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop() // after e.close: a second Ctrl-C does not cut the cleanup short
	e, err := newEnv()
	if err == nil && cfg.tabletProcs > 0 {
		e.tabletEnv = append(e.tabletEnv, fmt.Sprintf("GOMAXPROCS=%d", cfg.tabletProcs))
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer e.close(cfg.keep)

	rep := &report{Unavailable: map[string]string{}, Meta: newMeta(cfg)}
	legs, err := setup(ctx, cfg, e, rep)
	if err == nil && cfg.hot != "" {
		mode := querypb.ExecuteOptions_CONSOLIDATOR_DISABLED
		if cfg.hot == "on" {
			mode = querypb.ExecuteOptions_CONSOLIDATOR_ENABLED
		}
		for _, l := range legs.legs {
			if l.tablet != nil && l.tablet.client != nil {
				l.tablet.client.opts.Consolidator = mode
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			logf("interrupted")
			return 130
		}
		logf("setup failed: %v", err)
		return 1
	}
	if err := measure(ctx, cfg, legs, rep); err != nil {
		logf("interrupted: %v", err)
		return 130
	}
	rep.summarize(legOrder)
	var md strings.Builder
	rep.markdown(&md, legOrder)
	fmt.Print(md.String())
	if cfg.out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err == nil {
			err = rep.writeJSON(cfg.out)
		}
		if err != nil {
			logf("writing %s: %v", cfg.out, err)
			return 1
		}
		logf("raw results in %s", cfg.out)
	}
	if cfg.mdOut != "" {
		if err := os.WriteFile(cfg.mdOut, []byte(md.String()), 0o644); err != nil {
			logf("writing %s: %v", cfg.mdOut, err)
			return 1
		}
	}
	for _, name := range legOrder {
		if why, ok := rep.Unavailable[name]; ok {
			logf("%s NOT MEASURED: %s", name, why)
		}
	}
	if len(rep.Unavailable) > 0 {
		return 3
	}
	return 0
}

// legOrder is the order of the targets in the report.
var legOrder = []string{legDirect, legTabletd, legVttablet}

// reprint prints (and with -md writes) the tables of an earlier run; with
// -out it rewrites the JSON with the summary recomputed.
func reprint(path, mdOut, out string) int {
	rep, err := readReport(path)
	if err != nil {
		logf("%v", err)
		return 1
	}
	rep.summarize(legOrder)
	var md strings.Builder
	rep.markdown(&md, legOrder)
	fmt.Print(md.String())
	if mdOut != "" {
		if err := os.WriteFile(mdOut, []byte(md.String()), 0o644); err != nil {
			logf("writing %s: %v", mdOut, err)
			return 1
		}
	}
	if out != "" {
		if err := rep.writeJSON(out); err != nil {
			logf("writing %s: %v", out, err)
			return 1
		}
	}
	return 0
}

// setup starts MariaDB, the topology and the tablets; a tablet that cannot
// start is recorded in rep.Unavailable rather than failing the run.
func setup(ctx context.Context, cfg config, e *env, rep *report) (*runState, error) {
	// Build tabletd while MariaDB loads.
	type built struct {
		bin, version string
		err          error
	}
	buildc := make(chan built, 1)
	buildCtx, cancelBuild := context.WithCancel(ctx)
	pending := false // a build result not received yet
	defer func() {
		cancelBuild() // setup failed early: stop a running go build and wait for it
		if pending {
			<-buildc
		}
	}()
	if wants(cfg, legTabletd) {
		pending = true
		go func() {
			if cfg.tabletdBin != "" {
				buildc <- built{cfg.tabletdBin, cfg.tabletdBin, nil}
				return
			}
			version := gitDescribe(buildCtx, cfg.tabletdSrc) // before the build: what it compiles
			logf("building tabletd from %s (%s)", cfg.tabletdSrc, version)
			bin, err := buildTabletd(buildCtx, e, cfg.tabletdSrc)
			buildc <- built{bin, version, err}
		}()
	}
	logf("starting mariadbd and loading %d + %d rows", cfg.rows, cfg.streamRows)
	begin := time.Now()
	m, err := startMariaDB(ctx, e)
	if err != nil {
		return nil, err
	}
	rep.Meta.MariaDBVersion = m.version
	if err := m.load(ctx, cfg.rows, cfg.streamRows); err != nil {
		return nil, err
	}
	logf("mariadbd %s on port %d loaded in %v", m.version, m.port, time.Since(begin).Round(time.Second))
	st := &runState{mariadb: m}
	if wants(cfg, legDirect) {
		st.legs = append(st.legs, directLeg(m))
	}
	if !wants(cfg, legTabletd) && !wants(cfg, legVttablet) {
		return st, nil
	}
	topo, err := startTopology(ctx, e, cfg.vitessBin)
	if err != nil {
		return nil, err
	}
	if wants(cfg, legTabletd) {
		b := <-buildc
		pending = false
		var t *tablet
		err := b.err
		if err == nil {
			rep.Meta.TabletdVersion = b.version
			logf("starting tabletd")
			t, err = startTabletd(ctx, e, topo, m, b.bin, rep.Meta.TabletdVersion)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			rep.Unavailable[legTabletd] = err.Error()
			logf("tabletd leg NOT MEASURED: %v", err)
		} else {
			logf("tabletd serves (pid %d, http %d)", t.proc.pid(), t.httpPort)
			rep.Meta.TabletFlags[legTabletd] = strings.Join(t.flags, " ")
			st.legs = append(st.legs, tabletLeg(legTabletd, t))
		}
	}
	if wants(cfg, legVttablet) {
		logf("starting vttablet")
		t, err := startVttablet(ctx, e, topo, m, cfg.vitessBin)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			rep.Unavailable[legVttablet] = err.Error()
			logf("vttablet leg NOT MEASURED: %v", err)
		} else {
			rep.Meta.VttabletVersion = t.version
			logf("vttablet serves (pid %d, http %d)", t.proc.pid(), t.httpPort)
			rep.Meta.TabletFlags[legVttablet] = strings.Join(t.flags, " ")
			st.legs = append(st.legs, tabletLeg(legVttablet, t))
		}
	}
	return st, nil
}

// runState is what measure works on.
type runState struct {
	mariadb *mariadb
	legs    []*leg
}

// measure runs the rounds. Only an interrupt is an error: a target that
// fails is dropped and recorded in rep.Unavailable.
func measure(ctx context.Context, cfg config, st *runState, rep *report) error {
	mdb := st.mariadb
	alive := func() []*leg {
		var out []*leg
		for _, l := range st.legs {
			if _, dead := rep.Unavailable[l.name]; !dead {
				out = append(out, l)
			}
		}
		return out
	}
	fail := func(l *leg, err error) {
		why := err.Error()
		if l.tablet != nil && !l.tablet.proc.running() {
			why += fmt.Sprintf("; %s exited (%v), last log lines:\n%s", l.name, l.tablet.proc.waitErr, l.tablet.proc.logTail())
		}
		rep.Unavailable[l.name] = why
		logf("%s dropped: %s", l.name, why)
	}
	streamOK := map[string]bool{}
	if cfg.streamRows > 0 {
		for _, l := range alive() { // warm-up scan, also checks streaming works
			if _, err := runStream(ctx, l, cfg.streamRows, mdb); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rep.Unavailable[l.name+" (stream)"] = err.Error()
				logf("%s stream NOT MEASURED: %v", l.name, err)
				continue
			}
			streamOK[l.name] = true
		}
	}
	for round := 1; round <= cfg.rounds; round++ {
		for ci, n := range cfg.clients {
			ls := rotate(alive(), round+ci)
			for _, l := range ls {
				rows := cfg.rows
				if cfg.hot != "" {
					rows = 1 // every client reads row 1
				}
				p, err := runPoint(ctx, l, n, rows, cfg.warmup, cfg.duration, mdb)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					fail(l, err)
					continue
				}
				p.Round = round
				rep.Points = append(rep.Points, p)
				tcpu := ""
				if l.tablet != nil {
					tcpu = fmt.Sprintf(", tablet %.0f µs/q, RSS %.0f MiB", p.TabletCPUus, p.TabletRSSMiB)
				}
				logf("round %d/%d, %2d clients, %-14s %7.0f QPS, p50 %5.0f µs, p99 %6.0f µs, mariadbd %.0f µs/q%s, errors %d",
					round, cfg.rounds, n, l.name, p.QPS, p.P50us, p.P99us, p.MariaCPUus, tcpu, p.Errors)
			}
		}
		for _, l := range rotate(alive(), round) {
			if !streamOK[l.name] {
				continue
			}
			s, err := runStream(ctx, l, cfg.streamRows, mdb)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				rep.Unavailable[l.name+" (stream)"] = err.Error()
				streamOK[l.name] = false
				logf("%s stream dropped: %v", l.name, err)
				continue
			}
			s.Round = round
			rep.Streams = append(rep.Streams, s)
			logf("round %d/%d, stream %-14s %8.0f rows/s, tablet %.2f ms/1k rows, mariadbd %.2f ms/1k rows",
				round, cfg.rounds, l.name, s.RowsPS, s.TabletCPUms, s.MariaCPUms)
		}
	}
	return nil
}

// rotate returns ls rotated left by k, so each round starts with another target.
func rotate(ls []*leg, k int) []*leg {
	if len(ls) == 0 {
		return ls
	}
	k %= len(ls)
	return append(append([]*leg{}, ls[k:]...), ls[:k]...)
}

func newMeta(cfg config) meta {
	return meta{
		Date:            time.Now().UTC().Format(time.RFC3339),
		Command:         "go run ./test/bench " + strings.Join(os.Args[1:], " "),
		Machine:         describeMachine(),
		GoVersion:       runtime.Version(),
		Duration:        cfg.duration.String(),
		Warmup:          cfg.warmup.String(),
		Rounds:          cfg.rounds,
		Clients:         cfg.clients,
		Rows:            cfg.rows,
		StreamRows:      cfg.streamRows,
		MariaDBSettings: mariadbSettings(),
		TabletFlags:     map[string]string{},
	}
}
