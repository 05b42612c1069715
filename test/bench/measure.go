package main

import (
	"context"
	"fmt"
	"time"
)

// idleSettle is how long nothing runs before an idle RSS sample.
const idleSettle = 5 * time.Second

// runState is what measure works on.
type runState struct {
	mariadb  *mariadb
	legs     []*leg
	gate     *gate      // nil without the vtgate leg
	gateLegs []*gateLeg // the sysbench targets
}

// measurer runs the rounds and records into rep. Only an interrupt is an
// error: a target that fails is dropped and recorded in rep.Unavailable.
type measurer struct {
	cfg      config
	e        *env
	st       *runState
	rep      *report
	seq      int // points run so far, for the report's order
	streamOK map[string]bool
}

func measure(ctx context.Context, cfg config, e *env, st *runState, rep *report) error {
	ms := &measurer{cfg: cfg, e: e, st: st, rep: rep, streamOK: map[string]bool{}}
	if err := ms.sampleIdle(ctx, "start"); err != nil {
		return err
	}
	if cfg.grpcLeg && cfg.streamRows > 0 {
		if err := ms.warmStreams(ctx); err != nil {
			return err
		}
	}
	for round := 1; round <= cfg.rounds; round++ {
		if cfg.grpcLeg {
			if err := ms.pointRound(ctx, round); err != nil {
				return err
			}
			if err := ms.streamRound(ctx, round); err != nil {
				return err
			}
		}
		if cfg.vtgateLeg {
			if err := ms.gateRound(ctx, round); err != nil {
				return err
			}
		}
	}
	if err := ms.sampleIdle(ctx, "end"); err != nil {
		return err
	}
	if cfg.grpcLeg && cfg.profileDir != "" {
		return ms.profileRound(ctx)
	}
	return nil
}

// sampleIdle records each tablet's (and vtgate's) RSS after idleSettle
// without load.
func (ms *measurer) sampleIdle(ctx context.Context, when string) error {
	if !sleepCtx(ctx, idleSettle) {
		return ctx.Err()
	}
	add := func(name string, pid int) {
		if b, err := rssBytes(pid); err == nil {
			ms.rep.Idle = append(ms.rep.Idle, idleRSS{Target: name, When: when, MiB: float64(b) / (1 << 20)})
			logf("idle (%s): %s RSS %.0f MiB", when, name, float64(b)/(1<<20))
		}
	}
	for _, l := range ms.st.legs {
		if l.tablet != nil && l.tablet.proc.running() {
			add(l.name, l.pid())
		}
	}
	if g := ms.st.gate; g != nil && g.proc.running() {
		add("vtgate", g.proc.pid())
	}
	return nil
}

// alive are the gRPC legs not dropped yet.
func (ms *measurer) alive() []*leg {
	var out []*leg
	for _, l := range ms.st.legs {
		if _, dead := ms.rep.Unavailable[l.name]; !dead {
			out = append(out, l)
		}
	}
	return out
}

func (ms *measurer) fail(l *leg, err error) {
	why := err.Error()
	if l.tablet != nil && !l.tablet.proc.running() {
		why += fmt.Sprintf("; %s exited (%v), last log lines:\n%s", l.name, l.tablet.proc.waitErr, l.tablet.proc.logTail())
	}
	ms.rep.Unavailable[l.name] = why
	logf("%s dropped: %s", l.name, why)
}

// warmStreams runs one unmeasured scan per target, which also checks that
// streaming works.
func (ms *measurer) warmStreams(ctx context.Context) error {
	for _, l := range ms.alive() {
		if _, err := runStream(ctx, l, ms.cfg.streamRows, ms.st.mariadb); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ms.rep.Unavailable[l.name+" (stream)"] = err.Error()
			logf("%s stream NOT MEASURED: %v", l.name, err)
			continue
		}
		ms.streamOK[l.name] = true
	}
	return nil
}

// pointRound runs every concurrency level once, the targets in an order
// that rotates with the round and the level.
func (ms *measurer) pointRound(ctx context.Context, round int) error {
	cfg := ms.cfg
	for ci, n := range cfg.clients {
		for _, l := range rotate(ms.alive(), round+ci) {
			rows := cfg.rows
			if cfg.hot != "" {
				rows = 1 // every client reads row 1
			}
			p, err := runPoint(ctx, l, n, rows, cfg.warmup, cfg.duration, ms.st.mariadb)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				ms.fail(l, err)
				continue
			}
			ms.seq++
			p.Round, p.Seq = round, ms.seq
			ms.rep.Points = append(ms.rep.Points, p)
			tcpu := ""
			if l.tablet != nil {
				tcpu = fmt.Sprintf(", tablet %.0f µs/q, RSS %.0f MiB", p.TabletCPUus, p.TabletRSSMiB)
			}
			logf("round %d/%d, %4d clients, %-14s %7.0f QPS, p50 %5.0f µs, p99 %6.0f µs, mariadbd %.0f µs/q%s, errors %d",
				round, cfg.rounds, n, l.name, p.QPS, p.P50us, p.P99us, p.MariaCPUus, tcpu, p.Errors)
		}
	}
	return nil
}

// streamRound runs one measured scan per target.
func (ms *measurer) streamRound(ctx context.Context, round int) error {
	for _, l := range rotate(ms.alive(), round) {
		if !ms.streamOK[l.name] {
			continue
		}
		s, err := runStream(ctx, l, ms.cfg.streamRows, ms.st.mariadb)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			ms.rep.Unavailable[l.name+" (stream)"] = err.Error()
			ms.streamOK[l.name] = false
			logf("%s stream dropped: %v", l.name, err)
			continue
		}
		ms.seq++
		s.Round, s.Seq = round, ms.seq
		ms.rep.Streams = append(ms.rep.Streams, s)
		logf("round %d/%d, stream %-14s %8.0f rows/s, tablet %.2f ms/1k rows, mariadbd %.2f ms/1k rows",
			round, ms.cfg.rounds, l.name, s.RowsPS, s.TabletCPUms, s.MariaCPUms)
	}
	return nil
}

// gateRound runs every sysbench workload at every thread count once, the
// targets in a rotating order.
func (ms *measurer) gateRound(ctx context.Context, round int) error {
	cfg := ms.cfg
	k := 0
	for _, test := range cfg.sysbenchTests {
		for _, n := range cfg.vtgateThreads {
			var alive []*gateLeg
			for _, l := range ms.st.gateLegs {
				if _, dead := ms.rep.Unavailable[l.name+" (vtgate)"]; !dead {
					alive = append(alive, l)
				}
			}
			for _, l := range rotate(alive, round+k) {
				g, err := runSysbench(ctx, ms.e, l, test, n, cfg.rows, cfg.warmup, cfg.duration, ms.st.mariadb)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					ms.rep.Unavailable[l.name+" (vtgate)"] = err.Error()
					logf("%s dropped from the vtgate leg: %v", l.name, err)
					continue
				}
				ms.seq++
				g.Round, g.Seq = round, ms.seq
				ms.rep.Gate = append(ms.rep.Gate, g)
				logf("round %d/%d, %s %3d threads, %-14s %7.0f QPS, %6.0f TPS, p95 %.2f ms, tablet %.0f µs/q, vtgate %.0f µs/q, errors %d",
					round, cfg.rounds, test, n, l.name, g.QPS, g.TPS, g.LatP95Ms, g.TabletCPUus, g.VtgateCPUus, g.Errors+g.Reconnects)
			}
			k++
		}
	}
	return nil
}

// rotate returns ls rotated left by k, so each round starts with another target.
func rotate[T any](ls []T, k int) []T {
	if len(ls) == 0 {
		return ls
	}
	k %= len(ls)
	return append(append([]T{}, ls[k:]...), ls[:k]...)
}
