package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The sysbench workloads of the through-vtgate leg, on sysbench's own table
// sbtest1 (the one the bench loads: sysbench's schema and value format).
const (
	sbPointSelect = "oltp_point_select"
	sbReadOnly    = "oltp_read_only"
	// sbUser is the MySQL user sysbench gives vtgate (--mysql-auth-server-impl none).
	sbUser = "bench"
	// sbGrace is how long sysbench may run past --time before it is killed.
	sbGrace = time.Minute
)

// gate is a real vtgate in front of both tablets.
type gate struct {
	proc      *child
	mysqlPort int
	httpPort  int
	flags     []string
	version   string
	gogc      string
}

// startVtgate starts Vitess v23's vtgate as the vt user with the command
// line of scripts/vitess-local.sh (the interop tests' and the README's),
// waiting for PRIMARY tablets, and polls a point select through it on every
// keyspace until each answers.
func startVtgate(ctx context.Context, e *env, topo *topology, vitessBin string, keyspaces []string) (*gate, error) {
	bin := filepath.Join(vitessBin, "vtgate")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (build it with make vitess, or set VITESS_BIN)", err)
	}
	logDir, err := e.vtDir("vtgate-logs")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	args := append(topo.flags(), "--log_dir", logDir,
		"--cell", cell, "--cells-to-watch", cell, "--tablet-types-to-wait", "PRIMARY",
		"--service-map", "grpc-vtgateservice", "--mysql-auth-server-impl", "none",
		"--mysql-server-port", strconv.Itoa(ports[2]), "--mysql-server-bind-address", "127.0.0.1",
		"--port", strconv.Itoa(ports[0]), "--grpc-port", strconv.Itoa(ports[1]), "--tablet-refresh-interval", "1s")
	g := &gate{mysqlPort: ports[2], httpPort: ports[0], flags: args, version: programVersion(bin)}
	if g.proc, err = e.start("vtgate", e.vtCred, nil, bin, args...); err != nil {
		return nil, err
	}
	g.gogc = goGCOf(g.proc.pid(), strconv.Itoa(vitessGOGC)+" (Go's default: Vitess never sets it)")
	for _, ks := range keyspaces {
		if err := g.waitKeyspace(ctx, ks); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// waitKeyspace polls `select c from sbtest1 where id = 1` through vtgate.
func (g *gate) waitKeyspace(ctx context.Context, keyspace string) error {
	db, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(127.0.0.1:%d)/%s", sbUser, g.mysqlPort, keyspace))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		var c string
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.QueryRowContext(qctx, "select c from sbtest1 where id = 1").Scan(&c)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !g.proc.running():
			return fmt.Errorf("vtgate exited (%v); last log lines:\n%s", g.proc.waitErr, g.proc.logTail())
		case time.Now().After(deadline):
			return fmt.Errorf("vtgate does not answer a point select on keyspace %s after %v (last error: %v); vtgate log:\n%s",
				keyspace, readyTimeout, err, tailFile(filepath.Join(filepath.Dir(g.proc.logPath), "vtgate-logs", "vtgate.INFO"), 20))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// gateLeg is one sysbench target: a keyspace through vtgate (the tablet
// behind it is measured), or MariaDB directly over its socket.
type gateLeg struct {
	name   string
	conn   []string // sysbench's connection options
	tablet *tablet  // nil for direct
	gate   *gate    // nil for direct
}

// gateLegs are the sysbench targets for the legs that run.
func gateLegs(st *runState, g *gate, m *mariadb) []*gateLeg {
	var out []*gateLeg
	for _, l := range st.legs {
		switch {
		case l.tablet == nil:
			out = append(out, &gateLeg{name: l.name, conn: []string{"--mysql-socket=" + m.socket,
				"--mysql-user=vt_app", "--mysql-password=" + dbPassword, "--mysql-db=" + dbName}})
		case g != nil:
			ks := l.tablet.client.target.Keyspace
			out = append(out, &gateLeg{name: l.name, tablet: l.tablet, gate: g, conn: []string{"--mysql-host=127.0.0.1",
				"--mysql-port=" + strconv.Itoa(g.mysqlPort), "--mysql-user=" + sbUser, "--mysql-db=" + ks}})
		}
	}
	return out
}

// sbArgs is sysbench's command line: uniform ids (sysbench's default
// "special" distribution would make a few rows hot, and the consolidator
// then matters more than the tablet), no prepared statements, the measured
// part after a checkpoint at the end of the warm-up.
func sbArgs(test string, conn []string, threads, rows, warmSec, durSec int) []string {
	args := append([]string{test}, conn...)
	args = append(args, "--db-ps-mode=disable", "--tables=1", "--table-size="+strconv.Itoa(rows),
		"--rand-type=uniform", "--threads="+strconv.Itoa(threads), "--time="+strconv.Itoa(warmSec+durSec),
		"--report-interval=0", "--percentile=95")
	if warmSec > 0 {
		// A checkpoint reports and resets every counter: the final report
		// covers only the time after it.
		args = append(args, "--report-checkpoints="+strconv.Itoa(warmSec))
	}
	return append(args, "run")
}

// wholeSeconds rounds a duration up to sysbench's whole seconds.
func wholeSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// runSysbench runs one sysbench point: warm-up, then the measured window,
// with the processes' CPU read from /proc at the window's edges (timed from
// sysbench's "Threads started!", where its clock starts).
func runSysbench(ctx context.Context, e *env, l *gateLeg, test string, threads, rows int, warmup, duration time.Duration, m *mariadb) (gateResult, error) {
	res := gateResult{Target: l.name, Workload: test, Threads: threads}
	warmSec, durSec := wholeSeconds(warmup), max(1, wholeSeconds(duration))
	sctx, cancel := context.WithTimeout(ctx, time.Duration(warmSec+durSec)*time.Second+sbGrace)
	defer cancel()
	cmd := exec.CommandContext(sctx, "sysbench", sbArgs(test, l.conn, threads, rows, warmSec, durSec)...)
	cmd.Dir = e.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out := &lockedBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("sysbench: %w", err)
	}
	started := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Threads started!") {
				once.Do(func() { close(started) })
			}
		}
	}()
	before, after, werr := sampleWindow(sctx, l, m, cmd.Process.Pid, started, copied, warmSec, durSec)
	<-copied
	runErr := cmd.Wait()
	text := out.String()
	appendLog(filepath.Join(e.dir, "sysbench.log"), fmt.Sprintf("== %s %s %d threads: %s\n%s\n", l.name, test, threads, strings.Join(cmd.Args, " "), text))
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if runErr != nil || werr != nil {
		return res, fmt.Errorf("sysbench %s against %s: %v %v\n%s", test, l.name, runErr, werr, lastLines(text, 15))
	}
	st, err := parseSysbench(text)
	if err != nil {
		return res, fmt.Errorf("sysbench %s against %s: %w\n%s", test, l.name, err, lastLines(text, 15))
	}
	res.fill(st, before, after)
	return res, nil
}

// sampleWindow waits for sysbench's start, then samples the counters at
// the end of the warm-up and at the end of the measured time.
func sampleWindow(ctx context.Context, l *gateLeg, m *mariadb, sbPID int, started, exited <-chan struct{}, warmSec, durSec int) (before, after gateSample, err error) {
	select {
	case <-started:
	case <-exited:
		return before, after, fmt.Errorf("sysbench ended before its threads started")
	case <-ctx.Done():
		return before, after, ctx.Err()
	}
	t0 := time.Now()
	if !sleepCtx(ctx, time.Duration(warmSec)*time.Second) {
		return before, after, ctx.Err()
	}
	if before, err = sampleGate(l, m, sbPID); err != nil {
		return before, after, err
	}
	if !sleepCtx(ctx, time.Until(t0.Add(time.Duration(warmSec+durSec)*time.Second))) {
		return before, after, ctx.Err()
	}
	after, err = sampleGate(l, m, sbPID)
	return before, after, err
}

// gateSample is a snapshot of the CPU counters of one sysbench window.
type gateSample struct {
	at                     time.Time
	tablet, tabSys, vtgate time.Duration
	mariadb, client        time.Duration
	tabletRSS, vtgateRSS   int64
}

func sampleGate(l *gateLeg, m *mariadb, sbPID int) (gateSample, error) {
	s := gateSample{at: time.Now()}
	var err error
	if l.tablet != nil {
		pid := l.tablet.proc.pid()
		u, sys, err := cpuTimes(pid)
		if err != nil {
			return s, fmt.Errorf("tablet process %d: %w", pid, err)
		}
		s.tablet, s.tabSys = u+sys, sys
		s.tabletRSS, _ = rssBytes(pid)
	}
	if l.gate != nil {
		pid := l.gate.proc.pid()
		if s.vtgate, err = cpuTime(pid); err != nil {
			return s, fmt.Errorf("vtgate process %d: %w", pid, err)
		}
		s.vtgateRSS, _ = rssBytes(pid)
	}
	if s.mariadb, err = cpuTime(m.proc.pid()); err != nil {
		return s, fmt.Errorf("mariadbd: %w", err)
	}
	if s.client, err = cpuTime(sbPID); err != nil {
		return s, fmt.Errorf("sysbench process %d: %w", sbPID, err)
	}
	return s, nil
}

// fill computes the result from sysbench's final report and our window.
// Per query means per statement sysbench counts (reads, and BEGIN/COMMIT
// as "other" in oltp_read_only).
func (r *gateResult) fill(st sbStats, before, after gateSample) {
	window := after.at.Sub(before.at)
	r.Seconds = window.Seconds()
	r.TPS, r.QPS = st.TPS, st.QPS
	r.Transactions, r.Queries = st.Transactions, st.Queries
	r.Errors, r.Reconnects = st.Errors, st.Reconnects
	r.LatAvgMs, r.LatP95Ms, r.LatMaxMs = st.LatAvgMs, st.LatP95Ms, st.LatMaxMs
	q := st.QPS * window.Seconds() // queries in our window at sysbench's rate
	if q <= 0 {
		return
	}
	r.MariaCPUus = us(after.mariadb-before.mariadb) / q
	r.ClientCPUus = us(after.client-before.client) / q
	if after.tablet > 0 {
		r.TabletCPUus = us(after.tablet-before.tablet) / q
		r.TabletSysUs = us(after.tabSys-before.tabSys) / q
		r.TabletRSSMiB = float64(after.tabletRSS) / (1 << 20)
	}
	if after.vtgate > 0 {
		r.VtgateCPUus = us(after.vtgate-before.vtgate) / q
		r.VtgateRSSMiB = float64(after.vtgateRSS) / (1 << 20)
	}
}

// sbStats is sysbench's final report (after the last checkpoint).
type sbStats struct {
	Transactions, Queries, Errors, Reconnects uint64
	TPS, QPS                                  float64
	LatAvgMs, LatP95Ms, LatMaxMs              float64
}

var (
	sbTransactions = regexp.MustCompile(`(?m)^\s*transactions:\s+(\d+)\s+\(([\d.]+) per sec`)
	sbQueries      = regexp.MustCompile(`(?m)^\s*queries:\s+(\d+)\s+\(([\d.]+) per sec`)
	sbErrors       = regexp.MustCompile(`(?m)^\s*ignored errors:\s+(\d+)`)
	sbReconnects   = regexp.MustCompile(`(?m)^\s*reconnects:\s+(\d+)`)
	sbAvg          = regexp.MustCompile(`(?m)^\s*avg:\s+([\d.]+)`)
	sbMax          = regexp.MustCompile(`(?m)^\s*max:\s+([\d.]+)`)
	sbP95          = regexp.MustCompile(`(?m)^\s*95th percentile:\s+([\d.]+)`)
)

// parseSysbench reads the last report of sysbench's output: with
// --report-checkpoints the earlier "Checkpoint report" covers the warm-up.
func parseSysbench(out string) (sbStats, error) {
	var st sbStats
	if strings.Contains(out, "FATAL") {
		return st, fmt.Errorf("sysbench reported a FATAL error")
	}
	i := strings.LastIndex(out, "SQL statistics:")
	if i < 0 {
		return st, fmt.Errorf("no \"SQL statistics:\" report in sysbench's output")
	}
	last := out[i:]
	var errs []string
	find := func(re *regexp.Regexp, group int) string {
		m := re.FindStringSubmatch(last)
		if m == nil {
			errs = append(errs, re.String())
			return "0"
		}
		return m[group]
	}
	u := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }
	f := func(s string) float64 { x, _ := strconv.ParseFloat(s, 64); return x }
	st.Transactions, st.TPS = u(find(sbTransactions, 1)), f(find(sbTransactions, 2))
	st.Queries, st.QPS = u(find(sbQueries, 1)), f(find(sbQueries, 2))
	st.Errors, st.Reconnects = u(find(sbErrors, 1)), u(find(sbReconnects, 1))
	st.LatAvgMs, st.LatMaxMs, st.LatP95Ms = f(find(sbAvg, 1)), f(find(sbMax, 1)), f(find(sbP95, 1))
	if len(errs) > 0 {
		return st, fmt.Errorf("sysbench's report lacks %s", strings.Join(errs, ", "))
	}
	if st.Queries == 0 {
		return st, fmt.Errorf("sysbench completed no query in the measured time")
	}
	return st, nil
}

// sysbenchVersion is `sysbench --version`.
func sysbenchVersion() (string, error) {
	out, err := exec.Command("sysbench", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("sysbench --version: %w (apt-get install -y sysbench)", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// lockedBuffer collects a child's output from two goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lastLines is the tail of a text, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// appendLog appends to a log file, ignoring errors (it is for people).
func appendLog(path, s string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.WriteString(f, s)
}
