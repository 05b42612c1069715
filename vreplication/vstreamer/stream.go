package vstreamer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	repl "github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// binlogStream turns one binlog dump into VEvents (one VStream call). Transactions come as
// BEGIN, FIELD (first use of a table, and after its schema changed), ROW…, GTID, COMMIT; a
// DDL as GTID, DDL (or OTHER when the filter does not cover it); other statements as GTID,
// OTHER; a row of _vt.resharding_journal for this database as JOURNAL, of
// _vt.schema_version as VERSION; HEARTBEAT when the binlog is idle. Every transaction is
// sent, even one with no row for the filter, so the receiver's position keeps moving.
type binlogStream struct {
	e      *Engine
	filter *binlogdatapb.Filter
	caller caller
	vs     vschemaView
	send   func([]*binlogdatapb.VEvent) error

	pos       repl.Position
	eventGTID string
	// plans by table id: a nil entry is a table the stream does not send.
	plans map[uint64]*tablePlan
	// schemas caches table definitions; a DDL on a table drops its entry.
	schemas map[string]*tabletserver.TableSchema

	buffered []*binlogdatapb.VEvent
	size     int
}

// tablePlan is a plan bound to a TABLE_MAP's column layout, or a sidecar table.
type tablePlan struct {
	*plan
	tm      tableMapInfo
	journal bool // _vt.resharding_journal
	version bool // _vt.schema_version
}

// run streams until ctx ends, the receiver fails, or the binlog breaks.
func (s *binlogStream) run(ctx context.Context, bc *binlogConn) error {
	for {
		ectx, cancel := context.WithTimeout(ctx, s.e.cfg.HeartbeatInterval)
		ev, err := bc.streamer.GetEvent(ectx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := s.emit(s.newEvent(binlogdatapb.VEventType_HEARTBEAT, nil)); err != nil {
				return err
			}
			continue
		default:
			return binlogError(err, s.pos)
		}
		vevents, err := s.event(ctx, ev)
		if err != nil {
			return err
		}
		for _, ve := range vevents {
			if err := s.emit(ve); err != nil {
				return err
			}
		}
	}
}

// emit buffers and sends as Vitess's vstreamer does: GTID, BEGIN, FIELD and JOURNAL wait for
// what follows; COMMIT, DDL, OTHER, HEARTBEAT and VERSION go out at once with everything
// buffered; ROW events are sent in packets of about PacketSize bytes.
func (s *binlogStream) emit(ve *binlogdatapb.VEvent) error {
	switch ve.Type {
	case binlogdatapb.VEventType_GTID, binlogdatapb.VEventType_BEGIN, binlogdatapb.VEventType_FIELD,
		binlogdatapb.VEventType_JOURNAL:
		s.buffered = append(s.buffered, ve)
		return nil
	case binlogdatapb.VEventType_ROW, binlogdatapb.VEventType_INSERT, binlogdatapb.VEventType_UPDATE,
		binlogdatapb.VEventType_DELETE, binlogdatapb.VEventType_REPLACE:
		n := eventSize(ve)
		if s.size+n > s.e.cfg.PacketSize && len(s.buffered) > 0 {
			if err := s.flush(); err != nil {
				return err
			}
		}
		s.buffered = append(s.buffered, ve)
		s.size += n
		return nil
	}
	s.buffered = append(s.buffered, ve)
	return s.flush()
}

func (s *binlogStream) flush() error {
	evs := s.buffered
	s.buffered, s.size = nil, 0
	s.e.metrics.events.Add(float64(len(evs)))
	return s.send(evs)
}

func eventSize(ve *binlogdatapb.VEvent) int {
	n := len(ve.Dml)
	for _, rc := range ve.GetRowEvent().GetRowChanges() {
		n += len(rc.GetBefore().GetValues()) + len(rc.GetAfter().GetValues())
	}
	return n
}

// event converts one binlog event.
func (s *binlogStream) event(ctx context.Context, ev *replication.BinlogEvent) ([]*binlogdatapb.VEvent, error) {
	switch e := ev.Event.(type) {
	case *replication.MariadbGTIDEvent:
		g := fmt.Sprintf("%d-%d-%d", e.GTID.DomainID, e.GTID.ServerID, e.GTID.SequenceNumber)
		if err := s.advance(repl.PositionMariaDB, g); err != nil {
			return nil, err
		}
		if e.Flags&mariaGTIDStandalone == 0 {
			return []*binlogdatapb.VEvent{s.newEvent(binlogdatapb.VEventType_BEGIN, ev)}, nil
		}
	case *replication.GTIDEvent:
		g := fmt.Sprintf("%s:%d", formatUUID(e.SID), e.GNO)
		if err := s.advance(repl.PositionMySQL56, g); err != nil {
			return nil, err
		}
		be := s.newEvent(binlogdatapb.VEventType_BEGIN, ev)
		be.CommitParent, be.SequenceNumber = e.LastCommitted, e.SequenceNumber
		return []*binlogdatapb.VEvent{be}, nil
	case *replication.XIDEvent:
		return s.commit(ev), nil
	case *replication.QueryEvent:
		return s.query(ctx, ev, e)
	case *replication.TableMapEvent:
		return s.tableMap(ctx, ev, e)
	case *replication.RowsEvent:
		return s.rows(ev, e)
	case *replication.TransactionPayloadEvent:
		var out []*binlogdatapb.VEvent
		for _, inner := range e.Events {
			evs, err := s.event(ctx, inner)
			if err != nil {
				return nil, err
			}
			out = append(out, evs...)
		}
		return out, nil
	}
	// Rotate, format description, GTID lists, checkpoints, annotations, heartbeats.
	return nil, nil
}

// advance adds one transaction's GTID to the stream's position.
func (s *binlogStream) advance(flavor repl.PositionFlavor, gtid string) error {
	g, err := repl.ParseGTIDSet(flavor, gtid)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "binlog GTID %s", gtid)
	}
	if s.pos, err = s.pos.Union(g); err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "binlog GTID %s after %s", gtid, s.pos)
	}
	s.eventGTID = gtid
	return nil
}

func (s *binlogStream) gtidEvent(ev *replication.BinlogEvent) *binlogdatapb.VEvent {
	ve := s.newEvent(binlogdatapb.VEventType_GTID, ev)
	ve.Gtid = s.pos.String()
	return ve
}

func (s *binlogStream) commit(ev *replication.BinlogEvent) []*binlogdatapb.VEvent {
	return []*binlogdatapb.VEvent{s.gtidEvent(ev), s.newEvent(binlogdatapb.VEventType_COMMIT, ev)}
}

func (s *binlogStream) query(ctx context.Context, ev *replication.BinlogEvent, q *replication.QueryEvent) ([]*binlogdatapb.VEvent, error) {
	sql, db := string(q.Query), string(q.Schema)
	ours := db == "" || db == s.e.cfg.DBName
	switch classify(sql) {
	case stmtBegin:
		return []*binlogdatapb.VEvent{s.newEvent(binlogdatapb.VEventType_BEGIN, ev)}, nil
	case stmtCommit:
		return s.commit(ev), nil
	case stmtSavepoint:
		return nil, nil
	case stmtInsert, stmtUpdate, stmtDelete, stmtReplace:
		// Statement-based DML: only from sources that log statements (not tablets).
		if !ours {
			return nil, nil
		}
		t := map[statementKind]binlogdatapb.VEventType{stmtInsert: binlogdatapb.VEventType_INSERT,
			stmtUpdate: binlogdatapb.VEventType_UPDATE, stmtDelete: binlogdatapb.VEventType_DELETE,
			stmtReplace: binlogdatapb.VEventType_REPLACE}[classify(sql)]
		ve := s.newEvent(t, ev)
		ve.Dml = sql
		return []*binlogdatapb.VEvent{ve}, nil
	case stmtDDL:
		tables, parsed := ddlTables(sql, db, s.e.cfg.DBName)
		for _, t := range tables {
			s.forget(t)
		}
		if !parsed {
			s.forgetAll()
		}
		if ours && s.ddlMatches(tables, parsed) {
			ve := s.newEvent(binlogdatapb.VEventType_DDL, ev)
			ve.Statement = sql
			return []*binlogdatapb.VEvent{s.gtidEvent(ev), ve}, nil
		}
	}
	// Database DDL, privileges, SET, FLUSH, ANALYZE, other databases' DDL …
	return []*binlogdatapb.VEvent{s.gtidEvent(ev), s.newEvent(binlogdatapb.VEventType_OTHER, ev)}, nil
}

// ddlMatches: an unparsable DDL is sent (the receiver decides), a parsed one when a rule
// covers one of its tables.
func (s *binlogStream) ddlMatches(tables []string, parsed bool) bool {
	if !parsed {
		return true
	}
	for _, t := range tables {
		if r, _ := matchRule(t, s.filter); r != nil {
			return true
		}
	}
	return false
}

// ddlTables lists the tables of this database a DDL names (renames: both sides). parsed is
// false when the statement could not be read.
func ddlTables(sql, defaultDB, ourDB string) (tables []string, parsed bool) {
	stmt, err := parser.New().ParseOneStmt(sql, "", "")
	if err != nil {
		return nil, false
	}
	add := func(tn *ast.TableName) {
		if tn == nil {
			return
		}
		db := tn.Schema.O
		if db == "" {
			db = defaultDB
		}
		if db == "" || db == ourDB {
			tables = append(tables, tn.Name.O)
		}
	}
	switch st := stmt.(type) {
	case *ast.CreateTableStmt:
		add(st.Table)
	case *ast.AlterTableStmt:
		add(st.Table)
		for _, spec := range st.Specs {
			add(spec.NewTable)
		}
	case *ast.DropTableStmt:
		for _, t := range st.Tables {
			add(t)
		}
	case *ast.RenameTableStmt:
		for _, t2t := range st.TableToTables {
			add(t2t.OldTable)
			add(t2t.NewTable)
		}
	case *ast.TruncateTableStmt:
		add(st.Table)
	case *ast.CreateIndexStmt:
		add(st.Table)
	case *ast.DropIndexStmt:
		add(st.Table)
	case *ast.CreateViewStmt:
		add(st.ViewName)
	default:
		return nil, false
	}
	return tables, true
}

// forget drops what the stream knows of a table's definition: its next TABLE_MAP reads the
// live schema again and sends a new FIELD event.
func (s *binlogStream) forget(table string) {
	delete(s.schemas, table)
	for id, tp := range s.plans {
		if tp != nil && tp.plan != nil && strings.EqualFold(tp.table, table) {
			delete(s.plans, id)
		}
	}
}

func (s *binlogStream) forgetAll() {
	s.schemas = map[string]*tabletserver.TableSchema{}
	for id, tp := range s.plans {
		if tp == nil || tp.plan != nil {
			delete(s.plans, id)
		}
	}
}

func (s *binlogStream) tableMap(ctx context.Context, ev *replication.BinlogEvent, tm *replication.TableMapEvent) ([]*binlogdatapb.VEvent, error) {
	if _, known := s.plans[tm.TableID]; known {
		return nil, nil // the plan is cached until a DDL drops it (table ids change with the definition)
	}
	db, name := string(tm.Schema), string(tm.Table)
	info := tableMapInfo{types: tm.ColumnType, meta: tm.ColumnMeta}
	if db == s.e.sidecarDB() && db != s.e.cfg.DBName {
		switch name {
		case "resharding_journal":
			s.plans[tm.TableID] = &tablePlan{tm: info, journal: true}
		case "schema_version":
			s.plans[tm.TableID] = &tablePlan{tm: info, version: true}
		default:
			s.plans[tm.TableID] = nil
		}
		return nil, nil
	}
	if db != s.e.cfg.DBName {
		s.plans[tm.TableID] = nil
		return nil, nil
	}
	if r, err := matchRule(name, s.filter); err != nil || r == nil {
		s.plans[tm.TableID] = nil
		return nil, err
	}
	if err := s.e.src.AuthorizeRead(s.caller.name, s.caller.groups, name); err != nil {
		return nil, err
	}
	ts, err := s.schema(ctx, name, info)
	if err != nil {
		return nil, err
	}
	p, err := buildPlan(ts, s.filter, s.vs)
	if err != nil {
		return nil, err
	}
	if p == nil {
		s.plans[tm.TableID] = nil
		return nil, nil
	}
	s.plans[tm.TableID] = &tablePlan{plan: p, tm: info}
	fe := s.newEvent(binlogdatapb.VEventType_FIELD, ev)
	fe.FieldEvent = &binlogdatapb.FieldEvent{TableName: name, Fields: p.sentFields(), Keyspace: s.e.cfg.Keyspace,
		Shard: s.e.cfg.Shard, EnumSetStringValues: len(p.enums) > 0}
	return []*binlogdatapb.VEvent{fe}, nil
}

// schema returns the definition of table for a TABLE_MAP of the given column types. The
// stream may be behind the live schema: as in Vitess, columns added since (at the end) are
// left out — the event's columns are the first ones — and a definition that no longer
// matches the event's column types stops the stream rather than send rows under the wrong
// names. A DDL in the stream drops the cached definition, so the next TABLE_MAP reads it
// again.
func (s *binlogStream) schema(ctx context.Context, table string, tm tableMapInfo) (*tabletserver.TableSchema, error) {
	if ts := s.schemas[table]; ts != nil && matchesBinlog(ts, tm) {
		return prefix(ts, len(tm.types)), nil
	}
	ts, err := s.e.src.TableSchema(ctx, table)
	if err != nil {
		return nil, err
	}
	if !matchesBinlog(ts, tm) {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"cannot determine table columns for %s: the binlog event's %d columns do not match the table's %d columns now (its definition changed after this position)",
			table, len(tm.types), len(ts.Fields))
	}
	s.schemas[table] = ts
	return prefix(ts, len(tm.types)), nil
}

// matchesBinlog: the table has at least the event's columns, of compatible types.
func matchesBinlog(ts *tabletserver.TableSchema, tm tableMapInfo) bool {
	if len(ts.Fields) < len(tm.types) {
		return false
	}
	for i, bt := range tm.types {
		if !compatibleType(bt, tm.meta[i], ts.Fields[i].Type) {
			return false
		}
	}
	return true
}

// prefix is ts limited to its first n columns.
func prefix(ts *tabletserver.TableSchema, n int) *tabletserver.TableSchema {
	if len(ts.Fields) == n {
		return ts
	}
	out := &tabletserver.TableSchema{Name: ts.Name, Fields: ts.Fields[:n]}
	if len(ts.Charsets) >= n {
		out.Charsets = ts.Charsets[:n]
	}
	for _, k := range ts.PKColumns {
		if k < n {
			out.PKColumns = append(out.PKColumns, k)
		}
	}
	return out
}

func (s *binlogStream) rows(ev *replication.BinlogEvent, re *replication.RowsEvent) ([]*binlogdatapb.VEvent, error) {
	tp := s.plans[re.TableID]
	if tp == nil {
		return nil, nil
	}
	if tp.journal {
		return s.journal(ev, re)
	}
	if tp.version {
		return []*binlogdatapb.VEvent{s.newEvent(binlogdatapb.VEventType_VERSION, ev)}, nil
	}
	for _, skipped := range re.SkippedColumns {
		if len(skipped) > 0 {
			return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
				"partial row image for table %s: the source must run with binlog_row_image=FULL", tp.table)
		}
	}
	var changes []*binlogdatapb.RowChange
	var err error
	switch re.Type() {
	case replication.EnumRowsEventTypeInsert:
		changes, err = s.images(tp, re.Rows, false, true)
	case replication.EnumRowsEventTypeDelete:
		changes, err = s.images(tp, re.Rows, true, false)
	case replication.EnumRowsEventTypeUpdate:
		changes, err = s.images(tp, re.Rows, true, true)
	default:
		return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "unknown rows event type %v for table %s", ev.Header.EventType, tp.table)
	}
	if err != nil || len(changes) == 0 {
		return nil, err
	}
	ve := s.newEvent(binlogdatapb.VEventType_ROW, ev)
	ve.RowEvent = &binlogdatapb.RowEvent{TableName: tp.table, RowChanges: changes, Keyspace: s.e.cfg.Keyspace,
		Shard: s.e.cfg.Shard, Flags: uint32(re.Flags)}
	return []*binlogdatapb.VEvent{ve}, nil
}

// images builds the row changes. Updates come as before/after pairs. When a key range
// decides, each image goes only where it belongs (an update moving a row out of the range
// becomes a delete, into it an insert); otherwise both images go when either passes.
func (s *binlogStream) images(tp *tablePlan, rows [][]interface{}, before, after bool) ([]*binlogdatapb.RowChange, error) {
	step := 1
	if before && after {
		step = 2
	}
	want := [2]bool{before, after}
	out := make([]*binlogdatapb.RowChange, 0, len(rows)/step)
	for i := 0; i+step <= len(rows); i += step {
		var imgs [2]*querypb.Row
		var oks [2]bool
		byVindex, n := false, 0
		for k := range want {
			if !want[k] {
				continue
			}
			vals, nulls, err := rowValues(tp.plan, tp.tm, rows[i+n])
			n++
			if err != nil {
				return nil, err
			}
			ok, bv, err := tp.keep(vals, nulls)
			if err != nil {
				return nil, err
			}
			oks[k], byVindex = ok, byVindex || bv
			if imgs[k], err = tp.project(vals, nulls); err != nil {
				return nil, err
			}
		}
		if !oks[0] && !oks[1] {
			continue
		}
		if !byVindex {
			oks = want
		}
		rc := &binlogdatapb.RowChange{}
		if oks[0] {
			rc.Before = imgs[0]
		}
		if oks[1] {
			rc.After = imgs[1]
		}
		out = append(out, rc)
	}
	return out, nil
}

// journal turns inserted _vt.resharding_journal rows of this database into JOURNAL events.
func (s *binlogStream) journal(ev *replication.BinlogEvent, re *replication.RowsEvent) ([]*binlogdatapb.VEvent, error) {
	if re.Type() != replication.EnumRowsEventTypeInsert && re.Type() != replication.EnumRowsEventTypeUpdate {
		return nil, nil
	}
	var out []*binlogdatapb.VEvent
	step := 1
	if re.Type() == replication.EnumRowsEventTypeUpdate {
		step = 2
	}
	for i := step - 1; i < len(re.Rows); i += step {
		row := re.Rows[i]
		// Columns: id, db_name, val (the sidecar's resharding_journal).
		if len(row) < 3 || fmt.Sprint(asText(row[1])) != s.e.cfg.DBName {
			continue
		}
		j := &binlogdatapb.Journal{}
		if err := prototext.Unmarshal([]byte(asText(row[2])), j); err != nil {
			return nil, rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "reading a _vt.resharding_journal row")
		}
		je := s.newEvent(binlogdatapb.VEventType_JOURNAL, ev)
		je.Journal = j
		out = append(out, je)
	}
	return out, nil
}

func asText(v interface{}) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// formatUUID prints a 16-byte server UUID in MySQL's form.
func formatUUID(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
