package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// stragglerGrace is how long requests in flight when a point ends may
	// take before they are cancelled.
	stragglerGrace = 30 * time.Second
	// streamTimeout bounds one full scan.
	streamTimeout = 10 * time.Minute
)

// pointResult is one measured point: one target at one concurrency in one round.
type pointResult struct {
	Target  string `json:"target"`
	Clients int    `json:"clients"`
	Round   int    `json:"round"`
	Seq     int    `json:"seq,omitempty"` // place in the run's order of points

	Queries  uint64  `json:"queries"`
	Errors   uint64  `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	Seconds  float64 `json:"seconds"`
	QPS      float64 `json:"qps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MaxUs    float64 `json:"max_us"`
	// CPU µs per successful query, over the measured window.
	TabletCPUus float64 `json:"tablet_cpu_us_per_query,omitempty"`
	TabletSysUs float64 `json:"tablet_sys_cpu_us_per_query,omitempty"` // the kernel part of TabletCPUus
	MariaCPUus  float64 `json:"mariadbd_cpu_us_per_query"`
	// MariaStmts is statements mariadbd received per query (Questions).
	MariaStmts   float64 `json:"mariadbd_statements_per_query"`
	ClientCPUus  float64 `json:"client_cpu_us_per_query"`
	TabletRSSMiB float64 `json:"tablet_rss_mib,omitempty"`
}

// leg is a target under test with its process (nil for MariaDB direct).
type leg struct {
	name   string
	tablet *tablet
	// open returns the target for a point with n clients and a release func.
	open func(n int) (target, func(), error)
}

func (l *leg) pid() int {
	if l.tablet == nil {
		return 0
	}
	return l.tablet.proc.pid()
}

// Phases of a point's clients.
const (
	phaseWarm int32 = iota
	phaseMeasure
	phaseStop
)

// loadGen is n closed-loop clients (each sends its next query when the
// previous answer arrived); each records into its own histogram while the
// phase is phaseMeasure.
type loadGen struct {
	phase     atomic.Int32
	hists     []*histogram
	errCounts []uint64
	firstErr  atomic.Value
	wg        sync.WaitGroup
}

func startClients(ctx context.Context, tgt target, n, rows int) *loadGen {
	g := &loadGen{hists: make([]*histogram, n), errCounts: make([]uint64, n)}
	for i := range n {
		g.hists[i] = new(histogram)
		g.wg.Go(func() { g.client(ctx, i, tgt, rows) })
	}
	return g
}

func (g *loadGen) client(ctx context.Context, i int, tgt target, rows int) {
	h := g.hists[i]
	rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))
	for {
		if g.phase.Load() == phaseStop || ctx.Err() != nil {
			return
		}
		id := 1 + rng.Int64N(int64(rows))
		start := time.Now()
		err := tgt.query(ctx, id)
		d := time.Since(start)
		if g.phase.Load() != phaseMeasure {
			if err != nil {
				time.Sleep(10 * time.Millisecond) // don't spin on a dead target
			}
			continue
		}
		if err != nil {
			g.errCounts[i]++
			g.firstErr.CompareAndSwap(nil, err.Error())
			time.Sleep(10 * time.Millisecond)
			continue
		}
		h.record(d)
	}
}

// merged is every client's histogram in one, and the errors.
func (g *loadGen) merged(res *pointResult) histogram {
	var all histogram
	for i, h := range g.hists {
		all.merge(h)
		res.Errors += g.errCounts[i]
	}
	if v := g.firstErr.Load(); v != nil {
		res.FirstErr = v.(string)
	}
	return all
}

// runPoint drives n closed-loop clients for warmup, then measures for
// duration; the counters (and the tablet's RSS) are read at the window's
// edges while the clients run.
func runPoint(ctx context.Context, l *leg, n, rows int, warmup, duration time.Duration, m *mariadb) (pointResult, error) {
	return runPointProbed(ctx, l, n, rows, warmup, duration, m, nil)
}

// runPointProbed is runPoint with probe (if not nil) started as the measured
// window opens; the func it returns is called with the queries measured.
func runPointProbed(ctx context.Context, l *leg, n, rows int, warmup, duration time.Duration, m *mariadb,
	probe func(ctx context.Context, d time.Duration) func(q uint64)) (pointResult, error) {
	res := pointResult{Target: l.name, Clients: n}
	tgt, release, err := l.open(n)
	if err != nil {
		return res, err
	}
	defer release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := startClients(ctx, tgt, n, rows)
	stopAll := func() {
		g.phase.Store(phaseStop)
		cancel()
		g.wg.Wait()
	}
	if !sleepCtx(ctx, warmup) {
		stopAll()
		return res, ctx.Err()
	}
	before, err := sampleCPU(l.pid(), m)
	if err != nil {
		stopAll()
		return res, err
	}
	var probed func(q uint64)
	if probe != nil {
		probed = probe(ctx, duration)
	}
	g.phase.Store(phaseMeasure)
	ok := sleepCtx(ctx, duration)
	after, err := sampleCPU(l.pid(), m)
	var rssNow int64
	if l.tablet != nil {
		rssNow, _ = rssBytes(l.pid())
	}
	g.phase.Store(phaseStop)
	// A hung target must not hang the run: requests still out after the
	// grace period are cancelled (and were not counted).
	watchdog := time.AfterFunc(stragglerGrace, cancel)
	g.wg.Wait()
	watchdog.Stop()
	if !ok {
		return res, ctx.Err()
	}
	if err != nil {
		return res, err
	}
	all := g.merged(&res)
	if probed != nil {
		probed(all.total)
	}
	window := after.at.Sub(before.at)
	res.Queries, res.Seconds = all.total, window.Seconds()
	if all.total == 0 {
		return res, fmt.Errorf("%s: no successful query in %v (first error: %s)", l.name, window, res.FirstErr)
	}
	res.fill(&all, before, after, l.tablet != nil, rssNow)
	return res, nil
}

// fill computes the rates and per-query costs of a measured window.
func (res *pointResult) fill(all *histogram, before, after cpuSample, tablet bool, rssNow int64) {
	q := float64(all.total)
	res.QPS = q / after.at.Sub(before.at).Seconds()
	res.P50us = us(all.quantile(0.50))
	res.P99us = us(all.quantile(0.99))
	res.MaxUs = us(all.max)
	res.MariaCPUus = us(after.mariadb-before.mariadb) / q
	// Minus the one probe statement of the second sample.
	res.MariaStmts = (float64(after.questions-before.questions) - 1) / q
	res.ClientCPUus = us(after.self-before.self) / q
	if tablet {
		res.TabletCPUus = us(after.tablet-before.tablet) / q
		res.TabletSysUs = us(after.tabSys-before.tabSys) / q
		res.TabletRSSMiB = float64(rssNow) / (1 << 20)
	}
}

// streamResult is one full scan of sbtest2 through one target.
type streamResult struct {
	Target  string  `json:"target"`
	Round   int     `json:"round"`
	Seq     int     `json:"seq,omitempty"`
	Rows    int64   `json:"rows"`
	Seconds float64 `json:"seconds"`
	RowsPS  float64 `json:"rows_per_s"`
	// CPU ms per 1,000 rows.
	TabletCPUms  float64 `json:"tablet_cpu_ms_per_1k_rows,omitempty"`
	MariaCPUms   float64 `json:"mariadbd_cpu_ms_per_1k_rows"`
	ClientCPUms  float64 `json:"client_cpu_ms_per_1k_rows"`
	TabletRSSMiB float64 `json:"tablet_rss_mib,omitempty"`
}

// runStream runs one StreamExecute (or, direct, one unbuffered query) of
// the whole sbtest2 table.
func runStream(ctx context.Context, l *leg, wantRows int, m *mariadb) (streamResult, error) {
	res := streamResult{Target: l.name}
	tgt, release, err := l.open(1)
	if err != nil {
		return res, err
	}
	defer release()
	before, err := sampleCPU(l.pid(), m)
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	rows, err := tgt.stream(sctx)
	after, err2 := sampleCPU(l.pid(), m)
	if err != nil {
		return res, fmt.Errorf("%s: stream after %d rows: %w", l.name, rows, err)
	}
	if err2 != nil {
		return res, err2
	}
	if rows != int64(wantRows) {
		return res, fmt.Errorf("%s: stream returned %d rows, want %d", l.name, rows, wantRows)
	}
	window := after.at.Sub(before.at)
	k := float64(rows) / 1000
	res.Rows, res.Seconds = rows, window.Seconds()
	res.RowsPS = float64(rows) / window.Seconds()
	res.MariaCPUms = ms(after.mariadb-before.mariadb) / k
	res.ClientCPUms = ms(after.self-before.self) / k
	if l.tablet != nil {
		res.TabletCPUms = ms(after.tablet-before.tablet) / k
		if rss, err := rssBytes(l.pid()); err == nil {
			res.TabletRSSMiB = float64(rss) / (1 << 20)
		}
	}
	return res, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
