package vdiff

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/vreplication/engine"
)

// The statements on the vdiff tables are vttablet's (tabletmanager/vdiff/schema.go), with
// the keyspace's sidecar database in place of _vt; %[1]s is that database, quoted.
const (
	sqlNewVDiff    = "insert into %[1]s.vdiff(keyspace, workflow, state, options, shard, db_name, vdiff_uuid) values(%s, %s, %s, %s, %s, %s, %s)"
	sqlResumeVDiff = "update %[1]s.vdiff as vd, %[1]s.vdiff_table as vdt set vd.started_at = NULL, vd.completed_at = NULL, vd.state = 'pending', " +
		"vdt.state = 'pending' where vd.vdiff_uuid = %s and vd.id = vdt.vdiff_id and vd.state in ('completed', 'stopped') " +
		"and vdt.state in ('completed', 'stopped')"
	sqlStartVDiff = "update %[1]s.vdiff as vd set vd.state = 'pending' where vd.vdiff_uuid = %s and vd.state = 'stopped' and " +
		"vd.started_at is NULL and vd.completed_at is NULL and " +
		"(select count(*) as cnt from %[1]s.vdiff_table as vdt where vd.id = vdt.vdiff_id) = 0"
	sqlRetryVDiff = "update %[1]s.vdiff as vd left join %[1]s.vdiff_table as vdt on (vd.id = vdt.vdiff_id) set vd.state = 'pending', " +
		"vd.last_error = '', vdt.state = 'pending' where vd.id = %d and (vd.state = 'error' or vdt.state = 'error')"
	sqlGetVDiffByUUID   = "select * from %[1]s.vdiff where keyspace = %s and workflow = %s and vdiff_uuid = %s"
	sqlGetRecentVDiffs  = "select * from %[1]s.vdiff where keyspace = %s and workflow = %s order by id desc limit %d"
	sqlGetVDiffByID     = "select * from %[1]s.vdiff where id = %d"
	sqlDeleteVDiffs     = "delete from vd, vdt, vdl using %[1]s.vdiff as vd left join %[1]s.vdiff_table as vdt on (vd.id = vdt.vdiff_id) left join %[1]s.vdiff_log as vdl on (vd.id = vdl.vdiff_id) where vd.keyspace = %s and vd.workflow = %s"
	sqlDeleteVDiffUUID  = "delete from vd, vdt, vdl using %[1]s.vdiff as vd left join %[1]s.vdiff_table as vdt on (vd.id = vdt.vdiff_id) left join %[1]s.vdiff_log as vdl on (vd.id = vdl.vdiff_id) where vd.vdiff_uuid = %s"
	sqlVDiffSummary     = "select vd.state as vdiff_state, vd.last_error as last_error, vdt.table_name as table_name, vd.vdiff_uuid as 'uuid', vdt.state as table_state, vdt.table_rows as table_rows, vd.started_at as started_at, vdt.rows_compared as rows_compared, vd.completed_at as completed_at, IF(vdt.mismatch = 1, 1, 0) as has_mismatch, vdt.report as report from %[1]s.vdiff as vd left join %[1]s.vdiff_table as vdt on (vd.id = vdt.vdiff_id) where vd.id = %d order by table_name"
	sqlUpdateVDiffState = "update %[1]s.vdiff set state = %s, last_error = left(%s, 1024) %s where id = %d"
	sqlVDiffStopped     = "update %[1]s.vdiff as vd left join %[1]s.vdiff_table as vdt on (vd.id = vdt.vdiff_id) set vd.state = 'stopped', vdt.state = if(vdt.state = 'completed', 'completed', 'stopped'), vd.last_error = '' where vd.id = %d and vd.state != 'completed'"
	sqlVDiffsToRun      = "select * from %[1]s.vdiff where state in ('started','pending') and db_name = %s"
	sqlVDiffsToRetry    = "select * from %[1]s.vdiff where state = 'error' and json_unquote(json_extract(options, '$.core_options.auto_retry')) = 'true' and db_name = %s"
	sqlGetVDiffID       = "select id as id from %[1]s.vdiff where vdiff_uuid = %s"
	sqlGetVDiffIDs      = "select id as id from %[1]s.vdiff where keyspace = %s and workflow = %s"
	sqlGetAllTableRows  = "select table_name as table_name, table_rows as table_rows from INFORMATION_SCHEMA.TABLES where table_schema = %[2]s and table_name in (%[3]s) order by table_name"
	sqlNewVDiffTable    = "insert into %[1]s.vdiff_table(vdiff_id, table_name, state, table_rows) values(%d, %s, 'pending', %d)"
	sqlGetVDiffTable    = "select vdt.lastpk as lastpk, vdt.mismatch as mismatch, vdt.report as report, vdt.state as state from %[1]s.vdiff as vd inner join %[1]s.vdiff_table as vdt on (vd.id = vdt.vdiff_id) where vdt.vdiff_id = %d and vdt.table_name = %s"
	sqlUpdateTableRows  = "update %[1]s.vdiff_table set table_rows = %d where vdiff_id = %d and table_name = %s"
	sqlTableProgress    = "update %[1]s.vdiff_table set rows_compared = %d, lastpk = %s, report = %s where vdiff_id = %d and table_name = %s"
	sqlTableNoProgress  = "update %[1]s.vdiff_table set rows_compared = %d, report = %s where vdiff_id = %d and table_name = %s"
	sqlTableState       = "update %[1]s.vdiff_table set state = %s where vdiff_id = %d and table_name = %s"
	sqlTableStateReport = "update %[1]s.vdiff_table set state = %s, rows_compared = %d, report = %s where vdiff_id = %d and table_name = %s"
	sqlTableMismatch    = "update %[1]s.vdiff_table set mismatch = true where vdiff_id = %d and table_name = %s"
	sqlIncompleteTables = "select table_name as table_name from %[1]s.vdiff_table where vdiff_id = %d and state != 'completed' order by table_name"
	sqlInsertLog        = "insert into %[1]s.vdiff_log(vdiff_id, message) values (%d, %s)"
	sqlWorkflowStreams  = "select id, source, pos, workflow_type, state, message from %[1]s.vreplication where workflow = %s and db_name = %s order by id"
	sqlStaleVDiffStops  = "select distinct workflow from %[1]s.vreplication where db_name = %s and message in ('for vdiff', 'synchronizing for vdiff')"
)

// The VReplicationExec statements of the synchronisation (vttablet's table_differ.go).
const (
	sqlStopWorkflow    = "update %[1]s.vreplication set state = 'Stopped', message = 'for vdiff' where workflow = %s and db_name = %s"
	sqlSyncStream      = "update %[1]s.vreplication set state = 'Running', stop_pos = %s, message = 'synchronizing for vdiff' where id = %d"
	sqlRestartWorkflow = "update %[1]s.vreplication set state = 'Running', message = '', stop_pos = '' where db_name = %s and workflow = %s"
)

// quoteString and quoteID are the VReplication engine's: one SQL quoting for both.
var (
	quoteString = engine.QuoteString
	quoteID     = engine.QuoteID
)

// conn is one MySQL connection of the engine or of a diff; it reconnects when lost.
// Timestamps are read and written in UTC (started_at = utc_timestamp() reads back as
// written, and vtctldclient parses the values as UTC).
type conn struct {
	cfg mysqlconn.Config
	c   *mysqlconn.Conn
}

func newConn(cfg mysqlconn.Config) *conn { return &conn{cfg: cfg} }

func (d *conn) exec(ctx context.Context, sql string) (*querypb.QueryResult, error) {
	if d.c == nil || d.c.IsClosed() {
		c, err := mysqlconn.Connect(ctx, d.cfg)
		if err != nil {
			return nil, mysqlError(err, "cannot connect to MySQL as "+d.cfg.User)
		}
		if _, err := c.Execute(ctx, "set @@session.time_zone = '+00:00'", 0, mysqlconn.FieldsNone); err != nil {
			_ = c.Close()
			return nil, mysqlError(err, "")
		}
		d.c = c
	}
	qr, err := d.c.Execute(ctx, sql, 0, mysqlconn.FieldsAll)
	if err != nil {
		return nil, mysqlError(err, "")
	}
	return qr, nil
}

func (d *conn) close() {
	if d.c != nil {
		_ = d.c.Close()
		d.c = nil
	}
}

// mysqlError gives a MySQL error its vtrpc code and keeps the errno in its text.
func mysqlError(err error, what string) error {
	var re *rpcerr.Error
	switch {
	case errors.As(err, &re):
		return err
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return rpcerr.Wrap(rpcerr.Code(err), err, "%s", what)
	}
	if _, _, ok := rpcerr.Errno(err); ok {
		return rpcerr.FromMySQL(err, what)
	}
	return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "%s", what)
}

// namedRow is a result row by column name; NULL values are absent.
type namedRow map[string]string

func namedRows(qr *querypb.QueryResult) []namedRow {
	out := make([]namedRow, 0, len(qr.Rows))
	for _, r := range qr.Rows {
		m := namedRow{}
		off := int64(0)
		for i, l := range r.Lengths {
			if l < 0 {
				continue
			}
			if i < len(qr.Fields) {
				m[qr.Fields[i].Name] = string(r.Values[off : off+l])
			}
			off += l
		}
		out = append(out, m)
	}
	return out
}

func (r namedRow) int64(name string) int64 {
	n, _ := strconv.ParseInt(r[name], 10, 64)
	return n
}

// sqlf formats a statement on the sidecar database sc.
func sqlf(sc, format string, args ...any) string {
	return fmt.Sprintf(format, append([]any{quoteID(sc)}, args...)...)
}
