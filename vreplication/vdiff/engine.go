package vdiff

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/topo"
)

// Engine runs the VDiffs of this tablet. It is open only while the tablet is a PRIMARY
// (vttablet's VDiff engine opens with the VReplication engine); actions answer UNAVAILABLE
// otherwise.
type Engine struct {
	cfg  Config
	deps Deps
	log  *zap.Logger
	now  func() time.Time

	// mu guards the fields below. Controllers never take it while they run; it is held while
	// a controller is stopped, so an action and the controllers it starts or stops are one
	// step.
	mu          sync.Mutex
	open        bool
	ctx         context.Context // the open engine's lifetime
	cancel      context.CancelFunc
	controllers map[int64]*controller
	wg          sync.WaitGroup // the open loop

	// permanent are diffs whose last error cannot heal by retrying (a bad plan); auto-retry
	// leaves them alone until they are resumed. Its own lock: controllers set it.
	permMu    sync.Mutex
	permanent map[int64]bool

	// snapshotMu lets one synchronisation (stop, sync, restart of a workflow) run at a
	// time: two diffs of one workflow must not interleave their stop and restart.
	snapshotMu sync.Mutex

	stats stats
}

// stats are vttablet's VDiff variables (tabletmanager/vdiff/stats.go), engine-wide.
type stats struct {
	errors   atomic.Int64 // VDiffErrorCountTotal
	rows     atomic.Int64 // VDiffRowsComparedTotal
	mu       sync.Mutex
	restarts map[string]int64 // VDiffRestartedTableDiffsCount, by table
}

// New returns a closed engine.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.VRepl == nil || d.Topo == nil || d.TM == nil || d.Dial == nil || d.Local == nil || d.Target == nil {
		return nil, fmt.Errorf("vdiff: VRepl, Topo, TM, Dial, Local and Target are required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Sidecar == nil {
		d.Sidecar = func() string { return "_vt" }
	}
	cfg.Conn.DBName = cfg.DBName
	e := &Engine{cfg: cfg, deps: d, log: d.Log.Named("vdiff"), now: d.Clock,
		controllers: map[int64]*controller{}, permanent: map[int64]bool{}}
	e.stats.restarts = map[string]int64{}
	return e, nil
}

func (e *Engine) sc() string { return e.deps.Sidecar() }

func (e *Engine) alias() string { return topo.AliasString(e.cfg.Alias) }

// Open starts the engine: the diffs left pending or started are resumed and workflows a
// diff left stopped run again, in the background (retrying while MySQL is unreachable), so
// Open never blocks. Then diffs in error with auto_retry are retried every RetryInterval.
func (e *Engine) Open() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open {
		return
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.open = true
	e.wg.Add(1)
	go e.background(e.ctx)
	e.log.Info("vdiff engine open")
}

// Close stops every diff (their state stays as it is: a started diff resumes when the engine
// opens again) and waits for them.
func (e *Engine) Close() {
	e.mu.Lock()
	if !e.open {
		e.mu.Unlock()
		return
	}
	e.open = false
	e.cancel()
	for id, ct := range e.controllers {
		ct.stop()
		delete(e.controllers, id)
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.log.Info("vdiff engine closed")
}

// IsOpen reports whether the engine runs (the tablet is a PRIMARY).
func (e *Engine) IsOpen() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.open
}

func (e *Engine) background(ctx context.Context) {
	defer e.wg.Done()
	c := newConn(e.cfg.Conn)
	defer c.close()
	for {
		err := e.startPending(ctx, c)
		if err == nil {
			break
		}
		e.log.Warn("cannot read the diffs to run; will retry", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.OpenRetry):
		}
	}
	tick := time.NewTicker(e.cfg.RetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := e.retryErrored(ctx, c); err != nil && ctx.Err() == nil {
			e.log.Warn("retrying vdiffs", zap.Error(err))
		}
	}
}

// startPending restarts the workflows a diff interrupted by a crash left stopped, then
// starts a controller for every diff pending or started.
func (e *Engine) startPending(ctx context.Context, c *conn) error {
	if err := e.restartStaleStops(ctx, c); err != nil {
		return err
	}
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlVDiffsToRun, quoteString(e.cfg.DBName)))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range namedRows(qr) {
		if ctx.Err() != nil {
			return nil
		}
		opts, err := parseOptions(r["options"])
		if err != nil {
			e.log.Error("vdiff with unreadable options", zap.String("uuid", r["vdiff_uuid"]), zap.Error(err))
			continue
		}
		e.startLocked(r, opts)
	}
	return nil
}

// restartStaleStops runs again the workflows a diff stopped and never restarted (the tablet
// died mid-synchronisation). It holds snapshotMu: a diff created over the RPC may be
// synchronising right now, and its workflow, stopped a moment ago, is not stale — restarting
// it would let the target run past the source's snapshot.
func (e *Engine) restartStaleStops(ctx context.Context, c *conn) error {
	e.snapshotMu.Lock()
	defer e.snapshotMu.Unlock()
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlStaleVDiffStops, quoteString(e.cfg.DBName)))
	if err != nil {
		return err
	}
	for _, r := range namedRows(qr) {
		e.log.Info("restarting a workflow a diff left stopped", zap.String("workflow", r["workflow"]))
		if _, err := e.deps.VRepl.Exec(ctx, sqlf(e.sc(), sqlRestartWorkflow, quoteString(e.cfg.DBName), quoteString(r["workflow"])), true); err != nil {
			return err
		}
	}
	return nil
}

// ephemeral are the MySQL errors vttablet's auto-retry retries (sqlerror.IsEphemeralError);
// an error whose text carries no errno is retried too.
var ephemeral = map[uint16]bool{2002: true, 2003: true, 2027: true, 2016: true, 2012: true, 2006: true, 2013: true,
	2026: true, 2000: true, 2005: true, 1135: true, 1021: true, 1152: true, 1078: true, 1129: true, 1206: true,
	1874: true, 1815: true, 1213: true, 1205: true, 3024: true, 1037: true, 1041: true, 1038: true, 1317: true,
	1053: true, 1079: true, 1040: true, 1105: true, 1226: true}

var errnoInText = regexp.MustCompile(`\(errno (\d+)\)`)

// retryable reports whether auto-retry may run a diff whose last_error is msg again.
func retryable(msg string) bool {
	m := errnoInText.FindStringSubmatch(msg)
	if m == nil {
		return true
	}
	n, _ := strconv.ParseUint(m[1], 10, 16)
	return ephemeral[uint16(n)]
}

// retryErrored restarts the diffs in error whose options ask for auto-retry.
func (e *Engine) retryErrored(ctx context.Context, c *conn) error {
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlVDiffsToRetry, quoteString(e.cfg.DBName)))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range namedRows(qr) {
		id := r.int64("id")
		if ctx.Err() != nil || !e.open || e.isPermanent(id) || !retryable(r["last_error"]) || e.runningLocked(id) {
			continue
		}
		opts, err := parseOptions(r["options"])
		if err != nil {
			continue
		}
		e.log.Info("retrying vdiff", zap.String("uuid", r["vdiff_uuid"]), zap.String("last_error", r["last_error"]))
		if _, err := c.exec(ctx, sqlf(e.sc(), sqlRetryVDiff, id)); err != nil {
			return err
		}
		insertLog(ctx, c, e.sc(), id, "Retrying after error: "+r["last_error"])
		e.startLocked(r, opts)
	}
	return nil
}

// runningLocked reports whether diff id has a controller that has not finished.
func (e *Engine) runningLocked(id int64) bool {
	ct := e.controllers[id]
	if ct == nil {
		return false
	}
	select {
	case <-ct.done:
		delete(e.controllers, id)
		return false
	default:
		return true
	}
}

// startLocked starts the controller of a vdiff row unless one runs already. e.mu is held.
func (e *Engine) startLocked(r namedRow, opts *tabletmanagerdatapb.VDiffOptions) {
	id := r.int64("id")
	if !e.open || e.runningLocked(id) {
		return
	}
	e.permMu.Lock()
	delete(e.permanent, id)
	e.permMu.Unlock()
	ct := newController(e, id, r["vdiff_uuid"], r["workflow"], opts)
	e.controllers[id] = ct
	go ct.run(e.ctx)
}

// stopLocked stops diff id's controller, if any, and waits for it. e.mu is held.
func (e *Engine) stopLocked(id int64) {
	if ct := e.controllers[id]; ct != nil {
		ct.stop()
		delete(e.controllers, id)
	}
}

// markPermanent records that diff id failed in a way retrying cannot heal.
func (e *Engine) markPermanent(id int64) {
	e.permMu.Lock()
	e.permanent[id] = true
	e.permMu.Unlock()
}

func (e *Engine) isPermanent(id int64) bool {
	e.permMu.Lock()
	defer e.permMu.Unlock()
	return e.permanent[id]
}

// parseOptions reads the options column: vttablet writes it with encoding/json of the
// proto struct (snake_case keys).
func parseOptions(s string) (*tabletmanagerdatapb.VDiffOptions, error) {
	o := &tabletmanagerdatapb.VDiffOptions{}
	if s != "" {
		if err := json.Unmarshal([]byte(s), o); err != nil {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "vdiff options %q: %v", s, err)
		}
	}
	return withDefaults(o), nil
}

// withDefaults fills the nested messages a client may leave out.
func withDefaults(o *tabletmanagerdatapb.VDiffOptions) *tabletmanagerdatapb.VDiffOptions {
	if o == nil {
		o = &tabletmanagerdatapb.VDiffOptions{}
	}
	if o.PickerOptions == nil {
		o.PickerOptions = &tabletmanagerdatapb.VDiffPickerOptions{}
	}
	if o.CoreOptions == nil {
		o.CoreOptions = &tabletmanagerdatapb.VDiffCoreOptions{}
	}
	if o.ReportOptions == nil {
		o.ReportOptions = &tabletmanagerdatapb.VDiffReportOptions{}
	}
	return o
}

func insertLog(ctx context.Context, c *conn, sc string, id int64, msg string) {
	_, _ = c.exec(ctx, sqlf(sc, sqlInsertLog, id, quoteString(msg)))
}

// Running is a diff in progress, for the status page.
type Running struct {
	UUID, Workflow, Table, Phase string
	Started                      time.Time
	RowsCompared                 int64 // this run, all tables
	Mismatches                   int64 // mismatched and extra rows found so far in this run
}

// Diffs lists the diffs running now, by workflow and UUID.
func (e *Engine) Diffs() []Running {
	e.mu.Lock()
	cts := make([]*controller, 0, len(e.controllers))
	for _, ct := range e.controllers {
		cts = append(cts, ct)
	}
	e.mu.Unlock()
	out := make([]Running, 0, len(cts))
	for _, ct := range cts {
		if r, ok := ct.status(); ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Workflow != out[j].Workflow {
			return out[i].Workflow < out[j].Workflow
		}
		return out[i].UUID < out[j].UUID
	})
	return out
}

// Count is VDiffCount: the diffs with a controller now.
func (e *Engine) Count() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := int64(0)
	for id := range e.controllers {
		if e.runningLocked(id) {
			n++
		}
	}
	return n
}

// ErrorCount is VDiffErrorCountTotal: failed actions and failed diffs since start.
func (e *Engine) ErrorCount() int64 { return e.stats.errors.Load() }

// RowsComparedTotal is VDiffRowsComparedTotal: rows compared by every diff since start.
func (e *Engine) RowsComparedTotal() int64 { return e.stats.rows.Load() }

// RestartedTableDiffs is VDiffRestartedTableDiffsCount: table diffs restarted because they
// ran longer than --max-diff-duration, by table.
func (e *Engine) RestartedTableDiffs() map[string]int64 {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	out := make(map[string]int64, len(e.stats.restarts))
	for k, v := range e.stats.restarts {
		out[k] = v
	}
	return out
}

// perController gathers a per-diff map of the current controllers, keyed
// "<workflow>.<uuid>.<key>" as vttablet's multi-label gauges.
func (e *Engine) perController(f func(ct *controller) map[string]int64) map[string]int64 {
	e.mu.Lock()
	cts := make([]*controller, 0, len(e.controllers))
	for _, ct := range e.controllers {
		cts = append(cts, ct)
	}
	e.mu.Unlock()
	out := map[string]int64{}
	for _, ct := range cts {
		for k, v := range f(ct) {
			out[ct.workflow+"."+ct.uuid+"."+k] = v
		}
	}
	return out
}

// RowsCompared is VDiffRowsCompared: rows compared per table by the current diffs.
func (e *Engine) RowsCompared() map[string]int64 {
	return e.perController(func(ct *controller) map[string]int64 { return ct.counts(&ct.rowCounts) })
}

// Errors is VDiffErrors: errors seen by the current diffs, by message.
func (e *Engine) Errors() map[string]int64 {
	return e.perController(func(ct *controller) map[string]int64 { return ct.counts(&ct.errCounts) })
}

// PhaseTimings is VDiffPhaseTimings: nanoseconds spent per table and phase by the current
// diffs ("<table>.<phase>").
func (e *Engine) PhaseTimings() map[string]int64 {
	return e.perController(func(ct *controller) map[string]int64 { return ct.counts(&ct.phaseNanos) })
}
