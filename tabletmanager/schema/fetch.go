package schema

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// MultiStatementRefusal is vttablet v23's exact error text for ExecuteFetchAsDba given more
// than one statement (INVALID_ARGUMENT); vtctld and its users see it verbatim.
const MultiStatementRefusal = "multi statement queries are not supported in ExecuteFetchAsDba"

// errnoParseError is ER_PARSE_ERROR: also what the server answers to several statements sent
// without CLIENT_MULTI_STATEMENTS.
const errnoParseError = 1064

// dbaFetch is one ExecuteFetchAsDba or ExecuteMultiFetchAsDba request.
type dbaFetch struct {
	rpc                     string // for error texts
	sql, dbName             string
	maxRows                 int
	disableBinlogs          bool
	disableForeignKeyChecks bool
	reloadSchema            bool
	single                  bool // ExecuteFetchAsDba: refuse more than one statement
}

// ExecuteFetchAsDba runs exactly one statement as the dba user.
func (e *Engine) ExecuteFetchAsDba(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsDbaRequest) (*querypb.QueryResult, error) {
	res, err := e.dbaFetch(ctx, dbaFetch{rpc: "ExecuteFetchAsDba", sql: string(req.GetQuery()), dbName: req.GetDbName(),
		maxRows: maxRows(req.GetMaxRows()), disableBinlogs: req.GetDisableBinlogs(),
		disableForeignKeyChecks: req.GetDisableForeignKeyChecks(), reloadSchema: req.GetReloadSchema(), single: true})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// ExecuteMultiFetchAsDba runs the statements of req.sql in order as the dba user and returns
// one result per statement. It stops at the first failing statement; the statements before
// it are not undone, and the error says so.
func (e *Engine) ExecuteMultiFetchAsDba(ctx context.Context, req *tabletmanagerdatapb.ExecuteMultiFetchAsDbaRequest) ([]*querypb.QueryResult, error) {
	return e.dbaFetch(ctx, dbaFetch{rpc: "ExecuteMultiFetchAsDba", sql: string(req.GetSql()), dbName: req.GetDbName(),
		maxRows: maxRows(req.GetMaxRows()), disableBinlogs: req.GetDisableBinlogs(),
		disableForeignKeyChecks: req.GetDisableForeignKeyChecks(), reloadSchema: req.GetReloadSchema()})
}

func (e *Engine) dbaFetch(ctx context.Context, f dbaFetch) ([]*querypb.QueryResult, error) {
	s, err := e.statements(f.sql, f.single)
	if err != nil {
		return nil, err
	}
	c, err := e.connect(ctx, roleDba, false)
	if err != nil {
		return nil, err
	}
	defer c.Close() // the session's settings die with it
	if f.disableBinlogs {
		if err := exec(ctx, c, "SET sql_log_bin = OFF"); err != nil {
			return nil, err
		}
	}
	if f.disableForeignKeyChecks {
		if err := exec(ctx, c, "SET SESSION foreign_key_checks = OFF"); err != nil {
			return nil, err
		}
	}
	useDatabase(ctx, c, f.dbName)
	if allowsZeroInDate(s.stmts) {
		if err := exec(ctx, c, "SET @@session.sql_mode = REPLACE(REPLACE(@@session.sql_mode, 'NO_ZERO_DATE', ''), 'NO_ZERO_IN_DATE', '')"); err != nil {
			return nil, err
		}
	}
	results := make([]*querypb.QueryResult, 0, len(s.stmts))
	for i, stmt := range s.stmts {
		qr, err := fetch(ctx, c, stmt, f.maxRows)
		if err != nil {
			if n, _, ok := rpcerr.Errno(err); ok && n == errnoParseError && !s.parsed() {
				return nil, rpcerr.WithCause(rpcerr.Code(err), fmt.Sprintf(
					"%s: the SQL parser cannot read the text (%v), so it was sent to the server as one statement, which refused it: %v",
					f.rpc, s.parseErr, err), err)
			}
			return nil, stopped(f.rpc, i, len(s.stmts), err)
		}
		results = append(results, qr)
	}
	if f.reloadSchema {
		e.reload(ctx)
	}
	return results, nil
}

// statements cuts sql for a fetch, refusing an empty text and, for single, more than one
// statement (with vttablet's exact text); the sidecar qualifier is replaced.
func (e *Engine) statements(sql string, single bool) (script, error) {
	s := e.split.split(sql)
	if len(s.stmts) == 0 {
		return s, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "no statements found in query: %s", truncate(sql, maxQueryInError))
	}
	if single && len(s.stmts) > 1 {
		return s, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, MultiStatementRefusal)
	}
	return withSidecar(s, e.sidecarDBName())
}

// useDatabase selects dbName, ignoring failures: the statement may be the one creating it
// (InitShardPrimary's CREATE DATABASE IF NOT EXISTS); a later statement that needs it then
// fails with "No database selected" (errno 1046).
func useDatabase(ctx context.Context, c *mysqlconn.Conn, dbName string) {
	if dbName != "" {
		_, _ = c.Execute(ctx, "USE "+quoteIdent(dbName), 0, mysqlconn.FieldsNone)
	}
}

// stopped is the error of statement i (of n) that failed after the i before it succeeded:
// it names the statement, says what already ran, and keeps the MySQL error's code and errno.
func stopped(rpc string, i, n int, err error) error {
	if n == 1 {
		return err
	}
	ran := "no statement before it ran"
	switch i {
	case 0:
	case 1:
		ran = "statement 1 ran and is not undone"
	default:
		ran = fmt.Sprintf("statements 1-%d ran and are not undone", i)
	}
	return rpcerr.WithCause(rpcerr.Code(err), fmt.Sprintf("%s: statement %d of %d failed (%s): %v", rpc, i+1, n, ran, err), err)
}

// ExecuteFetchAsAllPrivs runs one statement as the allprivs user in req.db_name (the
// tablet's database when empty).
func (e *Engine) ExecuteFetchAsAllPrivs(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsAllPrivsRequest) (*querypb.QueryResult, error) {
	s, err := e.statements(string(req.GetQuery()), false)
	if err != nil {
		return nil, err
	}
	if len(s.stmts) > 1 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "multi statement queries are not supported in ExecuteFetchAsAllPrivs")
	}
	c, err := e.connect(ctx, roleAllPrivs, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	db := req.GetDbName()
	if db == "" {
		db = e.cfg.DBName // vttablet's allprivs connections select the tablet's database
	}
	useDatabase(ctx, c, db)
	qr, err := fetch(ctx, c, s.stmts[0], maxRows(req.GetMaxRows()))
	if err != nil {
		return nil, err
	}
	if req.GetReloadSchema() {
		e.reload(ctx)
	}
	return qr, nil
}

// ExecuteFetchAsApp runs one statement as the app user in the tablet's database.
func (e *Engine) ExecuteFetchAsApp(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsAppRequest) (*querypb.QueryResult, error) {
	s, err := e.statements(string(req.GetQuery()), false)
	if err != nil {
		return nil, err
	}
	if len(s.stmts) > 1 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "multi statement queries are not supported in ExecuteFetchAsApp")
	}
	c, err := e.connect(ctx, roleApp, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return fetch(ctx, c, s.stmts[0], maxRows(req.GetMaxRows()))
}

// ExecuteQuery runs one statement through the query service as req.caller_id (vtctld's
// online-DDL submissions), so table ACLs and query rules apply to it.
func (e *Engine) ExecuteQuery(ctx context.Context, req *tabletmanagerdatapb.ExecuteQueryRequest) (*querypb.QueryResult, error) {
	if e.deps.Execute == nil {
		return nil, rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "ExecuteQuery: this tablet has no query service to run it")
	}
	s, err := e.statements(string(req.GetQuery()), false)
	if err != nil {
		return nil, err
	}
	if len(s.stmts) > 1 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "multi statement queries are not supported in ExecuteQuery")
	}
	return e.deps.Execute(ctx, req.GetCallerId(), s.stmts[0], maxRows(req.GetMaxRows()))
}

// ReloadSchema waits until replication has reached waitPosition (when set), then has the
// query service refresh what it caches about the schema.
func (e *Engine) ReloadSchema(ctx context.Context, waitPosition string) error {
	if waitPosition != "" {
		if _, err := replication.ParsePosition(waitPosition); err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "ReloadSchema: can't parse wait position (%q)", waitPosition)
		}
		if e.deps.WaitForPosition == nil {
			return rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "ReloadSchema: this tablet cannot wait for replication position %q", waitPosition)
		}
		if err := e.deps.WaitForPosition(ctx, waitPosition); err != nil {
			return err
		}
	}
	if e.deps.Reload == nil {
		return nil
	}
	return e.deps.Reload(ctx)
}

// reload refreshes the query service after a fetch that asked for it; as in vttablet a
// failure is only logged (the statement itself succeeded).
func (e *Engine) reload(ctx context.Context) {
	if e.deps.Reload == nil {
		return
	}
	if err := e.deps.Reload(ctx); err != nil {
		e.log.Warn("schema reload after a fetch failed", zap.Error(err))
	}
}
