package engine

import (
	"strings"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// fieldPlan writes the rows of one source table once its fields are known (a FIELD event, or
// the first VStreamRows response): which target column each field goes to and which fields
// identify a row.
type fieldPlan struct {
	tp     *tablePlan
	fields []*querypb.Field
	// cols is the target column of each field; "" for a field that is not written (a
	// generated column of the target).
	cols []string
	// pkIdx is the field of each key column, in key order; pkCols its schema.
	pkIdx  []int
	pkCols []column
	// nullSafe: the key is every column (no primary or unique key): compare with <=>.
	nullSafe    bool
	enumAsIndex bool
	head        string // "insert into `t`(`a`,`b`) "
	net         bool   // the player may apply net changes (netchange.go)
}

// fieldPlan builds the field plan. enumStrings: ENUM and SET values arrive as their strings
// (FieldEvent.enum_set_string_values; VStreamRows always sends strings).
func (tp *tablePlan) fieldPlan(fields []*querypb.Field, enumStrings bool) (*fieldPlan, error) {
	t := tp.target
	fp := &fieldPlan{tp: tp, fields: fields, cols: make([]string, len(fields)), enumAsIndex: !enumStrings}
	if tp.columns != nil && len(tp.columns) != len(fields) {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table %s: the source sent %d fields for %d selected columns", t.name, len(fields), len(tp.columns))
	}
	var head strings.Builder
	head.WriteString("insert into " + QuoteID(t.name) + "(")
	n := 0
	for i, f := range fields {
		name := f.Name
		if tp.columns != nil {
			name = tp.columns[i]
		}
		col, ok := t.column(name)
		if !ok {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table %s: the source column %s does not exist in the target table", t.name, name)
		}
		if col.generated {
			continue
		}
		fp.cols[i] = col.name
		if n > 0 {
			head.WriteByte(',')
		}
		head.WriteString(QuoteID(col.name))
		n++
	}
	head.WriteString(") ")
	fp.head = head.String()
	for _, pk := range t.pk {
		idx := -1
		for i, c := range fp.cols {
			if strings.EqualFold(c, pk) {
				idx = i
			}
		}
		if idx < 0 {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table %s: the source does not send key column %s", t.name, pk)
		}
		col, _ := t.column(pk)
		fp.pkIdx, fp.pkCols = append(fp.pkIdx, idx), append(fp.pkCols, col)
		fp.nullSafe = fp.nullSafe || col.nullable
	}
	fp.net = fp.qualifies()
	return fp, nil
}

// appendVal appends field i's value.
func (fp *fieldPlan) appendVal(buf []byte, i int, v []byte, null bool) []byte {
	typ := fp.fields[i].Type
	if fp.tp.convertIntToEnum[fp.fields[i].Name] && !null {
		return appendQuoted(buf, v)
	}
	return appendValue(buf, typ, v, null, fp.enumAsIndex)
}

// appendRow appends "(v1,v2,…)" of the written columns.
func (fp *fieldPlan) appendRow(buf []byte, r *querypb.Row) []byte {
	vals, null := rowValues(r, len(fp.fields))
	buf = append(buf, '(')
	n := 0
	for i := range fp.fields {
		if fp.cols[i] == "" {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = fp.appendVal(buf, i, vals[i], null[i])
		n++
	}
	return append(buf, ')')
}

// appendKeyLiteral appends a key value for a comparison between literals: text keys carry
// their column's charset and collation, so that the order is the key's (the connection is
// binary).
func appendKeyLiteral(buf []byte, col column, typ querypb.Type, v []byte, null bool) []byte {
	if col.charset == "" || null {
		return appendValue(buf, typ, v, null, false)
	}
	buf = append(buf, '_')
	buf = append(buf, col.charset...)
	buf = appendQuoted(buf, v)
	buf = append(buf, " collate "...)
	return append(buf, col.collation...)
}

// appendLastPKBound appends "(l1,l2)" of the table's lastpk, in key order.
func (fp *fieldPlan) appendLastPKBound(buf []byte) []byte {
	l := fp.tp.lastpk
	vals, null := rowValues(l.row, len(l.fields))
	buf = append(buf, '(')
	for k, col := range fp.pkCols {
		if k > 0 {
			buf = append(buf, ',')
		}
		j := -1
		for i, f := range l.fields {
			if strings.EqualFold(f.Name, col.name) {
				j = i
			}
		}
		if j < 0 {
			return append(buf, "null)"...) // never true: the copy cannot have reached such a row
		}
		buf = appendKeyLiteral(buf, col, l.fields[j].Type, vals[j], null[j])
	}
	return append(buf, ')')
}

// appendKeyWhere appends " where k1=v1 and k2=v2" from a row image, and the lastpk bound.
func (fp *fieldPlan) appendKeyWhere(buf []byte, vals [][]byte, null []bool) []byte {
	buf = append(buf, " where "...)
	op := "="
	if fp.nullSafe {
		op = "<=>"
	}
	for k, i := range fp.pkIdx {
		if k > 0 {
			buf = append(buf, " and "...)
		}
		buf = append(buf, QuoteID(fp.cols[i])...)
		buf = append(buf, op...)
		buf = fp.appendVal(buf, i, vals[i], null[i])
	}
	if fp.tp.lastpk != nil {
		buf = append(buf, " and ("...)
		for k, i := range fp.pkIdx {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, QuoteID(fp.cols[i])...)
		}
		buf = append(buf, ") <= "...)
		buf = fp.appendLastPKBound(buf)
	}
	return buf
}

// insertSQL is one row's insert: a plain insert, or, with a lastpk, an insert of a row from
// dual that happens only when the row is within the copied range.
func (fp *fieldPlan) insertSQL(r *querypb.Row, cols []bool) string {
	vals, null := rowValues(r, len(fp.fields))
	buf := make([]byte, 0, 64+len(r.Values)*2)
	buf = append(buf, fp.headFor(cols)...)
	if fp.tp.lastpk == nil {
		buf = append(buf, "values ("...)
	} else {
		buf = append(buf, "select "...)
	}
	n := 0
	for i := range fp.fields {
		if fp.cols[i] == "" || (cols != nil && !cols[i]) {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = fp.appendVal(buf, i, vals[i], null[i])
		n++
	}
	if fp.tp.lastpk == nil {
		return string(append(buf, ')'))
	}
	buf = append(buf, " from dual where ("...)
	for k, i := range fp.pkIdx {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = appendKeyLiteral(buf, fp.pkCols[k], fp.fields[i].Type, vals[i], null[i])
	}
	buf = append(buf, ") <= "...)
	return string(fp.appendLastPKBound(buf))
}

// headFor is the insert head for a partial row image (cols: the columns it carries).
func (fp *fieldPlan) headFor(cols []bool) string {
	if cols == nil {
		return fp.head
	}
	var b strings.Builder
	b.WriteString("insert into " + QuoteID(fp.tp.target.name) + "(")
	n := 0
	for i, c := range fp.cols {
		if c == "" || !cols[i] {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(QuoteID(c))
		n++
	}
	b.WriteString(") ")
	return b.String()
}

func (fp *fieldPlan) deleteSQL(r *querypb.Row) string {
	vals, null := rowValues(r, len(fp.fields))
	buf := append([]byte(nil), "delete from "+QuoteID(fp.tp.target.name)...)
	return string(fp.appendKeyWhere(buf, vals, null))
}

// updateSQL sets every written non-key column the after image carries.
func (fp *fieldPlan) updateSQL(before, after *querypb.Row, cols []bool) string {
	bv, bn := rowValues(before, len(fp.fields))
	av, an := rowValues(after, len(fp.fields))
	buf := append([]byte(nil), "update "+QuoteID(fp.tp.target.name)+" set "...)
	n := 0
	for i := range fp.fields {
		if fp.cols[i] == "" || fp.isKey(i) || (cols != nil && !cols[i]) {
			continue
		}
		if n > 0 {
			buf = append(buf, ", "...)
		}
		buf = append(buf, QuoteID(fp.cols[i])...)
		buf = append(buf, '=')
		buf = fp.appendVal(buf, i, av[i], an[i])
		n++
	}
	if n == 0 {
		return "" // only key columns: nothing to set
	}
	return string(fp.appendKeyWhere(buf, bv, bn))
}

func (fp *fieldPlan) isKey(i int) bool {
	for _, k := range fp.pkIdx {
		if k == i {
			return true
		}
	}
	return false
}

// keyChanged reports whether an update moves the row to another key.
func (fp *fieldPlan) keyChanged(before, after *querypb.Row) bool {
	bv, bn := rowValues(before, len(fp.fields))
	av, an := rowValues(after, len(fp.fields))
	for _, i := range fp.pkIdx {
		if bn[i] != an[i] || string(bv[i]) != string(av[i]) {
			return true
		}
	}
	return false
}

// changeSQL returns the statements that apply one row change.
func (fp *fieldPlan) changeSQL(rc *binlogdatapb.RowChange) []string {
	var cols []bool
	if dc := rc.GetDataColumns(); dc != nil && int(dc.Count) == len(fp.fields) && len(dc.Cols)*8 >= len(fp.fields) && !allBits(dc) {
		cols = make([]bool, len(fp.fields))
		for i := range cols {
			cols[i] = dc.Cols[i/8]&(1<<(i%8)) != 0
		}
	}
	switch {
	case rc.Before == nil && rc.After != nil:
		return []string{fp.insertSQL(rc.After, cols)}
	case rc.Before != nil && rc.After == nil:
		return []string{fp.deleteSQL(rc.Before)}
	case rc.Before != nil && rc.After != nil:
		if !fp.keyChanged(rc.Before, rc.After) {
			if s := fp.updateSQL(rc.Before, rc.After, cols); s != "" {
				return []string{s}
			}
			return nil
		}
		return []string{fp.deleteSQL(rc.Before), fp.insertSQL(rc.After, cols)}
	}
	return nil
}

// allBits reports whether a row image carries every column.
func allBits(b *binlogdatapb.RowChange_Bitmap) bool {
	for i := 0; i < int(b.Count); i++ {
		if i/8 >= len(b.Cols) || b.Cols[i/8]&(1<<(i%8)) == 0 {
			return false
		}
	}
	return true
}
