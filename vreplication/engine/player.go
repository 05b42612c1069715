package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// playMode is why the player runs.
type playMode int

const (
	modeReplicate   playMode = iota // the replication phase: until stopped, stop_pos or a failure
	modeCatchup                     // between copy cycles: until less than CatchupLag behind
	modeFastForward                 // before a copy: exactly up to a snapshot position
)

func (m playMode) String() string {
	return [...]string{"replicate", "catchup", "fastforward"}[m]
}

// errPlayDone ends a play that reached its goal.
var errPlayDone = errors.New("play done")

// player applies a VStream to the target.
type player struct {
	r        *replicator
	mode     playMode
	copying  map[string]*lastPK // tables still being copied (catch-up and fast-forward)
	stopPos  replication.Position
	saveStop bool // reaching stopPos stops the stream (the row's stop_pos)

	plan   *replicatorPlan
	fields map[string]*fieldPlan
	net    netChanges           // end states of rows pending in the open target transaction
	pos    replication.Position // of the last GTID event seen

	pending      int                  // source transactions applied in the open target transaction
	rowsOpen     bool                 // rows of a source transaction whose COMMIT has not come yet are applied
	commitPos    replication.Position // of the last source COMMIT in the open target transaction
	commitTS     int64
	lastTS       int64
	unsaved      bool // transactions skipped (nothing for us) since the position was saved
	savedAt      time.Time
	heartbeatAt  time.Time
	lag          time.Duration
	lagKnown     bool
	tpsWindow    time.Time
	tpsCount     int64
	maxTPS       int64
	ddlStatement string
}

func (r *replicator) newPlayer(mode playMode, copying map[string]*lastPK, stop replication.Position) *player {
	p := &player{r: r, mode: mode, copying: copying, stopPos: stop, fields: map[string]*fieldPlan{}}
	if s := r.settings; s != nil && s.MaxTPS > 0 && s.MaxTPS < math.MaxInt64 {
		p.maxTPS = s.MaxTPS
	}
	return p
}

// replicate runs the replication phase from the row's position until its stop_pos.
func (r *replicator) replicate(ctx context.Context, s *settings) error {
	start, err := replication.ParsePosition(s.Pos)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "stream %d: position %q", r.id, s.Pos)
	}
	var stop replication.Position
	if s.StopPos != "" {
		if stop, err = replication.ParsePosition(s.StopPos); err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "stream %d: stop position %q", r.id, s.StopPos)
		}
		if !stop.IsZero() && stop.Flavor() != start.Flavor() {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "stream %d: stop position %q is not of the same flavor as its position %q", r.id, s.StopPos, s.Pos)
		}
	}
	r.setPhase("replicate")
	p := r.newPlayer(modeReplicate, nil, stop)
	p.saveStop = true
	return p.play(ctx, start)
}

// catchup replays the binlog on what is copied until the stream is less than CatchupLag
// behind the source.
func (r *replicator) catchup(ctx context.Context, copying map[string]*lastPK) error {
	start, err := replication.ParsePosition(r.settings.Pos)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "stream %d: position %q", r.id, r.settings.Pos)
	}
	return r.newPlayer(modeCatchup, copying, replication.Position{}).play(ctx, start)
}

// play streams from start and applies until the mode's goal, a stop or a failure.
func (p *player) play(ctx context.Context, start replication.Position) error {
	r := p.r
	p.pos = start
	if !p.stopPos.IsZero() && start.AtLeast(p.stopPos) {
		if p.saveStop {
			return r.setState(ctx, stateStopped, fmt.Sprintf("Stop position %v already reached: %v", start, p.stopPos))
		}
		return nil
	}
	plan, err := buildReplicatorPlan(r.parser, r.settings.Source, r.schema, p.copying)
	if err != nil {
		return err
	}
	p.plan = plan
	if len(plan.filter.Rules) == 0 && p.mode != modeReplicate {
		return nil // nothing copied yet: nothing to catch up on
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	relay := make(chan []*binlogdatapb.VEvent, 64)
	streamErr := make(chan error, 1)
	go func() {
		defer close(relay)
		streamErr <- r.src.VStream(ctx, start.String(), plan.filter, func(evs []*binlogdatapb.VEvent) error {
			select {
			case relay <- evs:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer func() {
		cancel()
		for range relay {
		}
	}()
	p.savedAt, p.heartbeatAt = r.e.now(), r.e.now()
	err = p.applyLoop(ctx, relay)
	r.conn.rollback()
	p.net.reset()
	if errors.Is(err, errPlayDone) {
		return nil
	}
	if err == nil { // the stream ended
		if serr := <-streamErr; serr != nil && ctx.Err() == nil {
			return rpcerr.Wrap(rpcerr.Code(serr), serr, "VStream from %s", start)
		}
		if ctx.Err() != nil {
			return nil
		}
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the source ended the VStream")
	}
	if ctx.Err() != nil && rpcerr.Code(err) == vtrpcpb.Code_CANCELED {
		return nil
	}
	return err
}

// applyLoop takes what the relay holds (waiting only when it is empty) and applies it.
func (p *player) applyLoop(ctx context.Context, relay <-chan []*binlogdatapb.VEvent) error {
	r := p.r
	idle := time.NewTicker(r.e.cfg.IdleSaveInterval)
	defer idle.Stop()
	for {
		var evs []*binlogdatapb.VEvent
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle.C:
			if err := p.idle(ctx); err != nil {
				return err
			}
			continue
		case batch, ok := <-relay:
			if !ok {
				return nil
			}
			evs = batch
		}
	drain:
		for len(evs) < 10000 {
			select {
			case batch, ok := <-relay:
				if !ok {
					break drain
				}
				evs = append(evs, batch...)
			default:
				break drain
			}
		}
		if err := p.apply(ctx, evs); err != nil {
			return err
		}
		p.reportLag()
		if p.mode == modeCatchup && p.lagKnown && p.lag < r.e.cfg.CatchupLag && !p.r.conn.inTx {
			return errPlayDone
		}
		if err := p.idle(ctx); err != nil {
			return err
		}
	}
}

// idle saves the position of skipped transactions after IdleSaveInterval.
func (p *player) idle(ctx context.Context) error {
	if p.unsaved && !p.r.conn.inTx && p.r.e.now().Sub(p.savedAt) >= p.r.e.cfg.IdleSaveInterval {
		return p.savePos(ctx, p.lastTS)
	}
	return nil
}

func (p *player) reportLag() {
	r := p.r
	lag := p.lag
	known := p.lagKnown
	r.st.update(func(s *StreamStatus) { s.Lag, s.LagKnown = lag, known })
	if known {
		r.e.metrics.lag.WithLabelValues(r.workflow, itoa(r.id)).Set(lag.Seconds())
	}
}

// apply applies a run of events. Consecutive source transactions are applied in one target
// transaction (its commit also saves the position of the last one), up to
// ApplyBatchTransactions and never across a DDL, OTHER or JOURNAL event.
func (p *player) apply(ctx context.Context, evs []*binlogdatapb.VEvent) error {
	r := p.r
	for i, ev := range evs {
		if ev.Timestamp != 0 && !(ev.Type == binlogdatapb.VEventType_HEARTBEAT && ev.Throttled) {
			p.noteTime(ev)
		}
		r.e.metrics.events.WithLabelValues(r.workflow, itoa(r.id), ev.Type.String()).Inc()
		switch ev.Type {
		case binlogdatapb.VEventType_GTID:
			pos, err := replication.ParsePosition(ev.Gtid)
			if err != nil {
				return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "the source sent position %q", ev.Gtid)
			}
			p.pos, p.unsaved = pos, false
		case binlogdatapb.VEventType_BEGIN:
		case binlogdatapb.VEventType_FIELD:
			if err := p.onField(ctx, ev.FieldEvent); err != nil {
				return err
			}
		case binlogdatapb.VEventType_ROW:
			if err := p.onRow(ctx, ev.RowEvent); err != nil {
				return err
			}
		case binlogdatapb.VEventType_COMMIT:
			if done, err := p.onCommit(ctx, ev, evs, i); err != nil || done {
				if err == nil {
					err = errPlayDone
				}
				return err
			}
		case binlogdatapb.VEventType_OTHER:
			if err := p.barrier(ctx); err != nil {
				return err
			}
			if done, err := p.saveAndCheck(ctx, ev.Timestamp); err != nil || done {
				return orDone(err)
			}
		case binlogdatapb.VEventType_DDL:
			if err := p.barrier(ctx); err != nil {
				return err
			}
			if err := p.onDDL(ctx, ev); err != nil {
				return err
			}
		case binlogdatapb.VEventType_JOURNAL:
			if err := p.barrier(ctx); err != nil {
				return err
			}
			if err := p.onJournal(ctx, ev.Journal); err != nil {
				return err
			}
		case binlogdatapb.VEventType_HEARTBEAT:
			if err := p.onHeartbeat(ctx, ev); err != nil {
				return err
			}
		case binlogdatapb.VEventType_INSERT, binlogdatapb.VEventType_UPDATE, binlogdatapb.VEventType_DELETE,
			binlogdatapb.VEventType_REPLACE:
			return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "the source sent a statement-based event: filter rules need row-based binlogs (binlog_format=ROW)")
		}
	}
	// Commit what the run's last transactions left open, unless a transaction is still
	// coming (its rows were split over several responses).
	if r.conn.inTx && !p.rowsOpen && p.pending > 0 {
		if done, err := p.commitTx(ctx); err != nil || done {
			return orDone(err)
		}
	}
	return nil
}

func orDone(err error) error {
	if err == nil {
		return errPlayDone
	}
	return err
}

func (p *player) noteTime(ev *binlogdatapb.VEvent) {
	p.lastTS = ev.Timestamp
	now := p.r.e.now()
	src := now
	if ev.CurrentTime != 0 {
		src = time.Unix(0, ev.CurrentTime)
	}
	lag := src.Sub(time.Unix(ev.Timestamp, 0))
	if lag < 0 {
		lag = 0
	}
	p.lag, p.lagKnown = lag, true
}

func (p *player) onField(ctx context.Context, fe *binlogdatapb.FieldEvent) error {
	tp := p.plan.bySource[fe.TableName]
	if tp == nil {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "the source sent fields of table %s, which the stream did not ask for", fe.TableName)
	}
	fp, err := tp.fieldPlan(fe.Fields, fe.EnumSetStringValues)
	if err != nil {
		return err
	}
	if old := p.fields[fe.TableName]; old != nil && p.r.conn.inTx {
		if err := p.net.flush(ctx, p.r.conn, old); err != nil { // rows under the old fields first
			return err
		}
	}
	p.fields[fe.TableName] = fp
	return nil
}

func (p *player) onRow(ctx context.Context, re *binlogdatapb.RowEvent) error {
	fp := p.fields[re.TableName]
	if fp == nil {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "the source sent rows of table %s before its fields", re.TableName)
	}
	c := p.r.conn
	if err := c.begin(ctx); err != nil {
		return err
	}
	p.rowsOpen = true
	for _, rc := range re.RowChanges {
		if fp.net {
			if p.net.add(fp, rc) {
				continue
			}
			if err := p.net.flush(ctx, c, fp); err != nil { // keep the table's order
				return err
			}
		}
		for _, sql := range fp.changeSQL(rc) {
			// Queued: sent with the transaction's commit (or earlier, when the queue is full).
			// A failure fails the play; the stream restarts from its saved position.
			if err := c.queue(ctx, sql); err != nil {
				return rpcerr.Wrap(rpcerr.Code(err), err, "error applying event for table %s while processing position %s", re.TableName, p.pos)
			}
		}
	}
	return nil
}

// onCommit ends a source transaction. The target transaction stays open when another
// transaction follows in this run (and the batch is not full), so that they commit together.
func (p *player) onCommit(ctx context.Context, ev *binlogdatapb.VEvent, evs []*binlogdatapb.VEvent, i int) (bool, error) {
	c := p.r.conn
	stopReached := !p.stopPos.IsZero() && p.pos.AtLeast(p.stopPos)
	if !c.inTx {
		if !stopReached {
			p.unsaved = true // nothing of ours in it: its position is saved later
			return false, nil
		}
		if err := c.begin(ctx); err != nil {
			return false, err
		}
	}
	p.pending++
	p.commitPos, p.commitTS, p.rowsOpen = p.pos, ev.Timestamp, false
	p.throttle(ctx)
	if !stopReached && p.pending < p.r.e.cfg.ApplyBatchTransactions && hasAnotherCommit(evs, i+1) {
		return false, nil
	}
	return p.commitTx(ctx)
}

// barrier commits an open target transaction before an event that is never inside a source
// transaction (DDL, OTHER, JOURNAL).
func (p *player) barrier(ctx context.Context) error {
	if !p.r.conn.inTx {
		return nil
	}
	if p.rowsOpen || p.pending == 0 {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "the source sent a DDL, OTHER or JOURNAL event inside a transaction")
	}
	done, err := p.commitTx(ctx)
	if err == nil && done {
		return errPlayDone
	}
	return err
}

// commitTx saves the position of the last source COMMIT in the open transaction and commits.
func (p *player) commitTx(ctx context.Context) (bool, error) {
	r := p.r
	if err := p.net.flush(ctx, r.conn, nil); err != nil {
		return false, rpcerr.Wrap(rpcerr.Code(err), err, "error applying the rows of the transactions up to %s", p.commitPos)
	}
	if err := p.writePosOf(ctx, p.commitPos, p.commitTS); err != nil {
		return false, err
	}
	if err := r.conn.commit(ctx); err != nil {
		return false, err
	}
	r.e.metrics.transactions.WithLabelValues(r.workflow, itoa(r.id)).Add(float64(p.pending))
	n, pos := int64(p.pending), p.commitPos.String()
	r.st.update(func(s *StreamStatus) { s.TransactionsApplied += n; s.Position = pos })
	p.pending = 0
	return p.reached(ctx, p.commitPos)
}

// saveAndCheck saves the position outside a transaction (OTHER, DDL, idle) and checks the
// stop position.
func (p *player) saveAndCheck(ctx context.Context, ts int64) (bool, error) {
	if err := p.savePos(ctx, ts); err != nil {
		return false, err
	}
	return p.reached(ctx, p.pos)
}

func (p *player) savePos(ctx context.Context, ts int64) error {
	if err := p.writePosOf(ctx, p.pos, ts); err != nil {
		return err
	}
	pos := p.pos.String()
	p.r.st.update(func(s *StreamStatus) { s.Position = pos })
	return nil
}

// writePosOf is vttablet's position update: pos, time_updated, transaction_timestamp (when
// the event had a time), rows_copied, and the message cleared.
func (p *player) writePosOf(ctx context.Context, at replication.Position, ts int64) error {
	r := p.r
	tsPart := ""
	if ts != 0 {
		tsPart = fmt.Sprintf(", transaction_timestamp = %d", ts)
	}
	q := fmt.Sprintf("update %s.vreplication set pos = %s, time_updated = %d%s, rows_copied = %d, message = '' where id = %d",
		r.sc(), QuoteString(at.String()), r.e.now().Unix(), tsPart, r.rowsCopied(), r.id)
	var err error
	if r.conn.inTx {
		err = r.conn.queue(ctx, q) // committed with the rows it follows
	} else {
		_, err = r.conn.exec(ctx, q)
	}
	if err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "error updating position")
	}
	if at.Equal(p.pos) {
		p.unsaved = false
	}
	p.savedAt = r.e.now()
	r.settings.Pos = at.String()
	return nil
}

// reached reports whether the play is over: the stop position (the row's, which stops the
// stream with vttablet's message, or a fast-forward target) is reached at pos.
func (p *player) reached(ctx context.Context, pos replication.Position) (bool, error) {
	if p.stopPos.IsZero() || !pos.AtLeast(p.stopPos) {
		return false, nil
	}
	if p.saveStop {
		p.r.log.Info("stopped at position", zap.String("pos", p.stopPos.String()))
		if err := p.r.setState(ctx, stateStopped, fmt.Sprintf("Stopped at position %v", p.stopPos)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// hasAnotherCommit reports whether a COMMIT follows before a DDL, OTHER or JOURNAL event.
func hasAnotherCommit(evs []*binlogdatapb.VEvent, from int) bool {
	for _, ev := range evs[from:] {
		switch ev.Type {
		case binlogdatapb.VEventType_COMMIT:
			return true
		case binlogdatapb.VEventType_DDL, binlogdatapb.VEventType_OTHER, binlogdatapb.VEventType_JOURNAL:
			return false
		}
	}
	return false
}

// onHeartbeat keeps time_heartbeat and time_updated fresh while idle, at most every
// HeartbeatUpdateInterval, so vtctld sees a live stream.
func (p *player) onHeartbeat(ctx context.Context, ev *binlogdatapb.VEvent) error {
	r := p.r
	now := r.e.now()
	r.st.update(func(s *StreamStatus) { s.LastHeartbeat = now })
	if r.conn.inTx || now.Sub(p.heartbeatAt) < r.e.cfg.HeartbeatUpdateInterval {
		return nil
	}
	p.heartbeatAt = now
	if _, err := r.conn.exec(ctx, fmt.Sprintf("update %s.vreplication set time_updated = %d, time_heartbeat = %d where id = %d",
		r.sc(), now.Unix(), now.Unix(), r.id)); err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "failed to record heartbeat")
	}
	return nil
}

// throttle holds the player to the row's max_tps (transactions per second).
func (p *player) throttle(ctx context.Context) {
	if p.maxTPS <= 0 {
		return
	}
	now := p.r.e.now()
	if now.Sub(p.tpsWindow) >= time.Second {
		p.tpsWindow, p.tpsCount = now, 0
	}
	p.tpsCount++
	if p.tpsCount <= p.maxTPS {
		return
	}
	wait := time.Second - now.Sub(p.tpsWindow)
	p.r.st.update(func(s *StreamStatus) { s.Message = "throttled by max_tps" })
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
	p.tpsWindow, p.tpsCount = p.r.e.now(), 1
}

// onDDL applies the stream's on_ddl to a DDL event (vttablet's vplayer): IGNORE saves the
// position; STOP saves it and stops the stream with "Stopped at DDL …"; EXEC runs the
// statement on the target first (a failure fails the stream); EXEC_IGNORE runs it and goes
// on whatever happens. After a statement ran, the target schema is read again.
func (p *player) onDDL(ctx context.Context, ev *binlogdatapb.VEvent) error {
	r := p.r
	switch r.settings.Source.OnDdl {
	case binlogdatapb.OnDDLAction_IGNORE:
	case binlogdatapb.OnDDLAction_STOP:
		if err := r.conn.begin(ctx); err != nil {
			return err
		}
		if err := p.writePosOf(ctx, p.pos, ev.Timestamp); err != nil {
			return err
		}
		if err := r.setState(ctx, stateStopped, fmt.Sprintf("Stopped at DDL %s", ev.Statement)); err != nil {
			return err
		}
		if err := r.conn.commit(ctx); err != nil {
			return err
		}
		return errPlayDone
	case binlogdatapb.OnDDLAction_EXEC, binlogdatapb.OnDDLAction_EXEC_IGNORE:
		if _, err := r.conn.exec(ctx, ev.Statement); err != nil {
			if r.settings.Source.OnDdl == binlogdatapb.OnDDLAction_EXEC {
				return rpcerr.Wrap(rpcerr.Code(err), err, "applying DDL %q", ev.Statement)
			}
			r.log.Info("ignoring the failure of a DDL (on_ddl EXEC_IGNORE)", zap.String("ddl", ev.Statement), zap.Error(err))
		}
		if err := p.reloadSchema(ctx); err != nil {
			return err
		}
	}
	done, err := p.saveAndCheck(ctx, ev.Timestamp)
	if err == nil && done {
		return errPlayDone
	}
	return err
}

// reloadSchema rebuilds the plan after the target's schema changed; the source sends fields
// again before the next rows.
func (p *player) reloadSchema(ctx context.Context) error {
	r := p.r
	schema, err := loadSchema(ctx, r.conn, r.e.cfg.DBName)
	if err != nil {
		return err
	}
	plan, err := buildReplicatorPlan(r.parser, r.settings.Source, schema, p.copying)
	if err != nil {
		return err
	}
	r.schema, p.plan, p.fields = schema, plan, map[string]*fieldPlan{}
	return nil
}
