package tabletserver

import (
	"context"
	"errors"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
)

// stream runs r on c, sending the result in batches; if ctx ends first (the client went away
// or its deadline passed) the statement is killed. killed means the connection must not be
// reused.
func (e *engine) stream(ctx context.Context, c *mysqlconn.Conn, r *request, send func(*querypb.QueryResult) error) (killed bool, err error) {
	var sendErr error
	err = c.Stream(ctx, r.final, r.fields, e.cfg.StreamBufferSize, func(qr *querypb.QueryResult) error {
		if sendErr = send(qr); sendErr != nil {
			return sendErr
		}
		return nil
	})
	killed = c.Canceled()
	switch {
	case err == nil:
		return killed, nil
	case sendErr != nil && errors.Is(err, sendErr):
		return killed, sendErr
	case killed || ctx.Err() != nil:
		return true, interrupted(ctx, r)
	}
	return killed, mysqlError(err, r.caller, r.sql, bindNames(r.bindVars))
}

// streamNoTx streams on a stream-pool connection.
func (e *engine) streamNoTx(ctx context.Context, r *request, send func(*querypb.QueryResult) error) error {
	p := e.streams
	if class(r.plan.Type) != classRead {
		p = e.tx.poolFor(r.options) // a write or session statement: same rules as Execute
	}
	pc, err := p.Get(ctx, nil)
	if err != nil {
		return poolError(err, p)
	}
	killed, err := e.stream(ctx, pc.Conn(), r, send)
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
	killed, err := t.e.stream(ctx, s.conn(), r, send)
	if killed || s.conn().IsClosed() {
		return t.endAfterKill(s, err)
	}
	return err
}
