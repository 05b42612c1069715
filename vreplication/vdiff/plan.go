package vdiff

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the TiDB parser

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// tableSpec is a table a diff compares and the query its sources stream.
type tableSpec struct {
	name        string
	sourceQuery string // the workflow's filter select, as VStreamRows takes it
}

// selectInfo is what the differ reads of a filter's select.
type selectInfo struct {
	star    bool
	outputs []selOutput // the select list (not for *)
	where   string      // the conditions the target applies too: all but in_keyrange(); "" for none
}

type selOutput struct {
	name   string // the output name: the alias, else the column
	column string // the source column when the expression is one, else ""
}

// parseSourceQuery reads a filter's select: one table, columns (aliased or not) or *, and a
// WHERE whose in_keyrange() calls only the source applies.
func parseSourceQuery(q string) (*selectInfo, error) {
	stmt, err := parser.New().ParseOneStmt(q, "", "")
	if err != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter %q does not parse: %v", q, err)
	}
	sel, ok := stmt.(*ast.SelectStmt)
	if !ok || sel.From == nil || sel.From.TableRefs == nil || sel.From.TableRefs.Right != nil || sel.GroupBy != nil || sel.Having != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter %q: VDiff compares a select of one table's columns (no join, group by or having)", q)
	}
	si := &selectInfo{}
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil {
			si.star = true
			continue
		}
		out := selOutput{name: f.AsName.O}
		if c, ok := f.Expr.(*ast.ColumnNameExpr); ok {
			out.column = c.Name.Name.O
			if out.name == "" {
				out.name = out.column
			}
		}
		if out.name == "" {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter %q: expression %s needs an alias naming its target column", q, restore(f.Expr))
		}
		si.outputs = append(si.outputs, out)
	}
	if si.star && len(si.outputs) > 0 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter %q: * mixed with other columns is not supported", q)
	}
	if sel.Where != nil {
		var keep []string
		for _, c := range splitAnd(sel.Where) {
			if fc, ok := c.(*ast.FuncCallExpr); ok && fc.FnName.L == "in_keyrange" {
				continue
			}
			keep = append(keep, "("+restore(c)+")")
		}
		si.where = strings.Join(keep, " and ")
	}
	return si, nil
}

func splitAnd(e ast.ExprNode) []ast.ExprNode {
	if p, ok := e.(*ast.ParenthesesExpr); ok {
		return splitAnd(p.Expr)
	}
	if b, ok := e.(*ast.BinaryOperationExpr); ok && b.Op == opcode.LogicAnd {
		return append(splitAnd(b.L), splitAnd(b.R)...)
	}
	return []ast.ExprNode{e}
}

func restore(n ast.Node) string {
	var sb strings.Builder
	if err := n.Restore(format.NewRestoreCtx(format.RestoreStringSingleQuotes|format.RestoreKeyWordLowercase|format.RestoreNameBackQuotes, &sb)); err != nil {
		return fmt.Sprintf("%T", n)
	}
	return sb.String()
}

// targetColumn is one column of the target table (information_schema.columns).
type targetColumn struct {
	name, dataType, columnType, collation, charset string
	nullable                                       bool
}

// targetTable is the target table's columns and keys.
type targetTable struct {
	name    string
	columns map[string]*targetColumn // by lower-case name
	pk      []string
	pke     []string // the primary key equivalent when there is no primary key
}

// readTargetTable reads a table's columns, primary key and, without one, its primary key
// equivalent: the unique key on NOT NULL columns with the fewest columns (vttablet's
// GetPrimaryKeyEquivalentColumns choice).
func (e *Engine) readTargetTable(ctx context.Context, c *conn, table string) (*targetTable, error) {
	qr, err := c.exec(ctx, "select column_name as column_name, data_type as data_type, column_type as column_type, "+
		"ifnull(collation_name, '') as collation_name, ifnull(character_set_name, '') as character_set_name, is_nullable as is_nullable "+
		"from information_schema.columns where table_schema = "+quoteString(e.cfg.DBName)+" and table_name = "+quoteString(table)+" order by ordinal_position")
	if err != nil {
		return nil, err
	}
	tt := &targetTable{name: table, columns: map[string]*targetColumn{}}
	for _, r := range namedRows(qr) {
		tt.columns[strings.ToLower(r["column_name"])] = &targetColumn{name: r["column_name"], dataType: strings.ToLower(r["data_type"]),
			columnType: r["column_type"], collation: strings.ToLower(r["collation_name"]), charset: strings.ToLower(r["character_set_name"]),
			nullable: r["is_nullable"] == "YES"}
	}
	if len(tt.columns) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_NOT_FOUND, "table %s does not exist in database %s on tablet %s (errno 1146) (sqlstate 42S02)", table, e.cfg.DBName, e.alias())
	}
	qr, err = c.exec(ctx, "select index_name as index_name, non_unique as non_unique, column_name as column_name from information_schema.statistics "+
		"where table_schema = "+quoteString(e.cfg.DBName)+" and table_name = "+quoteString(table)+" order by index_name, seq_in_index")
	if err != nil {
		return nil, err
	}
	keys := map[string][]string{}
	var names []string
	for _, r := range namedRows(qr) {
		if r["non_unique"] != "0" {
			continue
		}
		n := r["index_name"]
		if _, ok := keys[n]; !ok {
			names = append(names, n)
		}
		keys[n] = append(keys[n], r["column_name"])
	}
	tt.pk = keys["PRIMARY"]
	if len(tt.pk) == 0 {
		sort.Strings(names)
		for _, n := range names {
			ok := true
			for _, col := range keys[n] {
				if c := tt.columns[strings.ToLower(col)]; c == nil || c.nullable {
					ok = false
				}
			}
			if ok && (tt.pke == nil || len(keys[n]) < len(tt.pke)) {
				tt.pke = keys[n]
			}
		}
	}
	return tt, nil
}

// tablePlan is how one table is compared, built from the sources' first response (their
// fields and key fields) and the target table.
type tablePlan struct {
	table     string
	cols      []string // target column names, in the order the sources send them
	key       []int    // the merge key: indexes into cols, in key order (the sources' key)
	keyKinds  []cmpKind
	valKinds  []cmpKind        // per column, for the value comparison
	weighted  []int            // positions in key whose values compare by WEIGHT_STRING
	weightSQL []string         // per weighted key column: "convert(%s using cs) collate coll"
	pke       []int            // the target's primary key equivalent (no primary key), else nil
	srcKeyF   []*querypb.Field // the sources' key fields (VStreamRows lastpk)
	where     string           // conditions of the filter the target applies too
	targetCol []*targetColumn  // per column
	// memberList are the members of ENUM and SET columns, per column (nil for others).
	memberList [][]string
}

// buildPlan checks that the sources and the target agree and says how to compare. fields and
// pkfields are the first source's first response; a table with neither a primary key nor a
// unique key on NOT NULL columns is refused.
func buildPlan(spec *tableSpec, si *selectInfo, tt *targetTable, fields, pkfields []*querypb.Field) (*tablePlan, error) {
	if len(tt.pk) == 0 && len(tt.pke) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"table %s has no primary key and no unique key on NOT NULL columns: VDiff cannot match its rows; add a primary key", tt.name)
	}
	p := &tablePlan{table: spec.name, where: si.where, srcKeyF: pkfields}
	for _, f := range fields {
		tc := tt.columns[strings.ToLower(f.Name)]
		if tc == nil {
			return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "column %s of the source's %s is not a column of the target table %s", f.Name, spec.name, tt.name)
		}
		p.cols = append(p.cols, tc.name)
		p.targetCol = append(p.targetCol, tc)
		p.valKinds = append(p.valKinds, valueKind(tc))
		var members []string
		if tc.dataType == "enum" || tc.dataType == "set" {
			members = enumMembers(tc.columnType)
		}
		p.memberList = append(p.memberList, members)
	}
	// The sources send rows in their key's order: that key, found in the select list, is the
	// merge key.
	for _, kf := range pkfields {
		i := -1
		for j, f := range fields {
			src := f.Name
			if !si.star && j < len(si.outputs) && si.outputs[j].column != "" {
				src = si.outputs[j].column
			}
			if strings.EqualFold(src, kf.Name) {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "the filter of table %s does not select its key column %s: VDiff cannot match its rows", spec.name, kf.Name)
		}
		p.key = append(p.key, i)
		k, wsql := keyKind(p.targetCol[i])
		p.keyKinds = append(p.keyKinds, k)
		if k == cmpWeight {
			p.weighted = append(p.weighted, len(p.key)-1)
			p.weightSQL = append(p.weightSQL, wsql)
		}
	}
	if len(p.key) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "the source sent no key fields for table %s", spec.name)
	}
	if len(tt.pk) == 0 {
		for _, col := range tt.pke {
			for i, c := range p.cols {
				if strings.EqualFold(c, col) {
					p.pke = append(p.pke, i)
				}
			}
		}
		if len(p.pke) != len(tt.pke) {
			p.pke = nil
		}
	}
	return p, nil
}

// targetQuery selects the target's rows in the merge key's order, after lastpk.
func (p *tablePlan) targetQuery(lastpk [][]byte) string {
	var b strings.Builder
	b.WriteString("select ")
	for i, c := range p.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteID(c))
	}
	b.WriteString(" from " + quoteID(p.table))
	var conds []string
	if p.where != "" {
		conds = append(conds, p.where)
	}
	if len(lastpk) == len(p.key) {
		var ors []string
		for last := len(p.key) - 1; last >= 0; last-- {
			var ands []string
			for i := 0; i < last; i++ {
				ands = append(ands, quoteID(p.cols[p.key[i]])+" = "+p.literal(p.key[i], lastpk[i]))
			}
			ands = append(ands, quoteID(p.cols[p.key[last]])+" > "+p.literal(p.key[last], lastpk[last]))
			ors = append(ors, "("+strings.Join(ands, " and ")+")")
		}
		conds = append(conds, "("+strings.Join(ors, " or ")+")")
	}
	if len(conds) > 0 {
		b.WriteString(" where " + strings.Join(conds, " and "))
	}
	b.WriteString(" order by ")
	for i, k := range p.key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteID(p.cols[k]))
	}
	return b.String()
}

// literal writes a value so MySQL compares it as column col's type and collation (the
// snapshot session has binary names, so text carries its charset introducer).
func (p *tablePlan) literal(col int, v []byte) string {
	tc := p.targetCol[col]
	switch {
	case isIntegral(tc.dataType) || tc.dataType == "float" || tc.dataType == "double":
		return string(v)
	case tc.charset != "" && tc.charset != "binary":
		return "_" + tc.charset + " X'" + fmt.Sprintf("%x", v) + "'"
	case isBinaryData(tc.dataType):
		return "X'" + fmt.Sprintf("%x", v) + "'"
	}
	return quoteString(string(v))
}
