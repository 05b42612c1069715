package engine

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// replicator is one run of a stream against one source tablet: the copy cycles, then the
// replication phase. It owns conn (the stream's connection) for the run.
type replicator struct {
	e        *Engine
	ct       *controller
	id       int32
	conn     *dbConn
	src      Source
	st       *streamStats
	log      *zap.Logger
	state    string // the state last written to the row
	workflow string
	schema   map[string]*tableSchema
	settings *settings      // as last read
	parser   *parser.Parser // this run's own (a parser is not safe for concurrent use)
}

func (r *replicator) sc() string { return r.e.sidecarID() }

func (r *replicator) run(ctx context.Context) error {
	if err := r.checkRowImage(ctx); err != nil {
		return err
	}
	for ctx.Err() == nil {
		s, err := r.e.readSettings(ctx, r.conn, r.id)
		if err != nil {
			return err
		}
		r.settings = s
		if s.State == stateStopped || s.State == stateError {
			return nil
		}
		if r.schema, err = loadSchema(ctx, r.conn, r.e.cfg.DBName); err != nil {
			return err
		}
		if missing := missingTables(s.Source.Filter, r.schema); len(missing) > 0 {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "the filter names table(s) %s, which database %s does not have",
				strings.Join(missing, ", "), r.e.cfg.DBName)
		}
		copying, err := r.readCopyState(ctx)
		if err != nil {
			return err
		}
		switch {
		case len(copying) > 0:
			if r.state != stateCopying {
				if err := r.setState(ctx, stateCopying, ""); err != nil {
					return err
				}
			}
			if err := r.copyCycle(ctx, copying); err != nil {
				return err
			}
		case s.Pos == "":
			if err := r.initCopy(ctx); err != nil {
				return err
			}
		default:
			if s.Source.StopAfterCopy {
				return r.setState(ctx, stateStopped, "Stopped after copy.")
			}
			if err := r.setState(ctx, stateRunning, ""); err != nil {
				return err
			}
			return r.replicate(ctx, s)
		}
	}
	return nil
}

// checkRowImage refuses a target whose binlog would not carry full rows to the next hop (a
// reverse workflow streams from here): FULL, or NOBLOB for MoveTables and Reshard, as vttablet.
func (r *replicator) checkRowImage(ctx context.Context) error {
	qr, err := r.conn.exec(ctx, "select @@binlog_row_image")
	if err != nil || len(qr.Rows) != 1 {
		return err
	}
	v, _ := rowValues(qr.Rows[0], 1)
	switch strings.ToLower(string(v[0])) {
	case "full":
		return nil
	case "noblob":
		return nil
	}
	return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "%s binlog_row_image is not supported by VReplication: use FULL", v[0])
}

// setState writes the stream's state and message (and logs the change).
func (r *replicator) setState(ctx context.Context, state, message string) error {
	if _, err := r.conn.exec(ctx, fmt.Sprintf("update %s.vreplication set state = %s, message = %s where id = %d",
		r.sc(), QuoteString(state), QuoteString(truncateMessage(message)), r.id)); err != nil {
		return err
	}
	if state != r.state || message != "" {
		r.e.insertLog(ctx, r.conn, r.id, logStateChange, state, message)
	}
	r.state = state
	r.st.update(func(s *StreamStatus) { s.State, s.Message = state, message })
	return nil
}

// readCopyState returns the tables still to copy with their lastpk (nil: not started).
func (r *replicator) readCopyState(ctx context.Context) (map[string]*lastPK, error) {
	qr, err := r.conn.exec(ctx, fmt.Sprintf("select table_name, lastpk from %s.copy_state where vrepl_id = %d and id in "+
		"(select max(id) from %s.copy_state where vrepl_id = %d group by vrepl_id, table_name)", r.sc(), r.id, r.sc(), r.id))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*lastPK, len(qr.Rows))
	for _, row := range qr.Rows {
		v, null := rowValues(row, 2)
		name := string(v[0])
		if null[1] || len(v[1]) == 0 {
			out[name] = nil
			continue
		}
		l, err := parseLastPK(v[1])
		if err != nil {
			return nil, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "table %s", name)
		}
		out[name] = l
	}
	return out, nil
}

// initCopy starts the copy phase: one copy_state row per target table the rules match, then
// state Copying; with defer_secondary_keys, the tables' secondary keys are dropped until
// their copy ends.
func (r *replicator) initCopy(ctx context.Context) error {
	plan, err := buildReplicatorPlan(r.parser, r.settings.Source, r.schema, nil)
	if err != nil {
		return err
	}
	tables := make([]string, 0, len(plan.byTarget))
	for n := range plan.byTarget {
		tables = append(tables, n)
	}
	sort.Strings(tables)
	if len(tables) == 0 {
		return r.setState(ctx, stateStopped, "There is nothing to replicate")
	}
	vals := make([]string, len(tables))
	for i, t := range tables {
		vals[i] = fmt.Sprintf("(%d, %s)", r.id, QuoteString(t))
	}
	if err := r.conn.begin(ctx); err != nil {
		return err
	}
	if _, err := r.conn.exec(ctx, fmt.Sprintf("insert into %s.copy_state (vrepl_id, table_name) values %s", r.sc(), strings.Join(vals, ", "))); err != nil {
		r.conn.rollback()
		return err
	}
	if err := r.setState(ctx, stateCopying, ""); err != nil {
		r.conn.rollback()
		return err
	}
	if err := r.conn.commit(ctx); err != nil {
		return err
	}
	r.e.insertLog(ctx, r.conn, r.id, logCopyStart, stateCopying, fmt.Sprintf("Copy phase started for %d table(s)", len(tables)))
	if !r.settings.DeferSecondaryKeys || !defersKeys(r.settings.WorkflowType) {
		return nil
	}
	for _, t := range tables {
		if err := r.stashKeys(ctx, r.schema[t]); err != nil {
			return err
		}
	}
	return nil
}

// defersKeys: the workflow types vttablet defers secondary keys for.
func defersKeys(wt int32) bool {
	switch binlogdatapb.VReplicationWorkflowType(wt) {
	case binlogdatapb.VReplicationWorkflowType_MoveTables, binlogdatapb.VReplicationWorkflowType_Migrate,
		binlogdatapb.VReplicationWorkflowType_Reshard:
		return true
	}
	return false
}

// postCopyAction is vttablet's _vt.post_copy_action.action JSON.
type postCopyAction struct {
	Type int    `json:"type"` // 1: SQL
	Task string `json:"task"`
}

// stashKeys records the statement that re-adds t's secondary keys, then drops them. The
// record comes first: a crash in between leaves keys to re-add, never keys lost.
func (r *replicator) stashKeys(ctx context.Context, t *tableSchema) error {
	keys := t.deferrable()
	if len(keys) == 0 {
		return nil
	}
	drop, add := indexDDL(keys)
	table := QuoteID(r.e.cfg.DBName) + "." + QuoteID(t.name)
	action, _ := json.Marshal(postCopyAction{Type: 1, Task: "alter table " + table + " " + add})
	if _, err := r.conn.exec(ctx, fmt.Sprintf("insert into %s.post_copy_action (vrepl_id, table_name, action) values (%d, %s, convert(%s using utf8mb4)) "+
		"on duplicate key update action = action", r.sc(), r.id, QuoteString(t.name), QuoteString(string(action)))); err != nil {
		return err
	}
	if _, err := r.conn.exec(ctx, "alter table "+table+" "+drop); err != nil && errno(err) != 1091 {
		return err
	}
	r.log.Info("secondary keys deferred until the copy ends", zap.String("table", t.name), zap.Int("keys", len(keys)))
	return nil
}

// finishTable ends a table's copy: its copy_state rows go, and when no other stream of this
// database still copies the table, the deferred keys of every stream are re-added.
func (r *replicator) finishTable(ctx context.Context, c *dbConn, table string) error {
	sum := sha1.Sum([]byte(r.e.cfg.DBName + "." + table))
	lock := QuoteString("vrepl_post_copy_" + hex.EncodeToString(sum[:12]))
	if _, err := c.exec(ctx, "select get_lock("+lock+", 3600)"); err != nil {
		return err
	}
	defer func() { _, _ = c.exec(context.Background(), "select release_lock("+lock+")") }()
	if _, err := c.exec(ctx, fmt.Sprintf("delete from %s.copy_state where vrepl_id = %d and table_name = %s", r.sc(), r.id, QuoteString(table))); err != nil {
		return err
	}
	others, err := c.exec(ctx, fmt.Sprintf("select 1 from %s.copy_state cs join %s.vreplication vr on vr.id = cs.vrepl_id "+
		"where cs.table_name = %s and vr.db_name = %s limit 1", r.sc(), r.sc(), QuoteString(table), QuoteString(r.e.cfg.DBName)))
	if err != nil {
		return err
	}
	if len(others.Rows) > 0 {
		return nil // the last stream copying the table re-adds the keys
	}
	acts, err := c.exec(ctx, fmt.Sprintf("select pca.id, pca.action from %s.post_copy_action pca join %s.vreplication vr on vr.id = pca.vrepl_id "+
		"where pca.table_name = %s and vr.db_name = %s order by pca.id", r.sc(), r.sc(), QuoteString(table), QuoteString(r.e.cfg.DBName)))
	if err != nil {
		return err
	}
	for _, row := range acts.Rows {
		v, _ := rowValues(row, 2)
		var a postCopyAction
		if err := json.Unmarshal(v[1], &a); err != nil || a.Type != 1 {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "post_copy_action %s for table %s is not an SQL action: %s", v[0], table, v[1])
		}
		r.log.Info("re-adding deferred keys", zap.String("table", table))
		if _, err := c.exec(ctx, a.Task); err != nil && errno(err) != 1061 { // 1061: already there (a restart)
			return err
		}
		if _, err := c.exec(ctx, fmt.Sprintf("delete from %s.post_copy_action where id = %s", r.sc(), v[0])); err != nil {
			return err
		}
	}
	return nil
}
