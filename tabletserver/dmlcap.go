package tabletserver

import (
	"context"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// The DML row cap (--queryserver-config-max-dml-rows, vitess#4724): an INSERT, UPDATE or
// DELETE that affects more rows than the cap is undone and fails, so one bad statement
// cannot rewrite a whole table. MySQL cannot stop a statement at a row count, so the
// statement runs inside a transaction (or after a savepoint in the caller's own
// transaction) and is rolled back when it went over. The cap costs two extra round trips per
// DML and none when it is off (the default).

// dmlSavepoint marks the start of a capped statement inside the caller's transaction.
// Setting it again replaces the previous one, so it never accumulates.
const dmlSavepoint = "tabletd_max_dml_rows"

// capsDML reports whether r is a DML the cap applies to.
func (e *executor) capsDML(r *request) bool {
	return e.cfg.MaxDMLRows > 0 && r.plan != nil && r.plan.IsDML
}

// runDML runs r like run, undoing it when it affects more than MaxDMLRows rows. inTx: c
// holds the caller's open transaction (a savepoint is used); otherwise the statement gets a
// transaction of its own. killed has run's meaning; it is also set when the connection is
// left in an unknown transaction state, so it is never reused.
func (e *executor) runDML(ctx context.Context, c *mysqlconn.Conn, r *request, maxRows int, inTx bool) (*querypb.QueryResult, bool, error) {
	if !e.capsDML(r) {
		return e.run(ctx, c, r, maxRows)
	}
	open, undo, done := "begin", "rollback", "commit"
	if inTx {
		open, undo, done = "savepoint "+dmlSavepoint, "rollback to savepoint "+dmlSavepoint, ""
	}
	if _, killed, err := e.run(ctx, c, e.internal(r, open), 0); err != nil {
		return nil, killed, err
	}
	res, killed, err := e.run(ctx, c, r, maxRows)
	if killed {
		return nil, true, err // the connection is thrown away; MySQL rolls back with it
	}
	over := err == nil && res.RowsAffected > uint64(e.cfg.MaxDMLRows)
	if err != nil || over {
		if inTx && err != nil {
			return nil, false, err // MySQL already undid the failed statement
		}
		if _, k, uerr := e.run(ctx, c, e.internal(r, undo), 0); uerr != nil {
			return nil, true, uerr // state unknown: never reuse this connection
		} else if k {
			return nil, true, err
		}
		if err != nil {
			return nil, false, err
		}
		e.dmlCapped.Inc()
		return nil, false, rpcerr.New(vtrpcpb.Code_ABORTED,
			"caller id: %s: DML affected %d rows, more than --queryserver-config-max-dml-rows (%d): the statement was rolled back",
			r.Caller, res.RowsAffected, e.cfg.MaxDMLRows)
	}
	if done != "" {
		if _, _, cerr := e.run(ctx, c, e.internal(r, done), 0); cerr != nil {
			return nil, true, cerr // the outcome is unknown to us: never reuse this connection
		}
	}
	return res, false, nil
}

// internal is a statement tabletd itself runs on r's behalf.
func (e *executor) internal(r *request, sql string) *request {
	return internalRequest(r.Caller, sql)
}
