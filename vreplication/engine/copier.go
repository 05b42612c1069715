package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// Why tables may be copied together only from the same snapshot position.
//
// The stream has one position, pos. Its invariant during the copy: every copied row (a
// table's rows up to its lastpk) is the source's row as of pos. A table copied from a
// snapshot S satisfies it only while S = pos; events after pos are applied to copied rows by
// catch-up, and rows beyond lastpk are left to the copy. So before a table's rows are
// inserted, pos is brought exactly to the table's snapshot (fast-forward), and two tables
// copied at the same time must have the same snapshot: otherwise one of them would hold rows
// of another moment than pos. The copier therefore opens the next tables' VStreamRows
// together, keeps the ones whose snapshots equal the newest, fast-forwards pos to it before
// any row is inserted, and tries the others once more from that position; the rest wait
// for the next cycle. On a quiet source every table joins; under writes the copy degrades
// to vttablet's table-at-a-time, never to an inexact copy.

// maxBatchBytes is the size of one copy insert (and of one net-change statement).
const maxBatchBytes = 1 << 20

// tableCopy is one table's VStreamRows in progress.
type tableCopy struct {
	name   string
	tp     *tablePlan
	cancel context.CancelFunc
	resp   chan *binlogdatapb.VStreamRowsResponse // closed when the stream ended; then err is set
	err    error
	first  *binlogdatapb.VStreamRowsResponse // the response carrying fields and the snapshot
	pos    replication.Position
}

// startTable opens VStreamRows for one table from its lastpk.
func (r *replicator) startTable(ctx context.Context, name string, tp *tablePlan) *tableCopy {
	ctx, cancel := context.WithCancel(ctx)
	tc := &tableCopy{name: name, tp: tp, cancel: cancel, resp: make(chan *binlogdatapb.VStreamRowsResponse, 2)}
	var lpk *querypb.QueryResult
	if tp.lastpk != nil {
		lpk = &querypb.QueryResult{Fields: tp.lastpk.fields, Rows: []*querypb.Row{tp.lastpk.row}}
	}
	go func() {
		err := r.src.VStreamRows(ctx, tp.query, lpk, func(resp *binlogdatapb.VStreamRowsResponse) error {
			select {
			case tc.resp <- resp:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		tc.err = err
		close(tc.resp)
	}()
	return tc
}

// awaitFirst reads up to the response with the fields and the snapshot position.
func (tc *tableCopy) awaitFirst(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-tc.resp:
			if !ok {
				if tc.err == nil {
					return rpcerr.New(vtrpcpb.Code_INTERNAL, "VStreamRows for table %s ended without sending its fields", tc.name)
				}
				return rpcerr.Wrap(rpcerr.Code(tc.err), tc.err, "VStreamRows for table %s", tc.name)
			}
			if resp.Heartbeat || resp.Throttled || len(resp.Fields) == 0 {
				continue
			}
			pos, err := replication.ParsePosition(resp.Gtid)
			if err != nil || pos.IsZero() {
				return rpcerr.New(vtrpcpb.Code_INTERNAL, "VStreamRows for table %s sent snapshot position %q: %v", tc.name, resp.Gtid, err)
			}
			tc.first, tc.pos = resp, pos
			return nil
		}
	}
}

// abort cancels the stream and waits for it to end.
func (tc *tableCopy) abort() {
	tc.cancel()
	for range tc.resp {
	}
}

// copyCycle is one cycle of the copy phase: catch up on the binlog, choose the tables to copy
// now, bring pos to their snapshot, copy them.
func (r *replicator) copyCycle(ctx context.Context, copying map[string]*lastPK) error {
	if r.settings.Pos != "" {
		r.setPhase("catchup")
		if err := r.catchup(ctx, copying); err != nil {
			return err
		}
		// pos moved: read it again.
		s, err := r.e.readSettings(ctx, r.conn, r.id)
		if err != nil {
			return err
		}
		r.settings = s
		if s.State != stateCopying {
			return nil
		}
	}
	plan, err := buildReplicatorPlan(r.parser, r.settings.Source, r.schema, nil)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(copying))
	for n := range copying {
		if tp := plan.byTarget[n]; tp != nil {
			tp.lastpk = copying[n]
			names = append(names, n)
		} else if err := r.finishTable(ctx, r.conn, n); err != nil { // no longer matched by a rule
			return err
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil
	}
	r.setPhase("copy")
	group, err := r.openGroup(ctx, names, plan, copying)
	if errors.Is(err, errStopped) {
		return nil // the loop reads the row and ends
	}
	if err != nil {
		return err
	}
	return r.copyGroup(ctx, group)
}

// openGroup opens the tables to copy now (see the comment at the top of this file).
func (r *replicator) openGroup(ctx context.Context, names []string, plan *replicatorPlan, copying map[string]*lastPK) ([]*tableCopy, error) {
	n := min(len(names), r.e.cfg.CopyTables)
	open := func(list []string) ([]*tableCopy, error) {
		tcs := make([]*tableCopy, len(list))
		for i, name := range list {
			tcs[i] = r.startTable(ctx, name, plan.byTarget[name])
		}
		for _, tc := range tcs {
			if err := tc.awaitFirst(ctx); err != nil {
				for _, t := range tcs {
					t.abort()
				}
				return nil, err
			}
		}
		return tcs, nil
	}
	tcs, err := open(names[:n])
	if err != nil {
		return nil, err
	}
	ref := tcs[0].pos
	for _, tc := range tcs[1:] {
		if tc.pos.AtLeast(ref) {
			ref = tc.pos
		}
	}
	var group []*tableCopy
	var retry []string
	for _, tc := range tcs {
		if tc.pos.Equal(ref) {
			group = append(group, tc)
			continue
		}
		tc.abort()
		retry = append(retry, tc.name)
	}
	err = r.fastForward(ctx, ref, copying)
	if err == nil {
		err = r.stillCopying(ctx)
	}
	if err != nil {
		for _, tc := range group {
			tc.abort()
		}
		return nil, err
	}
	if len(retry) > 0 {
		again, err := open(retry)
		if err != nil {
			for _, tc := range group {
				tc.abort()
			}
			return nil, err
		}
		for _, tc := range again {
			if tc.pos.Equal(ref) {
				group = append(group, tc)
			} else {
				tc.abort() // next cycle
			}
		}
	}
	r.log.Info("copying tables", zap.Int("tables", len(group)), zap.Int("left", len(names)-len(group)), zap.String("snapshot", ref.String()))
	return group, nil
}

// errStopped ends a copy cycle whose stream the fast-forward stopped (a DDL with on_ddl STOP,
// a journal).
var errStopped = errors.New("the stream was stopped")

// stillCopying re-reads the row after a fast-forward: errStopped when the stream no longer
// copies.
func (r *replicator) stillCopying(ctx context.Context) error {
	s, err := r.e.readSettings(ctx, r.conn, r.id)
	if err != nil {
		return err
	}
	r.settings = s
	if s.State != stateCopying {
		return errStopped
	}
	return nil
}

// fastForward brings pos exactly to the snapshot position ref before any row of the group is
// inserted: a stream without a position takes ref; otherwise the binlog is replayed up to ref
// on what is already copied.
func (r *replicator) fastForward(ctx context.Context, ref replication.Position, copying map[string]*lastPK) error {
	if r.settings.Pos == "" {
		return r.savePos(ctx, ref.String(), 0)
	}
	cur, err := replication.ParsePosition(r.settings.Pos)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "stream %d: position %q", r.id, r.settings.Pos)
	}
	if cur.Equal(ref) {
		return nil
	}
	if !ref.AtLeast(cur) {
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the source's snapshot %s is behind the stream's position %s (a lagging source tablet): will retry", ref, cur)
	}
	r.setPhase("fastforward")
	defer r.setPhase("copy")
	return r.newPlayer(modeFastForward, copying, ref).play(ctx, cur)
}

// savePos writes pos (the copy's first snapshot, or a fast-forward target reached).
func (r *replicator) savePos(ctx context.Context, pos string, ts int64) error {
	q := fmt.Sprintf("update %s.vreplication set pos = %s, time_updated = %d, rows_copied = %d, message = '' where id = %d",
		r.sc(), QuoteString(pos), r.e.now().Unix(), r.rowsCopied(), r.id)
	if _, err := r.conn.exec(ctx, q); err != nil {
		return err
	}
	r.settings.Pos = pos
	r.st.update(func(s *StreamStatus) { s.Position = pos })
	return nil
}

func (r *replicator) rowsCopied() int64 {
	var n int64
	r.st.update(func(s *StreamStatus) { n = s.RowsCopied })
	return n
}

func (r *replicator) setPhase(p string) { r.st.update(func(s *StreamStatus) { s.Phase = p }) }

// copyGroup copies the tables of a group at once and waits for all of them. The source
// streams stop after CopyPhaseDuration; what was committed until then stays (lastpk).
func (r *replicator) copyGroup(ctx context.Context, group []*tableCopy) error {
	gctx, gcancel := context.WithCancel(ctx)
	defer gcancel()
	timer := time.AfterFunc(r.e.cfg.CopyPhaseDuration, func() {
		for _, tc := range group {
			tc.cancel()
		}
	})
	defer timer.Stop()
	names := make([]string, len(group))
	for i, tc := range group {
		names[i] = tc.name
	}
	r.st.update(func(s *StreamStatus) { s.CopyingTables = names })
	defer r.st.update(func(s *StreamStatus) { s.CopyingTables = nil })
	errs := make(chan error, len(group))
	for _, tc := range group {
		go func() { errs <- r.copyTable(gctx, tc) }()
	}
	tick := time.NewTicker(r.e.cfg.RowsCopiedInterval)
	defer tick.Stop()
	var first error
	for pending := len(group); pending > 0; {
		select {
		case err := <-errs:
			pending--
			if err != nil && first == nil {
				first = err
				gcancel()
				for _, tc := range group {
					tc.cancel()
				}
			}
		case <-tick.C:
			r.saveRowsCopied(gctx)
		}
	}
	r.saveRowsCopied(ctx)
	return first
}

func (r *replicator) saveRowsCopied(ctx context.Context) {
	_, _ = r.conn.exec(ctx, fmt.Sprintf("update %s.vreplication set rows_copied = %d, time_updated = %d where id = %d",
		r.sc(), r.rowsCopied(), r.e.now().Unix(), r.id))
}

// copyBatch is one insert of a table's copy, committed in order with the copy_state update.
type copyBatch struct {
	rows   []*querypb.Row
	lastpk *querypb.Row
	prev   <-chan struct{} // closed when the previous batch is over
	// gate is closed when the table's first batch of this run is over. MariaDB takes a table
	// lock for an insert into an empty table (its bulk-insert path), held to the commit: a
	// later batch inserting first would hold it while waiting for the earlier batches to
	// commit, and they would wait for its lock.
	gate <-chan struct{}
	done chan struct{}
}

// tableRun is the shared state of one table's copy workers.
type tableRun struct {
	r        *replicator
	tc       *tableCopy
	fp       *fieldPlan
	pkfields []*querypb.Field
	pkIdx    []int // field index of each pkfield
	mu       sync.Mutex
	err      error // the first failure; later batches roll back
}

func (t *tableRun) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *tableRun) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// copyTable inserts a table's rows with CopyWorkers connections; commits (rows and lastpk
// together) happen in the order of the source's rows, so copy_state never runs ahead of the
// rows and a restart resumes after the last committed batch.
func (r *replicator) copyTable(ctx context.Context, tc *tableCopy) error {
	defer tc.abort()
	fp, err := tc.tp.fieldPlan(tc.first.Fields, true)
	if err != nil {
		return err
	}
	t := &tableRun{r: r, tc: tc, fp: fp, pkfields: tc.first.Pkfields}
	for _, pf := range t.pkfields {
		idx := -1
		for i, f := range tc.first.Fields {
			if f.Name == pf.Name {
				idx = i
			}
		}
		if idx < 0 {
			t.pkIdx = nil // batches then end only where responses end (their lastpk)
			break
		}
		t.pkIdx = append(t.pkIdx, idx)
	}
	work := make(chan *copyBatch)
	var wg sync.WaitGroup
	for w := 0; w < r.e.cfg.CopyWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.worker(ctx, work)
		}()
	}
	prev := closedChan()
	var first chan struct{} // done of the first batch: the others insert only after it
	send := func(b *copyBatch) bool {
		b.prev, b.done = prev, make(chan struct{})
		prev = b.done
		if first == nil {
			first, b.gate = b.done, closedChan()
		} else {
			b.gate = first
		}
		select {
		case work <- b:
			return t.failed() == nil
		case <-ctx.Done():
			return false
		}
	}
	acc := &batcher{t: t}
	ok := acc.add(tc.first, send)
	for ok {
		resp, more := <-tc.resp
		if !more {
			ok = acc.flush(send) // the stream ended: tc.err says how
			break
		}
		if !resp.Heartbeat && !resp.Throttled {
			ok = acc.add(resp, send)
		}
	}
	close(work)
	wg.Wait()
	if err := t.failed(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for range tc.resp { // ended already unless a batch failed (returned above)
	}
	if tc.err != nil {
		if isCancel(tc.err) {
			return nil // the copy phase ended; the table goes on in the next cycle
		}
		return rpcerr.Wrap(rpcerr.Code(tc.err), tc.err, "VStreamRows for table %s", tc.name)
	}
	c := newConn(r.e.cfg.Filtered, streamSession...)
	defer c.close()
	if err := r.finishTable(ctx, c, tc.name); err != nil {
		return err
	}
	r.log.Info("table copied", zap.String("table", tc.name))
	return nil
}

func isCancel(err error) bool {
	c := rpcerr.Code(err)
	return c == vtrpcpb.Code_CANCELED || c == vtrpcpb.Code_DEADLINE_EXCEEDED
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// batcher gathers the rows of consecutive responses into batches of about maxBatchBytes:
// fewer, larger inserts cost the target less than one per response.
type batcher struct {
	t    *tableRun
	cur  *copyBatch
	size int
}

// add takes a response's rows; it sends every batch that is full.
func (a *batcher) add(resp *binlogdatapb.VStreamRowsResponse, send func(*copyBatch) bool) bool {
	for i, row := range resp.Rows {
		if a.cur == nil {
			a.cur = &copyBatch{}
		}
		a.cur.rows = append(a.cur.rows, row)
		a.size += len(row.Values) + 8*len(row.Lengths)
		last := i == len(resp.Rows)-1
		switch {
		case last && resp.Lastpk != nil:
			a.cur.lastpk = resp.Lastpk
		case a.t.pkIdx != nil:
			a.cur.lastpk = nil // computed when the batch is cut here
		}
		if a.size < maxBatchBytes || (!last && a.t.pkIdx == nil) {
			continue
		}
		if a.cur.lastpk == nil {
			a.cur.lastpk = a.t.keyOf(row)
		}
		if !a.flush(send) {
			return false
		}
	}
	return true
}

// flush sends the batch being gathered, if any.
func (a *batcher) flush(send func(*copyBatch) bool) bool {
	b := a.cur
	a.cur, a.size = nil, 0
	if b == nil || len(b.rows) == 0 {
		return true
	}
	if b.lastpk == nil && a.t.pkIdx != nil {
		b.lastpk = a.t.keyOf(b.rows[len(b.rows)-1])
	}
	if b.lastpk == nil {
		a.t.fail(rpcerr.New(vtrpcpb.Code_INTERNAL, "table %s: the source sent rows without their last key, and its key fields are not among the fields", a.t.tc.name))
		return false
	}
	return send(b)
}

// keyOf extracts a row's key values in pkfields order.
func (t *tableRun) keyOf(row *querypb.Row) *querypb.Row {
	vals, null := rowValues(row, len(t.tc.first.Fields))
	k := &querypb.Row{}
	for _, i := range t.pkIdx {
		if null[i] {
			k.Lengths = append(k.Lengths, -1)
			continue
		}
		k.Lengths = append(k.Lengths, int64(len(vals[i])))
		k.Values = append(k.Values, vals[i]...)
	}
	return k
}

// worker inserts batches on its own connection.
func (t *tableRun) worker(ctx context.Context, work <-chan *copyBatch) {
	r := t.r
	// The copied rows satisfy the source's constraints: the target need not check unique keys
	// again (fewer reads per insert); read committed takes no gap locks between the workers.
	c := newStreamConn(r.e.cfg.Filtered, append(append([]string(nil), streamSession...),
		"set session transaction isolation level read committed", "set @@session.unique_checks = 0")...)
	defer c.close()
	for b := range work {
		err := t.failed()
		if err == nil {
			err = t.apply(ctx, c, b)
		}
		if err != nil {
			c.rollback()
			t.fail(err)
		}
		close(b.done)
	}
}

func (t *tableRun) apply(ctx context.Context, c *dbConn, b *copyBatch) error {
	r := t.r
	buf := make([]byte, 0, 256+len(b.rows)*64)
	buf = append(buf, t.fp.head...)
	buf = append(buf, "values "...)
	for i, row := range b.rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = t.fp.appendRow(buf, row)
	}
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := t.failed(); err != nil {
		return err
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	if _, err := c.exec(ctx, string(buf)); err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "copying table %s", t.tc.name)
	}
	select {
	case <-b.prev:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := t.failed(); err != nil {
		return err
	}
	lpk, err := (&lastPK{fields: t.pkfields, row: b.lastpk}).marshal()
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "table %s: lastpk", t.tc.name)
	}
	if err := c.queue(ctx, fmt.Sprintf("update %s.copy_state set lastpk = %s where vrepl_id = %d and table_name = %s",
		r.sc(), string(appendQuoted(nil, lpk)), r.id, QuoteString(t.tc.name))); err != nil {
		return err
	}
	if err := c.commit(ctx); err != nil {
		return err
	}
	n := int64(len(b.rows))
	r.st.addCopied(n, r.e.now())
	r.e.metrics.rowsCopied.WithLabelValues(r.workflow, itoa(r.id)).Add(float64(n))
	return nil
}
