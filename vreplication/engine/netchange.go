package engine

import (
	"context"
	"encoding/binary"
	"strings"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
)

// Net changes: the player applies many source transactions in one target transaction, and
// only that transaction's end state is ever visible (it commits with the position of its
// last source transaction). For a table whose rows are identified by exact-comparing keys
// and whose every row image is complete, that end state is, per key, either "deleted" or
// "the last after image". So instead of one statement per row change, the player keeps the
// last state of each key and writes, at commit, one multi-row delete and one multi-row
// upsert per table: the same rows, a fraction of the statements.
//
// A table qualifies when nothing else could make the order of rows matter or two byte
// strings name the same key: its key columns are integers or VARBINARY (no collation), it
// has no unique key besides the one identifying rows (no other constraint between rows), it
// is not being copied (catch-up filters rows by lastpk), and its events carry every column of
// the target (the upsert writes whole rows). Foreign keys are not checked by the player's
// session. Any other change of such a table first flushes what is pending for it, so the
// order of statements on a table is kept.

// netTable is the pending end state of one table's rows.
type netTable struct {
	fp   *fieldPlan
	keys map[string]int // key → index in rows
	rows []netRow
}

type netRow struct {
	deleted bool
	image   *querypb.Row // the after image, or (deleted) the before image with the key
}

// netChanges are the pending end states of a target transaction, per field plan.
type netChanges struct {
	tables map[*fieldPlan]*netTable
	order  []*netTable
}

// qualifies reports whether fp's table can take net changes.
func (fp *fieldPlan) qualifies() bool {
	t := fp.tp.target
	if fp.tp.lastpk != nil || fp.nullSafe || len(fp.pkIdx) == 0 {
		return false
	}
	for _, i := range fp.pkIdx {
		switch fp.fields[i].Type {
		case querypb.Type_INT8, querypb.Type_UINT8, querypb.Type_INT16, querypb.Type_UINT16, querypb.Type_INT24,
			querypb.Type_UINT24, querypb.Type_INT32, querypb.Type_UINT32, querypb.Type_INT64, querypb.Type_UINT64,
			querypb.Type_VARBINARY:
		default:
			return false
		}
	}
	for _, ix := range t.secondary {
		if ix.unique && !ix.identifies(t.pk) {
			return false
		}
	}
	written := 0
	for _, c := range fp.cols {
		if c != "" {
			written++
		}
	}
	for _, c := range t.columns {
		if !c.generated {
			written--
		}
	}
	return written == 0
}

// keyOf is a binary-safe key of a row image.
func (fp *fieldPlan) keyOf(r *querypb.Row) string {
	vals, null := rowValues(r, len(fp.fields))
	var b []byte
	for _, i := range fp.pkIdx {
		if null[i] {
			b = append(b, 0xff)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(vals[i])))
		b = append(b, vals[i]...)
	}
	return string(b)
}

// add records a row change; false when the change cannot be netted (a partial image) and
// must be applied as a statement.
func (n *netChanges) add(fp *fieldPlan, rc *binlogdatapb.RowChange) bool {
	if dc := rc.GetDataColumns(); dc != nil && !allBits(dc) {
		return false
	}
	if n.tables == nil {
		n.tables = map[*fieldPlan]*netTable{}
	}
	nt := n.tables[fp]
	if nt == nil {
		nt = &netTable{fp: fp, keys: map[string]int{}}
		n.tables[fp] = nt
		n.order = append(n.order, nt)
	}
	set := func(key string, row netRow) {
		if i, ok := nt.keys[key]; ok {
			nt.rows[i] = row
			return
		}
		nt.keys[key] = len(nt.rows)
		nt.rows = append(nt.rows, row)
	}
	if rc.Before != nil && (rc.After == nil || fp.keyOf(rc.Before) != fp.keyOf(rc.After)) {
		set(fp.keyOf(rc.Before), netRow{deleted: true, image: rc.Before})
	}
	if rc.After != nil {
		set(fp.keyOf(rc.After), netRow{image: rc.After})
	}
	return true
}

// flush queues the statements of what is pending (of one field plan, or all when fp is nil).
func (n *netChanges) flush(ctx context.Context, c *dbConn, fp *fieldPlan) error {
	var keep []*netTable
	for _, nt := range n.order {
		if fp != nil && nt.fp != fp {
			keep = append(keep, nt)
			continue
		}
		for _, sql := range nt.statements() {
			if err := c.queue(ctx, sql); err != nil {
				return err
			}
		}
		delete(n.tables, nt.fp)
	}
	n.order = keep
	return nil
}

func (n *netChanges) reset() { n.tables, n.order = nil, nil }

// statements are a table's deletes (first: no other constraint links rows, and a key deleted
// then re-inserted is an upsert) then upserts, in statements of at most maxBatchBytes.
func (nt *netTable) statements() []string {
	fp := nt.fp
	var out []string
	table := QuoteID(fp.tp.target.name)
	keyCols := make([]string, len(fp.pkIdx))
	for k, i := range fp.pkIdx {
		keyCols[k] = QuoteID(fp.cols[i])
	}
	var del []byte
	for _, r := range nt.rows {
		if !r.deleted {
			continue
		}
		if len(del) == 0 {
			del = append(del, "delete from "+table+" where ("+strings.Join(keyCols, ",")+") in ("...)
		} else {
			del = append(del, ',')
		}
		vals, null := rowValues(r.image, len(fp.fields))
		del = append(del, '(')
		for k, i := range fp.pkIdx {
			if k > 0 {
				del = append(del, ',')
			}
			del = fp.appendVal(del, i, vals[i], null[i])
		}
		del = append(del, ')')
		if len(del) >= maxBatchBytes {
			out, del = append(out, string(append(del, ')'))), nil
		}
	}
	if len(del) > 0 {
		out = append(out, string(append(del, ')')))
	}
	var set []string
	for i, c := range fp.cols {
		if c != "" && !fp.isKey(i) {
			set = append(set, QuoteID(c)+"=values("+QuoteID(c)+")")
		}
	}
	tailSQL := ""
	if len(set) > 0 {
		tailSQL = " on duplicate key update " + strings.Join(set, ",")
	} else {
		tailSQL = " on duplicate key update " + keyCols[0] + "=" + keyCols[0]
	}
	var ins []byte
	for _, r := range nt.rows {
		if r.deleted {
			continue
		}
		if len(ins) == 0 {
			ins = append(ins, fp.head+"values "...)
		} else {
			ins = append(ins, ',')
		}
		ins = fp.appendRow(ins, r.image)
		if len(ins) >= maxBatchBytes {
			out, ins = append(out, string(ins)+tailSQL), nil
		}
	}
	if len(ins) > 0 {
		out = append(out, string(ins)+tailSQL)
	}
	return out
}
