package tabletserver

import (
	"context"
	"errors"
	"time"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
)

// stream runs r on c, sending the result in batches; if ctx ends first (the client went away
// or its deadline passed) the statement is killed. killed means the connection must not be
// reused. Like run, it lists the statement in /livequeryz while it runs.
func (e *executor) stream(ctx context.Context, c *mysqlconn.Conn, r *request, send func(*querypb.QueryResult) error) (killed bool, err error) {
	var sendErr error
	e.register(c, r, true)
	size := e.cfg.StreamBufferSize
	if r.bufferSize > 0 {
		size = r.bufferSize
	}
	start := time.Now()
	err = c.Stream(ctx, r.final, r.fields, size, func(qr *querypb.QueryResult) error {
		if sendErr = send(qr); sendErr != nil {
			return sendErr
		}
		return nil
	})
	e.stats.mysqlDone(r, "ExecStream", time.Since(start))
	terminated := e.live.remove(c.ID()) // a /livequeryz KILL was or will be sent
	killed = c.Canceled() || terminated
	switch {
	case err == nil && !terminated:
		return killed, nil
	case sendErr != nil && errors.Is(err, sendErr):
		return killed, sendErr
	case killed || ctx.Err() != nil:
		return true, interrupted(ctx, r)
	}
	return killed, mysqlError(err, r.Caller, r.SQL, bindNames(r.BindVars))
}

// streamNoTx streams on a stream-pool connection.
func (e *executor) streamNoTx(ctx context.Context, r *request, send func(*querypb.QueryResult) error) error {
	p := e.streams
	if class(r.plan.Type) != classRead {
		p = e.tx.poolFor(r.Options) // a write or session statement: same rules as Execute
	}
	pc, err := p.Get(ctx, nil)
	if err != nil {
		return poolError(err, p)
	}
	killed, err := e.streamOrCapDML(ctx, pc.Conn(), r, send, false)
	if killed || class(r.plan.Type) == classSession || pc.Conn().IsClosed() {
		pc.Discard()
	} else {
		pc.Recycle()
	}
	return err
}

// streamRequest streams on a locked stateful connection, within the transaction's lifetime.
func (t *txEngine) streamRequest(ctx context.Context, s *stateful, r *request, send func(*querypb.QueryResult) error) error {
	ctx, cancel, err := t.withinLifetime(ctx, s)
	if err != nil {
		return err
	}
	defer cancel()
	if r.plan != nil {
		s.txl.add(r.SQL) // a caller's statement, for the transaction log
	}
	killed, err := t.e.streamOrCapDML(ctx, s.conn(), r, send, s.inTx)
	if killed || s.conn().IsClosed() {
		return t.endAfterKill(ctx, s, r, err)
	}
	return err
}

// streamOrCapDML streams r, except a DML under --queryserver-config-max-dml-rows (vtgate
// streams DML in OLAP mode): that runs through the cap and its one result is sent.
func (e *executor) streamOrCapDML(ctx context.Context, c *mysqlconn.Conn, r *request, send func(*querypb.QueryResult) error, inTx bool) (bool, error) {
	if !e.capsDML(r) {
		return e.stream(ctx, c, r, send)
	}
	res, killed, err := e.runDML(ctx, c, r, 0, inTx)
	if err != nil {
		return killed, err
	}
	return killed, send(res)
}
