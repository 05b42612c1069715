package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// preflightDB is the scratch database PreflightSchema builds (Vitess's name).
const preflightDB = "_vt_preflight"

// dropTimeout bounds dropping the scratch database after a failed or cancelled preflight.
const dropTimeout = 30 * time.Second

// ApplySchema applies a schema change script to the tablet's database as vttablet does
// (MoveTables and CopySchemaShard send it): the schema before must match
// req.before_schema unless req.force (a script whose result, req.after_schema, is already in
// place succeeds at once), the script runs on one dba session with foreign key checks off
// when asked, binary logging off unless allow_replication and the given sql_mode, and the
// schema after must match req.after_schema unless req.force. req.batch_size is ignored, as in
// vttablet. The caller serialises it with the tablet's other actions.
func (e *Engine) ApplySchema(ctx context.Context, req *tabletmanagerdatapb.ApplySchemaRequest) (*tabletmanagerdatapb.SchemaChangeResult, error) {
	s := e.split.split(req.GetSql())
	if len(s.stmts) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "ApplySchema: no statements found in sql %q", truncate(req.GetSql(), maxQueryInError))
	}
	full := &tabletmanagerdatapb.GetSchemaRequest{IncludeViews: true}
	before, err := e.getSchema(ctx, e.cfg.DBName, full)
	if err != nil {
		return nil, err
	}
	if req.GetBeforeSchema() != nil {
		if diffs := diffSchemas("actual", before, "expected", req.GetBeforeSchema()); len(diffs) > 0 {
			if req.GetAfterSchema() != nil && len(diffSchemas("actual", before, "expected", req.GetAfterSchema())) == 0 {
				return &tabletmanagerdatapb.SchemaChangeResult{BeforeSchema: before, AfterSchema: before}, nil // already applied
			}
			if !req.GetForce() {
				return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "BeforeSchema differs: %s", strings.Join(diffs, "; "))
			}
			e.log.Warn("BeforeSchema differs, applying anyway (force)", zap.Strings("diffs", diffs))
		}
	}
	if err := e.applyScript(ctx, s, req); err != nil {
		return nil, err
	}
	after, err := e.getSchema(ctx, e.cfg.DBName, full)
	if err != nil {
		return nil, err
	}
	if req.GetAfterSchema() != nil {
		if diffs := diffSchemas("actual", after, "expected", req.GetAfterSchema()); len(diffs) > 0 {
			if !req.GetForce() {
				return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "AfterSchema differs: %s", strings.Join(diffs, "; "))
			}
			e.log.Warn("AfterSchema differs, not reporting an error (force)", zap.Strings("diffs", diffs))
		}
	}
	e.reload(ctx)
	return &tabletmanagerdatapb.SchemaChangeResult{BeforeSchema: before, AfterSchema: after}, nil
}

// applyScript runs an ApplySchema script on a fresh dba session with its settings.
func (e *Engine) applyScript(ctx context.Context, s script, req *tabletmanagerdatapb.ApplySchemaRequest) error {
	c, err := e.connect(ctx, roleDba, true)
	if err != nil {
		return err
	}
	defer c.Close()
	setup := []string{"USE " + quoteIdent(e.cfg.DBName)}
	if req.GetDisableForeignKeyChecks() {
		setup = append(setup, "SET foreign_key_checks = 0")
	}
	if !req.GetAllowReplication() {
		setup = append(setup, "SET sql_log_bin = 0")
	}
	if m := req.GetSqlMode(); m != "" {
		setup = append(setup, "SET @@session.sql_mode = "+quoteString(m))
	}
	for _, st := range setup {
		if err := exec(ctx, c, st); err != nil {
			return err
		}
	}
	return runScript(ctx, c, "ApplySchema", s)
}

// runScript runs the statements of s in order on c, stopping at the first failure (whose
// error names it and says what ran before it). A script the parser could not read runs as
// one multi-statement batch (c must allow them), as the mysql client would run it.
func runScript(ctx context.Context, c *mysqlconn.Conn, rpc string, s script) error {
	if !s.parsed() {
		if err := runText(ctx, c, s.stmts[0]); err != nil {
			return rpcerr.WithCause(rpcerr.Code(err), fmt.Sprintf(
				"%s: the SQL parser cannot read the script (%v), so it ran as one batch: the server stopped at the failing statement and the statements before it stay applied: %v",
				rpc, s.parseErr, err), err)
		}
		return nil
	}
	for i, stmt := range s.stmts {
		if err := runText(ctx, c, stmt); err != nil {
			return stopped(rpc, i, len(s.stmts), err)
		}
	}
	return nil
}

// runText runs statements whose results do not matter; several results (a batch, or a CALL
// returning rows) are read and discarded, and only a server error fails.
func runText(ctx context.Context, c *mysqlconn.Conn, text string) error {
	_, err := c.Execute(ctx, text, 0, mysqlconn.FieldsNone)
	if err == nil {
		return nil
	}
	if _, _, ok := rpcerr.Errno(err); !ok && errors.Is(err, mysqlconn.ErrMultipleResults) {
		return nil
	}
	return sqlError(err, text)
}

// PreflightSchema tries each change on a scratch copy of the schema (database
// _vt_preflight, built and dropped with binary logging off) and returns the schema before
// and after each, as vttablet does. Changes apply cumulatively, in order. The scratch
// database is dropped on failure too.
func (e *Engine) PreflightSchema(ctx context.Context, changes []string) (results []*tabletmanagerdatapb.SchemaChangeResult, err error) {
	scripts := make([]script, len(changes))
	for i, ch := range changes {
		if scripts[i] = e.split.split(ch); len(scripts[i].stmts) == 0 {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "PreflightSchema: change %d has no statements", i+1)
		}
	}
	original, err := e.getSchema(ctx, e.cfg.DBName, &tabletmanagerdatapb.GetSchemaRequest{IncludeViews: true, TableSchemaOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() {
		// Drop the scratch database whatever happened (with a context of its own: ctx may be
		// the reason of the failure).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
		defer cancel()
		if derr := e.preflightSession(dctx, "dropping", "DROP DATABASE IF EXISTS "+preflightDB); derr != nil && err == nil {
			results, err = nil, derr
		}
	}()
	if err := e.preflightSession(ctx, "preparing", copySchemaSQL(original)...); err != nil {
		return nil, err
	}
	schemaReq := &tabletmanagerdatapb.GetSchemaRequest{IncludeViews: true}
	for i, s := range scripts {
		before, err := e.getSchema(ctx, preflightDB, schemaReq)
		if err != nil {
			return nil, err
		}
		if err := e.preflightChange(ctx, i, s); err != nil {
			return nil, err
		}
		after, err := e.getSchema(ctx, preflightDB, schemaReq)
		if err != nil {
			return nil, err
		}
		results = append(results, &tabletmanagerdatapb.SchemaChangeResult{BeforeSchema: before, AfterSchema: after})
	}
	return results, nil
}

// copySchemaSQL recreates the tables, then the views, of sd in the scratch database.
func copySchemaSQL(sd *tabletmanagerdatapb.SchemaDefinition) []string {
	stmts := []string{"DROP DATABASE IF EXISTS " + preflightDB, "CREATE DATABASE " + preflightDB, "USE " + preflightDB,
		// Tables are created in name order, not in foreign key order.
		"SET foreign_key_checks = 0"}
	for _, td := range sd.TableDefinitions {
		if td.Type == typeBaseTable && td.Schema != "" {
			stmts = append(stmts, td.Schema)
		}
	}
	for _, td := range sd.TableDefinitions {
		if td.Type == typeView && td.Schema != "" {
			stmts = append(stmts, strings.ReplaceAll(td.Schema, databaseTemplate, quoteIdent(preflightDB)))
		}
	}
	return stmts
}

// preflightSession runs stmts on a fresh dba session with binary logging off.
func (e *Engine) preflightSession(ctx context.Context, what string, stmts ...string) error {
	c, err := e.connect(ctx, roleDba, false)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, st := range append([]string{"SET sql_log_bin = 0"}, stmts...) {
		if err := exec(ctx, c, st); err != nil {
			return rpcerr.WithCause(rpcerr.Code(err), "PreflightSchema: "+what+" "+preflightDB+": "+err.Error(), err)
		}
	}
	return nil
}

// preflightChange runs change i on a fresh session in the scratch database.
func (e *Engine) preflightChange(ctx context.Context, i int, s script) error {
	c, err := e.connect(ctx, roleDba, true)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, st := range []string{"SET sql_log_bin = 0", "USE " + preflightDB} {
		if err := exec(ctx, c, st); err != nil {
			return err
		}
	}
	return runScript(ctx, c, fmt.Sprintf("PreflightSchema change %d", i+1), s)
}
