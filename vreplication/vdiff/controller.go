package vdiff

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// controller runs one vdiff (a _vt.vdiff row) until it completes, fails or is stopped.
type controller struct {
	e              *Engine
	id             int64
	uuid, workflow string
	opts           *tabletmanagerdatapb.VDiffOptions
	cancel         context.CancelFunc
	done           chan struct{}

	mu         sync.Mutex // guards the fields below (read by the status page and the variables)
	table      string
	phase      string
	startedAt  time.Time
	rowCounts  map[string]int64 // rows compared by table, this run
	errCounts  map[string]int64 // errors by message
	phaseNanos map[string]int64 // "<table>.<phase>" → time spent
	mismatches int64
}

func newController(e *Engine, id int64, uuid, workflow string, opts *tabletmanagerdatapb.VDiffOptions) *controller {
	return &controller{e: e, id: id, uuid: uuid, workflow: workflow, opts: withDefaults(opts), done: make(chan struct{}),
		rowCounts: map[string]int64{}, errCounts: map[string]int64{}, phaseNanos: map[string]int64{}}
}

// stop cancels the diff and waits until it has ended (its snapshots closed, the workflow
// running again).
func (ct *controller) stop() {
	if ct.cancel != nil {
		ct.cancel()
	}
	<-ct.done
}

func (ct *controller) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	ct.cancel = cancel
	ct.startedAt = ct.e.now()
	go func() {
		defer close(ct.done)
		defer cancel()
		log := ct.e.log.With(zap.String("uuid", ct.uuid), zap.String("workflow", ct.workflow))
		err := ct.runDiff(ctx)
		switch {
		case err == nil:
			log.Info("vdiff finished")
		case isCanceled(ctx, err):
			// Stopped by request (the stop action marks it stopped) or the engine is closing
			// (it stays started and resumes when the engine opens again).
			log.Info("vdiff interrupted", zap.Error(err))
		default:
			log.Warn("vdiff failed", zap.Error(err))
			ct.e.stats.errors.Add(1)
			ct.countError(err)
			if permanent(err) {
				ct.e.markPermanent(ct.id)
			}
			ct.saveError(ctx, err)
		}
	}()
}

// permanent reports errors auto-retry cannot heal: a bad plan, a table it cannot compare.
func permanent(err error) bool {
	switch rpcerr.Code(err) {
	case vtrpcpb.Code_INVALID_ARGUMENT, vtrpcpb.Code_UNIMPLEMENTED:
		return true
	case vtrpcpb.Code_FAILED_PRECONDITION:
		msg := err.Error()
		return strings.Contains(msg, "no primary key") || strings.Contains(msg, "is not a column") || strings.Contains(msg, "does not select")
	}
	return false
}

// saveError records the failure in the vdiff row and the log, retrying while MySQL is away
// (until the diff is stopped or the engine closes).
func (ct *controller) saveError(ctx context.Context, failure error) {
	delay := 100 * time.Millisecond
	for {
		c := newConn(ct.e.cfg.Conn)
		err := ct.updateState(ctx, c, stateError, failure.Error())
		if err == nil {
			insertLog(ctx, c, ct.e.sc(), ct.id, "Error: "+failure.Error())
		}
		c.close()
		if err == nil {
			return
		}
		ct.e.log.Warn("cannot save the vdiff's error; will retry", zap.String("uuid", ct.uuid), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*3/2, time.Minute)
	}
}

// updateState sets the vdiff's state (started_at with started, completed_at with completed)
// and logs the change.
func (ct *controller) updateState(ctx context.Context, c *conn, state, lastError string) error {
	extra := ""
	switch state {
	case stateStarted:
		extra = ", started_at = utc_timestamp()"
	case stateCompleted:
		extra = ", completed_at = utc_timestamp()"
	}
	if _, err := c.exec(ctx, sqlf(ct.e.sc(), sqlUpdateVDiffState, quoteString(state), quoteString(lastError), extra, ct.id)); err != nil {
		return err
	}
	insertLog(ctx, c, ct.e.sc(), ct.id, "State changed to: "+state)
	return nil
}

// runDiff is the whole diff: the plan, the tables one by one, the final state.
func (ct *controller) runDiff(ctx context.Context) error {
	e := ct.e
	c := newConn(e.cfg.Conn)
	defer c.close()
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffByID, ct.id))
	if err != nil {
		return err
	}
	rows := namedRows(qr)
	if len(rows) != 1 {
		return rpcerr.New(vtrpcpb.Code_NOT_FOUND, "no vdiff found for id %d on tablet %s", ct.id, e.alias())
	}
	if st := strings.ToLower(rows[0]["state"]); st != statePending && st != stateStarted {
		return nil // not runnable (stopped, completed, error)
	}
	wf, err := e.readWorkflow(ctx, c, ct.workflow)
	if err != nil {
		return err
	}
	if err := ct.updateState(ctx, c, stateStarted, ""); err != nil {
		return err
	}
	tables, err := e.targetTables(ctx, c)
	if err != nil {
		return err
	}
	only := splitList(ct.opts.CoreOptions.GetTables())
	for _, t := range only {
		if !containsString(tables, t) {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table %s is not part of workflow %s on tablet %s", t, ct.workflow, e.alias())
		}
	}
	specs, err := diffTables(tables, wf.filter, only)
	if err != nil {
		return err
	}
	if len(specs) == 0 {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "no tables found to diff, %s, on tablet %s", ct.opts.CoreOptions.GetTables(), e.alias())
	}
	tds := make([]*tableDiff, 0, len(specs))
	for _, spec := range specs {
		td, err := ct.newTableDiff(ctx, c, spec)
		if err != nil {
			return err
		}
		tds = append(tds, td)
	}
	if err := ct.initTables(ctx, c, specs); err != nil {
		return err
	}
	for _, td := range tds {
		if err := ct.diffTable(ctx, c, td); err != nil {
			if !isCanceled(ctx, err) {
				_, _ = c.exec(ctx, sqlf(e.sc(), sqlTableState, quoteString(stateError), ct.id, quoteString(td.spec.name)))
				insertLog(ctx, c, e.sc(), ct.id, fmt.Sprintf("Table %s Error: %s", td.spec.name, err))
			}
			return err
		}
	}
	qr, err = c.exec(ctx, sqlf(e.sc(), sqlIncompleteTables, ct.id))
	if err != nil {
		return err
	}
	if len(qr.Rows) == 0 {
		return ct.updateState(ctx, c, stateCompleted, "")
	}
	return nil
}

// newTableDiff reads what a table diff needs before its first run: the filter's select, the
// target table, the saved progress.
func (ct *controller) newTableDiff(ctx context.Context, c *conn, spec *tableSpec) (*tableDiff, error) {
	si, err := parseSourceQuery(spec.sourceQuery)
	if err != nil {
		return nil, err
	}
	tt, err := ct.e.readTargetTable(ctx, c, spec.name)
	if err != nil {
		return nil, err
	}
	if len(tt.pk) == 0 && len(tt.pke) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"table %s has no primary key and no unique key on NOT NULL columns: VDiff cannot match its rows; add a primary key", spec.name)
	}
	return &tableDiff{ct: ct, spec: spec, si: si, tt: tt}, nil
}

// initTables creates (or refreshes the row estimates of) the diff's vdiff_table rows, after
// ANALYZE TABLE with --update-table-stats.
func (ct *controller) initTables(ctx context.Context, c *conn, specs []*tableSpec) error {
	e := ct.e
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = quoteString(s.name)
		if ct.opts.CoreOptions.GetUpdateTableStats() {
			if _, err := c.exec(ctx, "analyze table "+quoteID(e.cfg.DBName)+"."+quoteID(s.name)); err != nil {
				return err
			}
		}
	}
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetAllTableRows, quoteString(e.cfg.DBName), strings.Join(names, ",")))
	if err != nil {
		return err
	}
	for _, r := range namedRows(qr) {
		name, n := r["table_name"], r.int64("table_rows")
		cur, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffTable, ct.id, quoteString(name)))
		if err != nil {
			return err
		}
		q := sqlf(e.sc(), sqlNewVDiffTable, ct.id, quoteString(name), n)
		if len(cur.Rows) > 0 {
			q = sqlf(e.sc(), sqlUpdateTableRows, n, ct.id, quoteString(name))
		}
		if _, err := c.exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// diffTable compares one table to its end, from where a previous run stopped, restarting
// with new snapshots when a run exceeds --max-diff-duration.
func (ct *controller) diffTable(ctx context.Context, c *conn, td *tableDiff) error {
	e := ct.e
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffTable, ct.id, quoteString(td.spec.name)))
	if err != nil {
		return err
	}
	rows := namedRows(qr)
	if len(rows) == 0 {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "no vdiff_table row for table %s of vdiff %s", td.spec.name, ct.uuid)
	}
	if rows[0]["state"] == stateCompleted {
		return nil
	}
	lp, err := parseLastPK(rows[0]["lastpk"])
	if err != nil {
		return err
	}
	td.setLastPK(lp)
	dr := &DiffReport{}
	if rpt := rows[0]["report"]; rpt != "" && json.Valid([]byte(rpt)) {
		if err := json.Unmarshal([]byte(rpt), dr); err != nil {
			return rpcerr.New(vtrpcpb.Code_INTERNAL, "the saved report of table %s does not parse: %v", td.spec.name, err)
		}
	}
	dr.TableName = td.spec.name
	if _, err := c.exec(ctx, sqlf(e.sc(), sqlTableState, quoteString(stateStarted), ct.id, quoteString(td.spec.name))); err != nil {
		return err
	}
	insertLog(ctx, c, e.sc(), ct.id, fmt.Sprintf("%s: table %s", stateStarted, quoteString(td.spec.name)))
	maxRun := time.Duration(ct.opts.CoreOptions.GetMaxDiffSeconds()) * time.Second
	for run := 0; ; run++ {
		if run > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(e.cfg.RestartDelay):
			}
		}
		if err := td.initialize(ctx, c); err != nil {
			return err
		}
		var deadline time.Time
		if maxRun > 0 {
			deadline = e.now().Add(maxRun)
		}
		ct.setPhase(td.spec.name, phaseDiffing)
		start := e.now()
		err := td.compare(ctx, c, dr, deadline)
		td.stopStreams()
		ct.timePhase(td.spec.name, phaseDiffing, start)
		if err == errMaxDuration {
			insertLog(ctx, c, e.sc(), ct.id, fmt.Sprintf("Table %s: restarting after %v (--max-diff-duration)", td.spec.name, maxRun))
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	var pke []string
	for _, i := range td.plan.pke {
		pke = append(pke, td.plan.cols[i])
	}
	if len(td.plan.pke) > 0 && len(td.plan.key) == len(td.plan.cols) {
		reconcile(dr, pke, ct.opts.ReportOptions.GetMaxSampleRows())
	} else {
		reconcile(dr, nil, ct.opts.ReportOptions.GetMaxSampleRows())
	}
	ct.addMismatches(dr.MismatchedRows + dr.ExtraRowsSource + dr.ExtraRowsTarget)
	if dr.MismatchedRows > 0 || dr.ExtraRowsSource > 0 || dr.ExtraRowsTarget > 0 {
		if _, err := c.exec(ctx, sqlf(e.sc(), sqlTableMismatch, ct.id, quoteString(td.spec.name))); err != nil {
			return err
		}
	}
	rpt, err := json.Marshal(dr)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "encoding the report of table %s", td.spec.name)
	}
	if _, err := c.exec(ctx, sqlf(e.sc(), sqlTableStateReport, quoteString(stateCompleted), dr.ProcessedRows, quoteString(string(rpt)), ct.id, quoteString(td.spec.name))); err != nil {
		return err
	}
	insertLog(ctx, c, e.sc(), ct.id, fmt.Sprintf("%s: table %s", stateCompleted, quoteString(td.spec.name)))
	return nil
}

// status is the diff's progress for the status page; false once it ended.
func (ct *controller) status() (Running, bool) {
	select {
	case <-ct.done:
		return Running{}, false
	default:
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	r := Running{UUID: ct.uuid, Workflow: ct.workflow, Table: ct.table, Phase: ct.phase, Started: ct.startedAt, Mismatches: ct.mismatches}
	for _, n := range ct.rowCounts {
		r.RowsCompared += n
	}
	return r, true
}

func (ct *controller) setPhase(table, phase string) {
	ct.mu.Lock()
	ct.table, ct.phase = table, phase
	ct.mu.Unlock()
}

func (ct *controller) timePhase(table, phase string, start time.Time) {
	d := ct.e.now().Sub(start)
	ct.mu.Lock()
	ct.phaseNanos[table+"."+phase] += int64(d)
	ct.mu.Unlock()
}

func (ct *controller) addRows(table string, n int64) {
	if n <= 0 {
		return
	}
	ct.mu.Lock()
	ct.rowCounts[table] += n
	ct.mu.Unlock()
	ct.e.stats.rows.Add(n)
}

func (ct *controller) addMismatches(n int64) {
	ct.mu.Lock()
	ct.mismatches += n
	ct.mu.Unlock()
}

// maxErrorKinds bounds the distinct error messages a diff counts (VDiffErrors).
const maxErrorKinds = 20

func (ct *controller) countError(err error) {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	msg = strings.ReplaceAll(msg, ".", "_") // the variable's keys are dot-separated labels
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if _, ok := ct.errCounts[msg]; !ok && len(ct.errCounts) >= maxErrorKinds {
		msg = "other"
	}
	ct.errCounts[msg]++
}

func (ct *controller) counts(m *map[string]int64) map[string]int64 {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	out := make(map[string]int64, len(*m))
	for k, v := range *m {
		out[k] = v
	}
	return out
}

// countRestart counts a table diff restarted for --max-diff-duration.
func (e *Engine) countRestart(table string) {
	e.stats.mu.Lock()
	e.stats.restarts[table]++
	e.stats.mu.Unlock()
}
