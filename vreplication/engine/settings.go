package engine

import (
	"context"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// State names of the vreplication.state column.
var (
	stateStopped = binlogdatapb.VReplicationWorkflowState_Stopped.String()
	stateCopying = binlogdatapb.VReplicationWorkflowState_Copying.String()
	stateRunning = binlogdatapb.VReplicationWorkflowState_Running.String()
	stateError   = binlogdatapb.VReplicationWorkflowState_Error.String()
)

// maxMessageLen is the width of vreplication.message (varbinary(1000)).
const maxMessageLen = 1000

// settings is one row of <sidecar>.vreplication.
type settings struct {
	ID                    int32
	Workflow              string
	Source                *binlogdatapb.BinlogSource
	sourceErr             error // the source column does not parse
	Pos, StopPos          string
	MaxTPS, MaxLag        int64
	Cell, TabletTypes     string
	State, Message        string
	DBName                string
	RowsCopied            int64
	WorkflowType, SubType int32
	DeferSecondaryKeys    bool
	Options               string
	TimeUpdated           int64
	TransactionTimestamp  int64
	TimeHeartbeat         int64
}

const settingsColumns = "id, workflow, source, pos, stop_pos, max_tps, max_replication_lag, cell, tablet_types, " +
	"state, message, db_name, rows_copied, workflow_type, workflow_sub_type, defer_secondary_keys, options, " +
	"time_updated, transaction_timestamp, time_heartbeat"

// parseSettings reads a row selected with settingsColumns.
func parseSettings(qr *querypb.QueryResult, i int) (*settings, error) {
	vals, null := rowValues(qr.Rows[i], len(qr.Fields))
	str := func(k int) string {
		if null[k] {
			return ""
		}
		return string(vals[k])
	}
	num := func(k int) int64 {
		n, _ := strconv.ParseInt(str(k), 10, 64)
		return n
	}
	id, err := strconv.ParseInt(str(0), 10, 32)
	if err != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "vreplication row with id %q", str(0))
	}
	s := &settings{ID: int32(id), Workflow: str(1), Pos: str(3), StopPos: str(4), MaxTPS: num(5), MaxLag: num(6),
		Cell: str(7), TabletTypes: str(8), State: str(9), Message: str(10), DBName: str(11), RowsCopied: num(12),
		WorkflowType: int32(num(13)), SubType: int32(num(14)), DeferSecondaryKeys: num(15) != 0, Options: str(16),
		TimeUpdated: num(17), TransactionTimestamp: num(18), TimeHeartbeat: num(19)}
	s.Source = &binlogdatapb.BinlogSource{}
	if err := prototext.Unmarshal(vals[2], s.Source); err != nil {
		s.sourceErr = rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "stream %d: the source column is not a BinlogSource in protobuf text format: %v", s.ID, err)
	}
	return s, nil
}

func (e *Engine) readSettings(ctx context.Context, c *dbConn, id int32) (*settings, error) {
	qr, err := c.exec(ctx, fmt.Sprintf("select %s from %s.vreplication where id = %d", settingsColumns, e.sidecarID(), id))
	if err != nil {
		return nil, err
	}
	if len(qr.Rows) != 1 {
		return nil, rpcerr.New(vtrpcpb.Code_NOT_FOUND, "vreplication stream %d not found", id)
	}
	return parseSettings(qr, 0)
}

func (e *Engine) readAllSettings(ctx context.Context, c *dbConn) ([]*settings, error) {
	qr, err := c.exec(ctx, fmt.Sprintf("select %s from %s.vreplication where db_name = %s order by id",
		settingsColumns, e.sidecarID(), QuoteString(e.cfg.DBName)))
	if err != nil {
		return nil, err
	}
	out := make([]*settings, 0, len(qr.Rows))
	for i := range qr.Rows {
		s, err := parseSettings(qr, i)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// truncateMessage fits a message into the message column, keeping it valid UTF-8.
func truncateMessage(m string) string {
	if len(m) <= maxMessageLen {
		return m
	}
	const mark = "...[TRUNCATED]"
	cut := maxMessageLen - len(mark)
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + mark
}
