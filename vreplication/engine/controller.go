package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/pingcap/tidb/pkg/parser"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// controller runs one stream until its row says stop, retrying failures with backoff. It
// never takes the engine's mutex (Exec stops controllers while holding it).
type controller struct {
	e      *Engine
	id     int32
	st     *streamStats
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// newController starts the controller of s; a Stopped or Error stream gets one that does
// nothing (a later update of its row replaces it).
func newController(e *Engine, s *settings, st *streamStats) *controller {
	ct := &controller{e: e, id: s.ID, st: st, done: make(chan struct{}),
		log: e.log.With(zap.Int32("stream", s.ID), zap.String("workflow", s.Workflow))}
	if s.State == stateStopped || s.State == stateError {
		ct.cancel = func() {}
		close(ct.done)
		return ct
	}
	ctx, cancel := context.WithCancel(e.ctx)
	ct.cancel = cancel
	go ct.run(ctx, s.Workflow)
	return ct
}

// stop cancels the controller and waits until it ended.
func (ct *controller) stop() {
	ct.cancel()
	<-ct.done
}

func (ct *controller) run(ctx context.Context, workflow string) {
	defer close(ct.done)
	e := ct.e
	delay := e.cfg.RetryDelay
	var failingSince time.Time
	for {
		started := e.now()
		err := ct.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			return // the stream stopped (stop position, DDL, journal) or was stopped
		}
		now := e.now()
		if now.Sub(started) >= e.cfg.MaxRetryDelay {
			delay, failingSince = e.cfg.RetryDelay, time.Time{} // it ran well for a while
		}
		if failingSince.IsZero() {
			failingSince = now
		}
		phase := ct.phase()
		e.metrics.errors.WithLabelValues(workflow, itoa(ct.id), orNone(phase)).Inc()
		msg := ct.explain(ctx, err)
		ct.st.update(func(s *StreamStatus) { s.LastError, s.LastErrorAt, s.Phase, s.SourceTablet = msg, now, "", "" })
		terminal := isTerminal(err) || (e.cfg.MaxTimeToRetry > 0 && now.Sub(failingSince) > e.cfg.MaxTimeToRetry)
		if terminal {
			ct.log.Error("stream failed for good", zap.String("phase", phase), zap.Error(err))
			ct.fail(ctx, terminalMarker+": "+msg)
			return
		}
		ct.log.Warn("stream failed; will retry", zap.String("phase", phase), zap.Duration("retry_in", delay), zap.Error(err))
		ct.note(ctx, msg)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, e.cfg.MaxRetryDelay)
	}
}

func orNone(s string) string {
	if s == "" {
		return "start"
	}
	return s
}

func (ct *controller) phase() string {
	var p string
	ct.st.update(func(s *StreamStatus) { p = s.Phase })
	return p
}

// explain is the failure as the row's message shows it.
func (ct *controller) explain(ctx context.Context, err error) string {
	var pos string
	ct.st.update(func(s *StreamStatus) { pos = s.Position })
	return explain(err, pos)
}

// note writes a retryable failure into the row's message (vttablet does the same), on a
// connection of its own: the stream's may be what broke.
func (ct *controller) note(ctx context.Context, msg string) {
	ct.writeRow(ctx, fmt.Sprintf("update %s.vreplication set message = %s where id = %d",
		ct.e.sidecarID(), QuoteString(truncateMessage(msg)), ct.id), logError, "", msg)
}

// fail puts the stream in state Error with msg.
func (ct *controller) fail(ctx context.Context, msg string) {
	ct.st.update(func(s *StreamStatus) { s.State, s.Message = stateError, msg })
	ct.writeRow(ctx, fmt.Sprintf("update %s.vreplication set state = %s, message = %s where id = %d",
		ct.e.sidecarID(), QuoteString(stateError), QuoteString(truncateMessage(msg)), ct.id), logStateChange, stateError, msg)
}

func (ct *controller) writeRow(ctx context.Context, query, logType, state, msg string) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := newConn(ct.e.cfg.Filtered)
	defer c.close()
	if _, err := c.exec(wctx, query); err != nil {
		ct.log.Warn("cannot record the stream's failure in its row", zap.Error(err))
		return
	}
	ct.e.insertLog(wctx, c, ct.id, logType, state, msg)
}

// runOnce picks a source tablet and runs the stream from its row until it stops or fails.
func (ct *controller) runOnce(ctx context.Context) error {
	e := ct.e
	c := newStreamConn(e.cfg.Filtered, streamSession...)
	defer c.close()
	s, err := e.readSettings(ctx, c, ct.id)
	if err != nil {
		return err
	}
	ct.st.reset(s)
	if s.State == stateStopped || s.State == stateError {
		return nil
	}
	if s.sourceErr != nil {
		return s.sourceErr
	}
	if s.Source.ExternalMysql != "" || s.Source.ExternalCluster != "" {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "stream %d: external sources (external_mysql, external_cluster) are not supported by tabletd", s.ID)
	}
	if len(s.Source.Tables) > 0 || (s.Source.KeyRange != nil && s.Source.Filter == nil) {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "stream %d: the legacy table and key range sources are not supported: use filter rules", s.ID)
	}
	p, err := e.newPicker(s.Source.Keyspace, s.Source.Shard, s.Cell, s.TabletTypes)
	if err != nil {
		return err
	}
	tablet, err := p.pick(ctx)
	if err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "Error picking tablet")
	}
	alias := aliasString(tablet.Alias)
	ct.st.update(func(st *StreamStatus) { st.SourceTablet = alias })
	src, err := e.deps.Dial.Dial(ctx, tablet)
	if err != nil {
		return err
	}
	defer src.Close()
	r := &replicator{e: e, ct: ct, id: ct.id, conn: c, src: src, st: ct.st, log: ct.log.With(zap.String("source", alias)),
		state: s.State, workflow: s.Workflow, parser: parser.New()}
	if _, err := c.exec(ctx, fmt.Sprintf("update %s.vreplication set message = %s where id = %d",
		e.sidecarID(), QuoteString("Picked source tablet: "+alias), ct.id)); err != nil {
		return err
	}
	return r.run(ctx)
}
