package vdiff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/topo"
)

// Table diff phases, as vttablet names them in VDiffPhaseTimings.
const (
	phaseInitializing = "initializing"
	phasePicking      = "picking_streaming_tablets"
	phaseSyncSources  = "syncing_source_streams"
	phaseSyncTargets  = "syncing_target_streams"
	phaseStartSources = "starting_source_data_streams"
	phaseStartTarget  = "starting_target_data_streams"
	phaseRestart      = "restarting_vreplication_streams"
	phaseDiffing      = "diffing_table"
)

// restartTimeout bounds restarting the workflow after a synchronisation, whatever happened.
const restartTimeout = 2 * time.Minute

// initialize synchronises the sources and the target at one position and opens the run's
// streams: see the package documentation. The workflow runs again when it returns, on every
// path.
func (td *tableDiff) initialize(ctx context.Context, c *conn) (err error) {
	ct, e := td.ct, td.ct.e
	defer ct.timePhase(td.spec.name, phaseInitializing, e.now())
	e.snapshotMu.Lock()
	defer e.snapshotMu.Unlock()

	unlock, err := e.deps.Topo.LockName(ctx, e.cfg.Keyspace+"/"+ct.workflow, "vdiff")
	if err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "locking workflow %s/%s", e.cfg.Keyspace, ct.workflow)
	}
	defer unlock()

	runCtx, cancel := context.WithCancel(ctx)
	td.cancel = cancel
	defer func() {
		if err != nil {
			td.stopStreams()
		}
	}()

	ct.setPhase(td.spec.name, "stopping the workflow")
	if _, err := e.deps.VRepl.Exec(ctx, sqlf(e.sc(), sqlStopWorkflow, quoteString(ct.workflow), quoteString(e.cfg.DBName)), true); err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "stopping workflow %s for the diff", ct.workflow)
	}
	// The workflow runs again whatever happens from here on: a context of its own, as the
	// diff's may be over (stopped, engine closing).
	defer func() {
		start := e.now()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), restartTimeout)
		defer rcancel()
		if rerr := td.restartWorkflow(rctx); rerr != nil {
			e.log.Error("cannot restart the workflow after the diff's synchronisation", zap.String("workflow", ct.workflow), zap.Error(rerr))
			if err == nil {
				err = rerr
			}
		}
		ct.timePhase(td.spec.name, phaseRestart, start)
	}()

	wf, err := e.readWorkflow(ctx, c, ct.workflow)
	if err != nil {
		return err
	}
	for _, s := range wf.streams {
		if pos, perr := replication.ParsePosition(s.pos); perr != nil || pos.IsZero() {
			return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "stream %d has not started on tablet %s", s.id, e.alias())
		}
	}
	tablets, err := td.pickSources(ctx, wf)
	if err != nil {
		return err
	}
	timeout := time.Duration(ct.opts.CoreOptions.GetTimeoutSeconds()) * time.Second
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if err := td.syncSources(ctx, wf, tablets, timeout); err != nil {
		return err
	}
	firsts, err := td.startSources(runCtx, wf, tablets)
	if err != nil {
		return err
	}
	if err := td.syncTargets(ctx, wf, firsts, timeout); err != nil {
		return err
	}
	return td.startTarget(runCtx, c, firsts)
}

// restartWorkflow runs the workflow's streams again (vttablet retries three times).
func (td *tableDiff) restartWorkflow(ctx context.Context) error {
	e := td.ct.e
	q := sqlf(e.sc(), sqlRestartWorkflow, quoteString(e.cfg.DBName), quoteString(td.ct.workflow))
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = e.deps.VRepl.Exec(ctx, q, true); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// pickSources chooses a healthy tablet of each source shard.
func (td *tableDiff) pickSources(ctx context.Context, wf *workflow) (map[string]*topodatapb.Tablet, error) {
	ct, e := td.ct, td.ct.e
	defer ct.timePhase(td.spec.name, phasePicking, e.now())
	ct.setPhase(td.spec.name, phasePicking)
	out := map[string]*topodatapb.Tablet{}
	var mu sync.Mutex
	err := forEach(wf.streams, func(s *stream) error {
		t, err := e.pick(ctx, ct.opts.PickerOptions.SourceCell, ct.opts.PickerOptions.TabletTypes, s.source.Keyspace, s.source.Shard)
		if err != nil {
			return err
		}
		mu.Lock()
		out[s.source.Shard] = t
		mu.Unlock()
		return nil
	})
	return out, err
}

// syncSources waits until each source tablet has applied its stream's position.
func (td *tableDiff) syncSources(ctx context.Context, wf *workflow, tablets map[string]*topodatapb.Tablet, timeout time.Duration) error {
	ct, e := td.ct, td.ct.e
	defer ct.timePhase(td.spec.name, phaseSyncSources, e.now())
	ct.setPhase(td.spec.name, phaseSyncSources)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return forEach(wf.streams, func(s *stream) error {
		t := tablets[s.source.Shard]
		if err := e.deps.TM.WaitForPosition(wctx, t, s.pos); err != nil {
			return rpcerr.Wrap(rpcerr.Code(err), err, "WaitForPosition for tablet %s", topo.AliasString(t.Alias))
		}
		return nil
	})
}

// startSources opens VStreamRows on every source tablet and returns their first responses
// (fields, key fields and snapshot position), by shard.
func (td *tableDiff) startSources(ctx context.Context, wf *workflow, tablets map[string]*topodatapb.Tablet) (map[string]*sourceFirst, error) {
	ct, e := td.ct, td.ct.e
	defer ct.timePhase(td.spec.name, phaseStartSources, e.now())
	ct.setPhase(td.spec.name, phaseStartSources)
	var mu sync.Mutex
	out := map[string]*sourceFirst{}
	err := forEach(wf.streams, func(s *stream) error {
		t := tablets[s.source.Shard]
		src, err := e.deps.Dial.Dial(ctx, t)
		if err != nil {
			return err
		}
		ss := startSource(ctx, src, s.source.Shard, td.spec.sourceQuery, td.lastSrc, func(p *tablePlan) *weigher {
			if len(p.weighted) == 0 {
				return nil
			}
			return &weigher{p: p, c: newConn(e.cfg.Conn)}
		})
		mu.Lock()
		td.sources = append(td.sources, ss)
		mu.Unlock()
		select {
		case first := <-ss.first:
			if _, perr := replication.ParsePosition(first.Gtid); perr != nil || first.Gtid == "" {
				return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "source tablet %s gave the snapshot position %q", topo.AliasString(t.Alias), first.Gtid)
			}
			mu.Lock()
			out[s.source.Shard] = &sourceFirst{stream: s, resp: first, tablet: t}
			mu.Unlock()
			return nil
		case <-ss.rd.done:
			if ss.rd.err == nil {
				return rpcerr.New(vtrpcpb.Code_INTERNAL, "VStreamRows on %s ended without a response", topo.AliasString(t.Alias))
			}
			return ss.rd.err
		}
	})
	return out, err
}

type sourceFirst struct {
	stream *stream
	resp   *binlogdatapb.VStreamRowsResponse
	tablet *topodatapb.Tablet
}

// syncTargets runs each stream to exactly its source's snapshot position (stop_pos), and
// waits until it is there.
func (td *tableDiff) syncTargets(ctx context.Context, wf *workflow, firsts map[string]*sourceFirst, timeout time.Duration) error {
	ct, e := td.ct, td.ct.e
	defer ct.timePhase(td.spec.name, phaseSyncTargets, e.now())
	ct.setPhase(td.spec.name, phaseSyncTargets)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return forEach(wf.streams, func(s *stream) error {
		pos := firsts[s.source.Shard].resp.Gtid
		if _, err := e.deps.VRepl.Exec(wctx, sqlf(e.sc(), sqlSyncStream, quoteString(pos), s.id), true); err != nil {
			return err
		}
		if err := e.deps.VRepl.WaitForPos(wctx, s.id, pos); err != nil {
			return rpcerr.Wrap(rpcerr.Code(err), err, "WaitForPosition for stream id %d", s.id)
		}
		return nil
	})
}

// startTarget builds the table's plan from the sources' first responses, gives it to the
// source streams and opens the target's snapshot and stream.
func (td *tableDiff) startTarget(ctx context.Context, c *conn, firsts map[string]*sourceFirst) error {
	ct, e := td.ct, td.ct.e
	defer ct.timePhase(td.spec.name, phaseStartTarget, e.now())
	ct.setPhase(td.spec.name, phaseStartTarget)
	var ref *sourceFirst
	for _, f := range firsts {
		if ref == nil || f.stream.id < ref.stream.id {
			ref = f
		}
	}
	for _, f := range firsts {
		if err := sameFields(ref.resp, f.resp); err != nil {
			return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "table %s: source shards %s and %s disagree: %v", td.spec.name, ref.stream.source.Shard, f.stream.source.Shard, err)
		}
	}
	p, err := buildPlan(td.spec, td.si, td.tt, ref.resp.Fields, ref.resp.Pkfields)
	if err != nil {
		return err
	}
	td.plan = p
	for _, s := range td.sources {
		s.plan <- p
	}
	sn, err := e.deps.Local.OpenSnapshot(ctx, tabletserver.ReadRequest{Target: e.deps.Target(), Caller: e.cfg.Caller, Tables: []string{td.spec.name}})
	if err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "opening the target's snapshot")
	}
	var w *weigher
	if len(p.weighted) > 0 {
		w = &weigher{p: p, c: newConn(e.cfg.Conn)}
	}
	td.target = startTarget(ctx, sn, p.targetQuery(td.lastTgt), e.cfg.PacketBytes, w)
	select {
	case td.tgtFields = <-td.target.fields:
	case <-td.target.rd.done:
		if td.target.rd.err != nil {
			return td.target.rd.err
		}
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "the target's select of %s gave no fields", td.spec.name)
	}
	if len(td.tgtFields) != len(p.cols) {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "the target's select of %s gave %d columns, want %d", td.spec.name, len(td.tgtFields), len(p.cols))
	}
	return nil
}

func sameFields(a, b *binlogdatapb.VStreamRowsResponse) error {
	names := func(fs []*querypb.Field) string {
		n := make([]string, len(fs))
		for i, f := range fs {
			n[i] = strings.ToLower(f.Name)
		}
		return strings.Join(n, ",")
	}
	if x, y := names(a.Fields), names(b.Fields); x != y {
		return fmt.Errorf("columns (%s) and (%s)", x, y)
	}
	if x, y := names(a.Pkfields), names(b.Pkfields); x != y {
		return fmt.Errorf("key columns (%s) and (%s)", x, y)
	}
	return nil
}

// forEach runs f for every stream at once and joins their errors.
func forEach(streams []*stream, f func(s *stream) error) error {
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
