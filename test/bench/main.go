// Command bench measures tabletd side by side with Vitess v23's vttablet and
// with MariaDB itself, in one run on one machine, with the same load
// generators.
//
// It starts everything it needs in a temporary directory and stops it on
// exit or Ctrl-C: a mariadbd (fresh data dir from mariadb-install-db) loaded
// with sysbench's table sbtest1 (-rows rows) and sbtest2 (-stream-rows rows),
// an in-process etcd holding the topology, Vitess's vttablet (unmanaged,
// keyspace "bench", run as the vt user) and tabletd built from this checkout
// with `go build ./cmd/tabletd` (unmanaged, keyspace "bench2"). Both tablets
// are PRIMARY (vttablet v23 refuses --init-tablet-type PRIMARY, so it starts
// as a REPLICA and `vtctldclient TabletExternallyReparented` promotes it),
// serve the same database over MariaDB's unix socket, get vttablet v23's
// defaults as explicit flags (tabletd must list each one in its --help as
// implemented, or the run stops), and the same consolidator setting
// (-consolidator). Every Go child runs without an inherited GOGC; vttablet
// and vtgate at Go's default 100, tabletd at its own default (--gc-percent)
// or -tabletd-gogc. The report states each effective value.
//
// tabletd is measured from a clean commit: a tree with changes outside
// test/bench and docs (or one that changes during the build) is refused
// unless -allow-dirty, which marks the run dirty; the commit is recorded.
//
// Over gRPC (-grpc-leg, on by default) the workload is sysbench's
// primary-key point select, sent as vtgate sends it: queryservice Execute
// with a Target, `select c from sbtest1 where id = :id` with an INT64 bind
// variable and an ImmediateCallerId; to MariaDB directly the same select
// over the MySQL protocol on the same unix socket (go-sql-driver/mysql with
// interpolated parameters, one *sql.DB with MaxOpenConns = clients). Each
// concurrency level (-clients, up to 1,000 and more) is run for -warmup,
// then measured for -duration; the targets are interleaved within each of
// -rounds rounds, rotating who goes first, so that noise on a shared machine
// hits them alike. The report gives each metric's median over the rounds
// with its min–max, every round's p50/p99, CPU µs per query of the tablet
// process and of mariadbd (utime+stime from /proc over the measured window,
// divided by the queries), and the tablets' VmRSS idle and under load.
// Ratios between targets (and issue 13's targets, checked at the end) are
// the median of the per-round ratios. A full scan of sbtest2 through
// StreamExecute gives rows/s and CPU per 1,000 rows.
//
// Through vtgate (-vtgate-leg) a real vtgate, run as the vt user, routes to
// both tablets; sysbench's oltp_point_select and oltp_read_only
// (--db-ps-mode=disable, uniform ids) run against keyspace bench (vttablet)
// and bench2 (tabletd) through it, and straight to MariaDB's socket for
// reference, interleaved per round as above, with sysbench's QPS, TPS and
// latency (p95, avg) and the CPU per query of the tablet, vtgate, mariadbd
// and sysbench from /proc. `-vtgate-leg -grpc-leg=false` runs it alone.
//
// Usage (as root, from the module root; VITESS_BIN holds vttablet, vtgate
// and vtctldclient, built by `make vitess`):
//
//	go run ./test/bench -duration 10s -rounds 5 -clients 1,8,64,1000 -vtgate-leg -out docs/benchmarks-raw.json
//
// `go run ./test/bench -report docs/benchmarks-raw.json` prints the tables of
// a recorded run again. The markdown tables go to stdout, progress to
// stderr. Exit status: 0 when every requested target was measured, 3 when
// some could not be (the reason is in the report), 1 on a setup failure
// (a dirty tree or a flag tabletd lacks among them), 130 on interrupt.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
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
	consolidate      bool   // -consolidator: the tablets' consolidator flags
	tabletdGOGC      int    // --gc-percent for tabletd; 0 keeps tabletd's default
	allowDirty       bool
	grpcLeg          bool
	vtgateLeg        bool
	vtgateThreads    []int
	sysbenchTests    []string
	profileDir       string // -profile: a profile pass after the rounds, pprof CPU and heap files here
}

func main() {
	cfg, reportFrom, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if reportFrom != "" {
		os.Exit(reprint(reportFrom, cfg.mdOut, cfg.out))
	}
	os.Exit(run(cfg))
}

// parseFlags parses and checks the command line.
func parseFlags(argv []string) (config, string, error) {
	var cfg config
	var clients, targets, threads, tests, consolidator string
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	defBin := os.Getenv("VITESS_BIN")
	if defBin == "" {
		defBin = "/opt/vitess-v23/bin"
	}
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per point")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured load before each point")
	fs.StringVar(&cfg.hot, "hot", "", `"on" or "off": every client reads the same row, with consolidation asked on or off per request (ExecuteOptions.consolidator, honoured by both tablets)`)
	fs.StringVar(&consolidator, "consolidator", "on", `"on" or "off": the consolidator on both PRIMARY tablets (--enable-consolidator=true|false --enable-consolidator-replicas=false); on is vttablet v23's default on a PRIMARY`)
	fs.IntVar(&cfg.tabletdGOGC, "tabletd-gogc", 0, "GC target for tabletd (--gc-percent N), e.g. 100 as vttablet (0: tabletd's own default, --gc-percent 100)")
	fs.BoolVar(&cfg.allowDirty, "allow-dirty", false, "measure a tree with changes outside test/bench and docs (the report marks it dirty)")
	fs.IntVar(&cfg.tabletProcs, "tablet-gomaxprocs", 0, "GOMAXPROCS for both tablets, e.g. 1 as a sidecar limited to one CPU (0: Go's default)")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; each metric is reported as its median over the rounds")
	fs.StringVar(&clients, "clients", "1,8,64", "comma-separated concurrency levels of the gRPC leg")
	fs.StringVar(&cfg.out, "out", "", "write raw results as JSON to this file")
	fs.StringVar(&cfg.mdOut, "md", "", "also write the markdown tables to this file")
	fs.IntVar(&cfg.rows, "rows", 100000, "rows in sbtest1 (point selects, sysbench)")
	fs.IntVar(&cfg.streamRows, "stream-rows", 1000000, "rows in sbtest2 (streaming scan; 0 skips the scan)")
	fs.StringVar(&cfg.vitessBin, "vitess-bin", defBin, "directory with vttablet, vtgate and vtctldclient (default $VITESS_BIN)")
	fs.StringVar(&cfg.tabletdSrc, "tabletd-src", ".", "module root to build ./cmd/tabletd from")
	fs.StringVar(&cfg.tabletdBin, "tabletd-bin", "", "use this tabletd binary instead of building one (its commit comes from its Go build info)")
	fs.StringVar(&targets, "targets", strings.Join(legOrder, ","), "targets to measure")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (logs, data) after the run")
	fs.BoolVar(&cfg.grpcLeg, "grpc-leg", true, "measure over queryservice gRPC (point selects at -clients, and the streaming scan)")
	fs.BoolVar(&cfg.vtgateLeg, "vtgate-leg", false, "measure through a real vtgate with sysbench")
	fs.StringVar(&threads, "vtgate-threads", "8,64", "comma-separated sysbench thread counts of the vtgate leg")
	fs.StringVar(&tests, "sysbench-tests", sbPointSelect+","+sbReadOnly, "sysbench workloads of the vtgate leg")
	fs.StringVar(&cfg.profileDir, "profile", "", "after the rounds, one more gRPC point per tablet and -clients level with perf counting its syscalls and pprof CPU and heap profiles saved in this directory (not in the medians)")
	reportFrom := fs.String("report", "", "measure nothing: print the tables for this raw JSON file (from -out)")
	_ = fs.Parse(argv)
	if *reportFrom != "" {
		return cfg, *reportFrom, nil
	}
	var err error
	if cfg.hot != "" && cfg.hot != "on" && cfg.hot != "off" {
		return cfg, "", fmt.Errorf("-hot %q: want on or off", cfg.hot)
	}
	if consolidator != "on" && consolidator != "off" {
		return cfg, "", fmt.Errorf("-consolidator %q: want on or off", consolidator)
	}
	cfg.consolidate = consolidator == "on"
	if cfg.clients, err = parseInts(clients); err != nil {
		return cfg, "", fmt.Errorf("-clients: %w", err)
	}
	if cfg.vtgateThreads, err = parseInts(threads); err != nil {
		return cfg, "", fmt.Errorf("-vtgate-threads: %w", err)
	}
	if cfg.targets, err = parseNames(targets, legOrder); err != nil {
		return cfg, "", fmt.Errorf("-targets: %w", err)
	}
	if cfg.sysbenchTests, err = parseNames(tests, []string{sbPointSelect, sbReadOnly}); err != nil {
		return cfg, "", fmt.Errorf("-sysbench-tests: %w", err)
	}
	switch {
	case cfg.rounds < 1 || cfg.duration <= 0 || cfg.rows < 1 || cfg.streamRows < 0 || cfg.tabletdGOGC < 0 || fs.NArg() > 0:
		return cfg, "", fmt.Errorf("need -rounds ≥ 1, -duration > 0, -rows ≥ 1, -stream-rows ≥ 0, -tabletd-gogc ≥ 0 and no arguments")
	case !cfg.grpcLeg && !cfg.vtgateLeg:
		return cfg, "", fmt.Errorf("-grpc-leg=false without -vtgate-leg measures nothing")
	}
	return cfg, "", nil
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

// parseNames splits a comma-separated list, each name one of known.
func parseNames(s string, known []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		ok := false
		for _, k := range known {
			ok = ok || f == k
		}
		if !ok {
			return nil, fmt.Errorf("unknown name %q (want %s)", f, strings.Join(known, ", "))
		}
		out = append(out, f)
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
	rep := &report{Unavailable: map[string]string{}, Meta: newMeta(cfg)}
	if err := preflight(ctx, cfg, rep); err != nil {
		logf("%v", err)
		return 1
	}
	e, err := newEnv()
	if err == nil && cfg.tabletProcs > 0 {
		e.tabletEnv = append(e.tabletEnv, fmt.Sprintf("GOMAXPROCS=%d", cfg.tabletProcs))
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer e.close(cfg.keep)

	st, err := setup(ctx, cfg, e, rep)
	if err == nil && cfg.hot != "" {
		mode := querypb.ExecuteOptions_CONSOLIDATOR_DISABLED
		if cfg.hot == "on" {
			mode = querypb.ExecuteOptions_CONSOLIDATOR_ENABLED
		}
		for _, l := range st.legs {
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
	if err := measure(ctx, cfg, e, st, rep); err != nil {
		logf("interrupted: %v", err)
		return 130
	}
	return finish(cfg, rep)
}

// finish prints and writes the report; the exit status.
func finish(cfg config, rep *report) int {
	rep.summarize(legOrder)
	var md strings.Builder
	rep.markdown(&md, legOrder)
	fmt.Print(md.String())
	if cfg.out != "" {
		err := os.MkdirAll(filepath.Dir(cfg.out), 0o755)
		if err == nil {
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
	for name, why := range rep.Unavailable {
		logf("%s NOT MEASURED: %s", name, why)
	}
	if rep.Meta.TreeDirty {
		logf("the tree measured was DIRTY (-allow-dirty): %s", strings.Join(rep.Meta.DirtyFiles, "; "))
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

func newMeta(cfg config) meta {
	m := meta{
		Date:            time.Now().UTC().Format(time.RFC3339),
		Command:         "go run ./test/bench " + strings.Join(os.Args[1:], " "),
		Machine:         describeMachine(),
		GoVersion:       runtime.Version(),
		Duration:        cfg.duration.String(),
		Warmup:          cfg.warmup.String(),
		Rounds:          cfg.rounds,
		Rows:            cfg.rows,
		StreamRows:      cfg.streamRows,
		MariaDBSettings: mariadbSettings(),
		TabletFlags:     map[string]string{},
		TabletTypes:     map[string]string{},
		GOGC:            map[string]string{},
		Consolidator: fmt.Sprintf("%s for both PRIMARY tablets (%s)", map[bool]string{true: "on", false: "off"}[cfg.consolidate],
			strings.Join(consolidatorFlags(cfg.consolidate), " ")),
	}
	if cfg.grpcLeg {
		m.Clients = cfg.clients
	} else {
		m.StreamRows = 0
	}
	if cfg.vtgateLeg {
		m.VtgateThreads, m.SysbenchTests = cfg.vtgateThreads, cfg.sysbenchTests
	}
	return m
}
