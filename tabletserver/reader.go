package tabletserver

import (
	"context"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// Snapshot readers: the VReplication source (VStreamRows, VStreamTables, VStreamResults) and
// VDiff read tables through the executor like any statement — the table ACL on every table a
// statement touches, a pooled connection, /livequeryz, the kill when the caller goes away —
// but inside a consistent snapshot whose binlog position they learn, so a target can apply
// the binlog from exactly there without losing or repeating a row.
//
// How the position is read, by flavor (checked on MariaDB 10.11 in the integration tests):
//   - MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT freezes the binlog coordinate of the
//     snapshot in the session status Binlog_snapshot_file / Binlog_snapshot_position (group
//     commit keeps it consistent with InnoDB's view); BINLOG_GTID_POS() turns it into the GTID
//     position. No lock is taken. (@@gtid_binlog_pos inside the snapshot is NOT it: that is the
//     server's current position, which moves on.)
//   - MySQL: no such status exists. As vttablet does, the position is read on a second
//     connection holding LOCK TABLES … READ on the tables (FLUSH TABLES WITH READ LOCK for all
//     tables) while the snapshot starts, then the lock is released: no write to those tables
//     can fall between the position and the snapshot.
//
// Readers are not counted as in-flight requests (a copy may stream for hours; a shutdown must
// not wait for it) and a state transition does not kill them: they only read. They end when
// their caller goes away, or with the executor's pools at Close.

// ReadRequest says who reads and what the snapshot must be consistent for.
type ReadRequest struct {
	Target       *querypb.Target
	Caller       string   // the table ACL user
	CallerGroups []string // the table ACL groups
	// Tables are the tables the snapshot is read for. On MySQL they are locked briefly
	// while the snapshot starts (all tables when empty); MariaDB takes no lock.
	Tables []string
}

// Snapshot is an open consistent-snapshot, read-only transaction on a connection of the
// snapshot reader pool (the --db-filtered-user). It is used by one goroutine at a time.
type Snapshot struct {
	e      *executor
	pc     *pooled
	caller string
	groups []string
	pos    string
	broken bool // a statement was killed or the connection lost: discard, never reuse
}

// AdmitStream admits a streaming reader (VStream and the snapshot readers): the target must
// be this tablet's and the tablet must not be shutting down. Unlike StartRequest it does not
// require a serving state — a Reshard source whose query service is disabled still streams,
// as in vttablet — and it counts nothing in flight.
func (s *Server) AdmitStream(target *querypb.Target) error {
	a := s.adm.Load()
	if a.shuttingDown {
		return rpcerr.New(vtrpcpb.Code_CLUSTER_EVENT, rpcerr.ShuttingDown)
	}
	return s.verifyTarget(a, target)
}

// AuthorizeRead checks the table ACL's reader role on tables (of the tablet's database) for
// caller, as every statement is checked: the binlog stream (VStream) has no statement to plan.
func (s *Server) AuthorizeRead(caller string, groups []string, tables ...string) error {
	return s.exec.acl.checkRead(tables, caller, groups)
}

// OpenSnapshot admits a snapshot reader (AdmitStream) and opens its snapshot. The caller must
// Close it.
func (s *Server) OpenSnapshot(ctx context.Context, req ReadRequest) (*Snapshot, error) {
	if err := s.AdmitStream(req.Target); err != nil {
		return nil, err
	}
	return s.exec.openSnapshot(ctx, req)
}

func (e *executor) openSnapshot(ctx context.Context, req ReadRequest) (*Snapshot, error) {
	pc, err := e.readers.Get(ctx, nil)
	if err != nil {
		return nil, poolError(err, e.readers)
	}
	sn := &Snapshot{e: e, pc: pc, caller: req.Caller, groups: req.CallerGroups}
	flavor, _, err := replication.DetectFlavor(pc.Conn().ServerVersion())
	if err == nil {
		if flavor.IsMariaDB() {
			sn.pos, err = sn.startMariaDB(ctx)
		} else {
			sn.pos, err = e.startMySQL(ctx, sn, req.Tables)
		}
	}
	if err != nil {
		sn.broken = true
		sn.Close()
		return nil, err
	}
	return sn, nil
}

// snapshotSetup runs on the reader's connection before the snapshot starts, so rows read the
// way the binlog carries them: TIMESTAMP values in UTC, and text as the column's own bytes
// (character_set_results binary: no conversion to the connection's charset; the column's
// collation travels in the field's charset, see TableSchema).
var snapshotSetup = []string{
	"set names binary",
	"set @@session.time_zone = '+00:00'",
	"set transaction isolation level repeatable read",
	"start transaction with consistent snapshot, read only",
}

func (sn *Snapshot) startMariaDB(ctx context.Context) (string, error) {
	for _, q := range snapshotSetup {
		if _, err := sn.exec(ctx, q); err != nil {
			return "", err
		}
	}
	const q = "select binlog_gtid_pos(" +
		"(select variable_value from information_schema.session_status where variable_name = 'binlog_snapshot_file'), " +
		"(select variable_value from information_schema.session_status where variable_name = 'binlog_snapshot_position'))"
	res, err := sn.exec(ctx, q)
	if err != nil {
		return "", err
	}
	if len(res.Rows) != 1 || res.Rows[0].Lengths[0] < 0 {
		return "", rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"the snapshot's binlog position is unknown (is the binary log enabled?): %s gave no GTID position", q)
	}
	return encodePosition(replication.PositionMariaDB, rowStrings(res.Rows[0])[0])
}

// startMySQL reads the position under a brief read lock of the tables, taken on a DBA
// connection (not from the reader pool: a reader waiting for a second reader connection
// could deadlock the pool).
func (e *executor) startMySQL(ctx context.Context, sn *Snapshot, tables []string) (string, error) {
	lc, err := e.dba.Get(ctx, nil)
	if err != nil {
		return "", poolError(err, e.dba)
	}
	lock := "flush tables with read lock"
	if len(tables) > 0 {
		quoted := make([]string, len(tables))
		for i, t := range tables {
			quoted[i] = quoteIdent(t) + " read"
		}
		lock = "lock tables " + strings.Join(quoted, ", ")
	}
	locked := &Snapshot{e: e, pc: lc, caller: sn.caller}
	pos, err := func() (string, error) {
		if _, err := locked.exec(ctx, lock); err != nil {
			return "", err
		}
		res, err := locked.exec(ctx, "select @@global.gtid_executed")
		if err != nil {
			return "", err
		}
		for _, q := range snapshotSetup {
			if _, err := sn.exec(ctx, q); err != nil {
				return "", err
			}
		}
		return encodePosition(replication.PositionMySQL56, strings.ReplaceAll(rowStrings(res.Rows[0])[0], "\n", ""))
	}()
	if _, uerr := locked.exec(ctx, "unlock tables"); uerr != nil || locked.broken || lc.Conn().IsClosed() {
		lc.Discard() // a lock may still be held: never hand this connection out again
	} else {
		lc.Recycle()
	}
	return pos, err
}

func encodePosition(flavor replication.PositionFlavor, set string) (string, error) {
	p, err := replication.ParseGTIDSet(flavor, strings.TrimSpace(set))
	if err != nil {
		return "", rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "reading the snapshot's position")
	}
	return p.String(), nil
}

// Position is the binlog position the snapshot sees (Vitess encoding, e.g. MariaDB/0-101-42):
// every transaction up to it is visible, none after it.
func (sn *Snapshot) Position() string { return sn.pos }

// Stream runs a SELECT in the snapshot and sends its result in batches (fields first, with
// full metadata). The caller must be allowed to read every table the statement touches.
//
// bufferSize is the size in bytes of the row batches (0: the query service's stream buffer
// size). A batch aliases the connection's buffer: it is valid only until send returns.
func (sn *Snapshot) Stream(ctx context.Context, sql string, bufferSize int, send func(*querypb.QueryResult) error) error {
	r, err := sn.prepare(sql)
	if err != nil {
		return err
	}
	r.bufferSize = bufferSize
	killed, err := sn.e.stream(ctx, sn.pc.Conn(), r, send)
	if killed {
		sn.broken = true
	}
	return err
}

// Execute runs a SELECT in the snapshot and returns the whole result (at most maxRows
// rows; 0: unlimited), checked like Stream.
func (sn *Snapshot) Execute(ctx context.Context, sql string, maxRows int) (*querypb.QueryResult, error) {
	r, err := sn.prepare(sql)
	if err != nil {
		return nil, err
	}
	res, killed, err := sn.e.run(ctx, sn.pc.Conn(), r, maxRows)
	if killed {
		sn.broken = true
	}
	return res, err
}

func (sn *Snapshot) prepare(sql string) (*request, error) {
	p, err := sn.e.getPlan(sql, false)
	if err != nil {
		return nil, err
	}
	switch p.Type {
	case plan.Select, plan.SelectNoLimit, plan.SelectImpossible, plan.SelectStream:
	default:
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "a snapshot reader runs only SELECT statements, not %s: %q", p.Type, truncateSQL(sql))
	}
	if err := sn.e.acl.check(p, sn.caller, sn.groups); err != nil {
		return nil, err
	}
	return &request{Call: &Call{Caller: sn.caller, CallerGroups: sn.groups, SQL: sql}, plan: p, final: sql,
		fields: mysqlconn.FieldsAll, reader: true}, nil
}

// exec runs one of tabletd's own statements on the snapshot's connection.
func (sn *Snapshot) exec(ctx context.Context, sql string) (*querypb.QueryResult, error) {
	r := internalRequest(sn.caller, sql)
	r.reader = true
	res, killed, err := sn.e.run(ctx, sn.pc.Conn(), r, 0)
	if killed {
		sn.broken = true
	}
	return res, err
}

// Close ends the snapshot's transaction and returns the connection to the pool (or closes it
// when its state is unknown). Idempotent.
func (sn *Snapshot) Close() {
	if sn.pc == nil {
		return
	}
	pc := sn.pc
	if !sn.broken && !pc.Conn().IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), sn.e.cfg.KillTimeout)
		if _, err := sn.exec(ctx, "rollback"); err != nil {
			sn.e.log.Debug("ending a snapshot", zap.Error(err))
			sn.broken = true
		}
		cancel()
	}
	sn.pc = nil
	if sn.broken || pc.Conn().IsClosed() {
		pc.Discard()
		return
	}
	pc.Recycle()
}

// TableSchema is a table's columns and key as the VReplication source streams them.
type TableSchema struct {
	Name string
	// Fields carry the full metadata of a result column (select * … where 1 != 1), with
	// ColumnType (e.g. "enum('a','b')", "int(10) unsigned") and Charset (the column's
	// collation id; 63 for non-text columns) from information_schema.columns.
	Fields []*querypb.Field
	// PKColumns are the indexes into Fields of the primary key, in key order; empty when
	// the table has none.
	PKColumns []int
	// Charsets are the columns' character set names ("" for non-text columns), for
	// literals compared with the column (_utf8mb4 X'…').
	Charsets []string
}

// TableSchema reads table's live definition (a table of the tablet's database) on a snapshot
// reader connection. A table that does not exist is an error with MySQL's errno 1146.
func (s *Server) TableSchema(ctx context.Context, table string) (*TableSchema, error) {
	var ts *TableSchema
	err := s.exec.withReader(ctx, func(sn *Snapshot) error {
		var err error
		ts, err = sn.tableSchema(ctx, table)
		return err
	})
	return ts, err
}

func (sn *Snapshot) tableSchema(ctx context.Context, table string) (*TableSchema, error) {
	r := internalRequest("", "select * from "+quoteIdent(table)+" where 1 != 1")
	r.fields, r.reader = mysqlconn.FieldsAll, true
	res, killed, err := sn.e.run(ctx, sn.pc.Conn(), r, 0)
	if killed {
		sn.broken = true
	}
	if err != nil {
		return nil, err
	}
	ts := &TableSchema{Name: table, Fields: res.Fields, Charsets: make([]string, len(res.Fields))}
	q := "select c.column_name, c.column_type, coalesce(co.id, 63), coalesce(c.character_set_name, '') from information_schema.columns c " +
		"left join information_schema.collations co on co.collation_name = c.collation_name " +
		"where c.table_schema = database() and c.table_name = '" + escapeString(table) + "' order by c.ordinal_position"
	cols, err := sn.exec(ctx, q)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]int, len(ts.Fields))
	for i, f := range ts.Fields {
		byName[strings.ToLower(f.Name)] = i
	}
	for _, row := range cols.Rows {
		v := rowStrings(row)
		i, ok := byName[strings.ToLower(v[0])]
		if !ok {
			continue
		}
		f := ts.Fields[i]
		f.ColumnType, ts.Charsets[i] = v[1], v[3]
		if id, err := strconv.ParseUint(v[2], 10, 32); err == nil {
			f.Charset = uint32(id)
		}
	}
	pk, err := sn.exec(ctx, "select column_name from information_schema.statistics where table_schema = database() "+
		"and table_name = '"+escapeString(table)+"' and index_name = 'PRIMARY' order by seq_in_index")
	if err != nil {
		return nil, err
	}
	for _, row := range pk.Rows {
		if i, ok := byName[strings.ToLower(rowStrings(row)[0])]; ok {
			ts.PKColumns = append(ts.PKColumns, i)
		}
	}
	return ts, nil
}

// withReader runs f on a snapshot reader connection outside any snapshot (metadata reads).
func (e *executor) withReader(ctx context.Context, f func(sn *Snapshot) error) error {
	pc, err := e.readers.Get(ctx, nil)
	if err != nil {
		return poolError(err, e.readers)
	}
	sn := &Snapshot{e: e, pc: pc}
	err = f(sn)
	sn.pc = nil
	if sn.broken || pc.Conn().IsClosed() {
		pc.Discard()
	} else {
		pc.Recycle()
	}
	return err
}

// BinlogPosition is the server's current binlog position (Vitess encoding): everything
// committed so far, for a VStream from "current".
func (s *Server) BinlogPosition(ctx context.Context) (string, error) {
	var pos string
	err := s.exec.withReader(ctx, func(sn *Snapshot) error {
		flavor, _, err := replication.DetectFlavor(sn.pc.Conn().ServerVersion())
		if err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_FAILED_PRECONDITION, err, "reading the binlog position")
		}
		q, pf := "select @@global.gtid_executed", replication.PositionMySQL56
		if flavor.IsMariaDB() {
			q, pf = "select @@global.gtid_binlog_pos", replication.PositionMariaDB
		}
		res, err := sn.exec(ctx, q)
		if err != nil {
			return err
		}
		pos, err = encodePosition(pf, strings.ReplaceAll(rowStrings(res.Rows[0])[0], "\n", ""))
		return err
	})
	return pos, err
}

// Tables lists the base tables of the tablet's database (not views), sorted.
func (s *Server) Tables(ctx context.Context) ([]string, error) {
	var out []string
	err := s.exec.withReader(ctx, func(sn *Snapshot) error {
		res, err := sn.exec(ctx, "select table_name from information_schema.tables where table_schema = database() "+
			"and table_type = 'BASE TABLE' order by table_name")
		if err != nil {
			return err
		}
		for _, row := range res.Rows {
			out = append(out, rowStrings(row)[0])
		}
		return nil
	})
	return out, err
}
