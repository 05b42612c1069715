package vstreamer

import (
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// StreamRows serves VStreamRows: the rows of a filter's select from a consistent snapshot,
// in key order after req.lastpk. The first response carries the fields, the key fields and
// the snapshot's position; then come batches of rows, each with the key of the last row read
// (which need not be the last row sent: filtered rows move the key on too).
func (e *Engine) StreamRows(ctx context.Context, req *binlogdatapb.VStreamRowsRequest, send func(*binlogdatapb.VStreamRowsResponse) error) (err error) {
	if err := e.src.AdmitStream(req.GetTarget()); err != nil {
		return err
	}
	ctx, done, err := e.begin(ctx, "VStreamRows")
	if err != nil {
		return err
	}
	defer func() { err = done(err) }()
	c := e.callerOf(req.EffectiveCallerId, req.ImmediateCallerId)
	_, table, err := parseSelect(req.Query)
	if err != nil {
		return err
	}
	if err := e.src.AuthorizeRead(c.name, c.groups, table); err != nil {
		return err
	}
	ts, err := e.src.TableSchema(ctx, table)
	if err != nil {
		return err
	}
	p, err := buildSelectPlan(ts, req.Query, e.vschemaView(ctx))
	if err != nil {
		return err
	}
	lastpk, err := lastPKValues(req.Lastpk, p)
	if err != nil {
		return err
	}
	sn, err := e.src.OpenSnapshot(ctx, tabletserver.ReadRequest{Target: req.Target, Caller: c.name, CallerGroups: c.groups, Tables: []string{table}})
	if err != nil {
		return err
	}
	defer sn.Close()
	hs := e.heartbeats(ctx, send)
	defer hs.stop()
	return e.scan(ctx, sn, p, ts, lastpk, hs.send)
}

// StreamTables serves VStreamTables (atomic copy): every base table, one after the other,
// from one snapshot of the whole database.
func (e *Engine) StreamTables(ctx context.Context, req *binlogdatapb.VStreamTablesRequest, send func(*binlogdatapb.VStreamTablesResponse) error) (err error) {
	if err := e.src.AdmitStream(req.GetTarget()); err != nil {
		return err
	}
	ctx, done, err := e.begin(ctx, "VStreamTables")
	if err != nil {
		return err
	}
	defer func() { err = done(err) }()
	c := e.callerOf(req.EffectiveCallerId, req.ImmediateCallerId)
	tables, err := e.src.Tables(ctx)
	if err != nil {
		return err
	}
	if only := req.GetOptions().GetTablesToCopy(); len(only) > 0 {
		tables = intersect(tables, only)
	}
	if err := e.src.AuthorizeRead(c.name, c.groups, tables...); err != nil {
		return err
	}
	sn, err := e.src.OpenSnapshot(ctx, tabletserver.ReadRequest{Target: req.Target, Caller: c.name, CallerGroups: c.groups})
	if err != nil {
		return err
	}
	defer sn.Close()
	vs := e.vschemaView(ctx)
	var mu sync.Mutex
	sendT := func(r *binlogdatapb.VStreamTablesResponse) error { mu.Lock(); defer mu.Unlock(); return send(r) }
	for _, t := range tables {
		ts, err := e.src.TableSchema(ctx, t)
		if err != nil {
			return err
		}
		p, err := buildSelectPlan(ts, "select * from "+quoteIdent(t), vs)
		if err != nil {
			return err
		}
		err = e.scan(ctx, sn, p, ts, nil, func(r *binlogdatapb.VStreamRowsResponse) error {
			return sendT(&binlogdatapb.VStreamTablesResponse{TableName: t, Fields: r.Fields, Pkfields: r.Pkfields,
				Gtid: sn.Position(), Rows: r.Rows, Lastpk: r.Lastpk})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// StreamResults serves VStreamResults: one select's whole result from a snapshot, fields and
// position first.
func (e *Engine) StreamResults(ctx context.Context, req *binlogdatapb.VStreamResultsRequest, send func(*binlogdatapb.VStreamResultsResponse) error) (err error) {
	if err := e.src.AdmitStream(req.GetTarget()); err != nil {
		return err
	}
	ctx, done, err := e.begin(ctx, "VStreamResults")
	if err != nil {
		return err
	}
	defer func() { err = done(err) }()
	c := e.callerOf(req.EffectiveCallerId, req.ImmediateCallerId)
	_, table, err := parseSelect(req.Query)
	if err != nil {
		return err
	}
	sn, err := e.src.OpenSnapshot(ctx, tabletserver.ReadRequest{Target: req.Target, Caller: c.name, CallerGroups: c.groups, Tables: []string{table}})
	if err != nil {
		return err
	}
	defer sn.Close()
	first := true
	return sn.Stream(ctx, req.Query, e.cfg.PacketSize, func(qr *querypb.QueryResult) error {
		if first {
			first = false
			return send(&binlogdatapb.VStreamResultsResponse{Fields: qr.Fields, Gtid: sn.Position()})
		}
		e.metrics.rows.Add(float64(len(qr.Rows)))
		return send(&binlogdatapb.VStreamResultsResponse{Rows: qr.Rows})
	})
}

func intersect(all, only []string) []string {
	keep := map[string]bool{}
	for _, t := range only {
		keep[t] = true
	}
	var out []string
	for _, t := range all {
		if keep[t] {
			out = append(out, t)
		}
	}
	return out
}

// heartbeatSender serializes a stream's responses with the heartbeats sent while a scan is
// slow (a gRPC stream takes one Send at a time).
type heartbeatSender struct {
	mu   sync.Mutex
	out  func(*binlogdatapb.VStreamRowsResponse) error
	stop func()
}

func (h *heartbeatSender) send(r *binlogdatapb.VStreamRowsResponse) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out(r)
}

// heartbeats starts the heartbeat goroutine of a VStreamRows; stop ends it and waits.
func (e *Engine) heartbeats(ctx context.Context, out func(*binlogdatapb.VStreamRowsResponse) error) *heartbeatSender {
	h := &heartbeatSender{out: out}
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(e.cfg.RowHeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				if h.send(&binlogdatapb.VStreamRowsResponse{Heartbeat: true}) != nil {
					return
				}
			}
		}
	}()
	h.stop = func() { cancel(); wg.Wait() }
	return h
}

// scan streams one table's rows in the snapshot: the first response, then the batches.
func (e *Engine) scan(ctx context.Context, sn *tabletserver.Snapshot, p *plan, ts *tabletserver.TableSchema,
	lastpk [][]byte, send func(*binlogdatapb.VStreamRowsResponse) error) error {
	key := p.pk
	if len(key) == 0 {
		key = make([]int, len(p.fields)) // no primary key: order by every column, as Vitess does
		for i := range key {
			key[i] = i
		}
	}
	pkfields := make([]*querypb.Field, len(key))
	for i, k := range key {
		f := p.fields[k]
		pkfields[i] = &querypb.Field{Name: f.Name, Type: f.Type, Charset: f.Charset, Flags: f.Flags}
	}
	if err := send(&binlogdatapb.VStreamRowsResponse{Fields: p.sentFields(), Pkfields: pkfields, Gtid: sn.Position()}); err != nil {
		return err
	}
	sql := scanSQL(p, ts, key, lastpk)
	direct := p.all && len(p.filters) == 0
	return sn.Stream(ctx, sql, e.cfg.PacketSize, func(qr *querypb.QueryResult) error {
		if len(qr.Rows) == 0 {
			return nil // the fields message
		}
		resp := &binlogdatapb.VStreamRowsResponse{Rows: qr.Rows}
		if !direct {
			rows, err := filterRows(p, qr.Rows)
			if err != nil {
				return err
			}
			resp.Rows = rows
		}
		resp.Lastpk = keyRow(qr.Rows[len(qr.Rows)-1], key)
		e.metrics.rows.Add(float64(len(resp.Rows)))
		return send(resp)
	})
}

// filterRows applies the plan to scanned rows (the table's columns in order).
func filterRows(p *plan, rows []*querypb.Row) ([]*querypb.Row, error) {
	out := make([]*querypb.Row, 0, len(rows))
	vals := make([][]byte, len(p.fields))
	nulls := make([]bool, len(p.fields))
	for _, r := range rows {
		splitRow(r, vals, nulls)
		ok, _, err := p.keep(vals, nulls)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if p.all {
			out = append(out, r) // the table's columns as read: no copy (r lives until send returns)
			continue
		}
		row, err := p.project(vals, nulls)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

// splitRow views a row's values (no copy).
func splitRow(r *querypb.Row, vals [][]byte, nulls []bool) {
	off := int64(0)
	for i, l := range r.Lengths {
		if l < 0 {
			vals[i], nulls[i] = nil, true
			continue
		}
		vals[i], nulls[i] = r.Values[off:off+l], false
		off += l
	}
}

// keyRow is the key columns of a scanned row, as a new row.
func keyRow(r *querypb.Row, key []int) *querypb.Row {
	vals := make([][]byte, len(r.Lengths))
	nulls := make([]bool, len(r.Lengths))
	splitRow(r, vals, nulls)
	out := &querypb.Row{Lengths: make([]int64, len(key))}
	for i, k := range key {
		if nulls[k] {
			out.Lengths[i] = -1
			continue
		}
		out.Lengths[i] = int64(len(vals[k]))
		out.Values = append(out.Values, vals[k]...)
	}
	return out
}

// lastPKValues reads VStreamRowsRequest.lastpk: the key fields and one row.
func lastPKValues(qr *querypb.QueryResult, p *plan) ([][]byte, error) {
	if qr == nil {
		return nil, nil
	}
	if len(qr.Rows) != 1 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "unexpected lastpk input: want one row, got %d", len(qr.Rows))
	}
	key := p.pk
	if len(key) == 0 {
		key = make([]int, len(p.fields))
	}
	if len(qr.Rows[0].Lengths) != len(key) {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"cannot resume the copy of table %s: the lastpk has %d values, the table's key has %d columns", p.table, len(qr.Rows[0].Lengths), len(key))
	}
	vals := make([][]byte, len(key))
	nulls := make([]bool, len(key))
	splitRow(qr.Rows[0], vals, nulls)
	for i, n := range nulls {
		if n {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "lastpk value %d for table %s is NULL", i, p.table)
		}
	}
	return vals, nil
}

// scanSQL is the table scan: every column of the table (the filters and keyspace_id() may
// need any), in key order, after lastpk. A composite key resumes with
// (a = x and b > y) or (a > x): a row-constructor comparison would be a full scan in MySQL.
func scanSQL(p *plan, ts *tabletserver.TableSchema, key []int, lastpk [][]byte) string {
	var b strings.Builder
	b.WriteString("select ")
	for i, f := range p.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		if expr := p.scanExprFor(i); expr != "" {
			b.WriteString(expr + " as " + quoteIdent(f.Name))
		} else {
			b.WriteString(quoteIdent(f.Name))
		}
	}
	b.WriteString(" from " + quoteIdent(p.table))
	if len(p.pk) > 0 && len(p.pushdown) == 0 {
		b.WriteString(" force index (`PRIMARY`)")
	}
	var conds []string
	conds = append(conds, p.pushdown...)
	if len(lastpk) > 0 {
		var ors []string
		for last := len(key) - 1; last >= 0; last-- {
			var ands []string
			for i := 0; i < last; i++ {
				ands = append(ands, quoteIdent(p.fields[key[i]].Name)+" = "+sqlLiteral(p.fields[key[i]], charsetOf(ts, key[i]), lastpk[i]))
			}
			ands = append(ands, quoteIdent(p.fields[key[last]].Name)+" > "+sqlLiteral(p.fields[key[last]], charsetOf(ts, key[last]), lastpk[last]))
			ors = append(ors, "("+strings.Join(ands, " and ")+")")
		}
		conds = append(conds, "("+strings.Join(ors, " or ")+")")
	}
	if len(conds) > 0 {
		b.WriteString(" where " + strings.Join(conds, " and "))
	}
	b.WriteString(" order by ")
	for i, k := range key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(p.fields[k].Name))
	}
	return b.String()
}

func (p *plan) scanExprFor(col int) string {
	for _, c := range p.cols {
		if c.col == col && c.scanExpr != "" {
			return c.scanExpr
		}
	}
	return ""
}

func charsetOf(ts *tabletserver.TableSchema, i int) string {
	if i < len(ts.Charsets) {
		return ts.Charsets[i]
	}
	return ""
}

// sqlLiteral writes a key value so MySQL compares it as the column's own type and collation:
// numbers bare, text as hex bytes with the column's charset introducer (the snapshot session
// runs with binary names, where a plain quoted string would compare byte-wise), binary as
// hex, anything else (dates, times, decimals) quoted.
func sqlLiteral(f *querypb.Field, charset string, v []byte) string {
	switch {
	case isNumeric(f.Type) && f.Type != querypb.Type_DECIMAL:
		return string(v)
	case charset != "" && charset != "binary":
		return "_" + charset + " X'" + hex.EncodeToString(v) + "'"
	case charset == "binary" || isBinaryType(f.Type):
		return "X'" + hex.EncodeToString(v) + "'"
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(string(v)) + "'"
}

func isBinaryType(t querypb.Type) bool {
	switch t {
	case querypb.Type_BINARY, querypb.Type_VARBINARY, querypb.Type_BLOB, querypb.Type_BIT:
		return true
	}
	return false
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
