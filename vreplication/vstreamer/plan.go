package vstreamer

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the TiDB parser

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// A plan says what of one table a stream sends: which rows (filters) and which values
// (columns). The same plan serves the binlog (VStream) and the table scans (VStreamRows),
// so a row looks the same whichever way it travels.
//
// The rule semantics are Vitess's (vstreamer/planbuilder.go): the first rule whose match is
// the table name, or a /regexp/ matching it, decides. A regexp rule's filter is empty (every
// row), a key range (rows whose keyspace id from the table's primary vindex lies in it) or
// "exclude"; an exact rule's filter is a select of the table's columns, keyspace_id(), the
// literal 1, convert(col using cs) and convert_tz(…) as col, with a WHERE of ANDed
// in_keyrange(), comparisons of a column with a literal (=, !=, <, <=, >, >=, IN, BETWEEN)
// and IS [NOT] NULL.
type plan struct {
	table  string
	fields []*querypb.Field // the table's columns
	pk     []int            // the table's key columns (for VStreamRows order and lastpk)
	cols   []colExpr        // what is sent, in order
	// all: cols are exactly the table's columns in order, so rows can be sent as read.
	all     bool
	filters []filter
	// pushdown are the WHERE conditions MySQL can evaluate for a table scan (all but
	// in_keyrange), in SQL.
	pushdown []string
	// enums maps a column to its ENUM or SET member names, for binlog values (numbers).
	enums map[int][]string
}

type colExpr struct {
	col   int // table column; -1 for computed values
	field *querypb.Field
	// vindex and vindexCols compute keyspace_id().
	vindex     vindex
	vindexCols []int
	fixed      []byte // the literal 1
	// scanExpr replaces the column in a table scan's select (convert … using, convert_tz).
	scanExpr string
}

type opKind int

const (
	opVindex opKind = iota
	opEQ
	opNE
	opLT
	opLE
	opGT
	opGE
	opIn
	opNotBetween
	opIsNull
	opIsNotNull
)

type filter struct {
	op         opKind
	col        int
	values     [][]byte
	vindex     vindex
	vindexCols []int
	kr         keyRange
}

// vschemaView resolves vindexes: the source keyspace's table vindexes and any keyspace's
// named vindexes ('ks.name'), from the cell's SrvVSchema.
type vschemaView struct {
	keyspace string
	srv      *vschemapb.SrvVSchema
}

func invalid(format string, args ...any) error {
	return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, format, args...)
}

// matchRule returns the rule that decides for table, or nil when none matches.
func matchRule(table string, f *binlogdatapb.Filter) (*binlogdatapb.Rule, error) {
	for _, r := range f.GetRules() {
		if strings.HasPrefix(r.Match, "/") {
			re, err := regexp.Compile(strings.Trim(r.Match, "/"))
			if err != nil {
				return nil, invalid("filter rule %q: bad regular expression: %v", r.Match, err)
			}
			if re.MatchString(table) {
				return r, nil
			}
			continue
		}
		if r.Match == table {
			return r, nil
		}
	}
	return nil, nil
}

// buildPlan builds the plan for ts under filter f; nil (and no error) when no rule selects
// the table or its rule excludes it.
func buildPlan(ts *tabletserver.TableSchema, f *binlogdatapb.Filter, vs vschemaView) (*plan, error) {
	r, err := matchRule(ts.Name, f)
	if err != nil || r == nil {
		return nil, err
	}
	if strings.HasPrefix(r.Match, "/") {
		return buildRegexpPlan(ts, r.Filter, vs)
	}
	if r.Filter == "exclude" {
		return nil, nil
	}
	if r.Filter == "" {
		return newPlan(ts, true), nil
	}
	if _, err := parseKeyRange(r.Filter); err == nil {
		return buildRegexpPlan(ts, r.Filter, vs)
	}
	return buildSelectPlan(ts, r.Filter, vs)
}

func newPlan(ts *tabletserver.TableSchema, all bool) *plan {
	p := &plan{table: ts.Name, fields: ts.Fields, pk: ts.PKColumns, all: all}
	if all {
		p.cols = make([]colExpr, len(ts.Fields))
		for i, f := range ts.Fields {
			p.cols[i] = colExpr{col: i, field: f}
		}
	}
	p.enums = enumMembers(ts.Fields)
	return p
}

func buildRegexpPlan(ts *tabletserver.TableSchema, spec string, vs vschemaView) (*plan, error) {
	p := newPlan(ts, true)
	switch spec {
	case "":
		return p, nil
	case "exclude":
		return nil, nil
	}
	kr, err := parseKeyRange(spec)
	if err != nil {
		return nil, invalid("filter for table %s: %v", ts.Name, err)
	}
	v, cols, err := vs.primaryVindex(ts)
	if err != nil {
		return nil, err
	}
	p.filters = append(p.filters, filter{op: opVindex, vindex: v, vindexCols: cols, kr: kr})
	return p, nil
}

// parseSelect parses a filter's select; it must read exactly one table.
func parseSelect(sql string) (*ast.SelectStmt, string, error) {
	stmt, err := parser.New().ParseOneStmt(sql, "", "")
	if err != nil {
		return nil, "", invalid("filter %q does not parse: %v", sql, err)
	}
	sel, ok := stmt.(*ast.SelectStmt)
	if !ok || sel.From == nil || sel.From.TableRefs == nil || sel.From.TableRefs.Right != nil ||
		sel.GroupBy != nil || sel.Having != nil || sel.OrderBy != nil || sel.Limit != nil {
		return nil, "", invalid("filter %q: want select <columns> from <one table> [where …]", sql)
	}
	src, ok := sel.From.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil, "", invalid("filter %q: want a plain table after from", sql)
	}
	tn, ok := src.Source.(*ast.TableName)
	if !ok {
		return nil, "", invalid("filter %q: want a plain table after from", sql)
	}
	return sel, tn.Name.O, nil
}

func buildSelectPlan(ts *tabletserver.TableSchema, sql string, vs vschemaView) (*plan, error) {
	sel, from, err := parseSelect(sql)
	if err != nil {
		return nil, err
	}
	if from != ts.Name {
		return nil, invalid("filter %q selects from %s, but its rule is for table %s", sql, from, ts.Name)
	}
	p := newPlan(ts, false)
	if err := p.analyzeWhere(sel.Where, vs); err != nil {
		return nil, fmt.Errorf("filter %q: %w", sql, err)
	}
	fields := sel.Fields.Fields
	if len(fields) == 1 && fields[0].WildCard != nil {
		if fields[0].WildCard.Table.O != "" {
			return nil, invalid("filter %q: a qualified * is not supported", sql)
		}
		all := newPlan(ts, true)
		p.cols, p.all = all.cols, true
		return p, nil
	}
	for _, sf := range fields {
		c, err := p.analyzeExpr(sf, vs)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", sql, err)
		}
		p.cols = append(p.cols, c)
	}
	return p, nil
}

func (p *plan) column(name string) (int, error) {
	for i, f := range p.fields {
		if strings.EqualFold(f.Name, name) {
			return i, nil
		}
	}
	return 0, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "column %s not found in table %s", name, p.table)
}

func columnName(e ast.ExprNode) (string, bool) {
	c, ok := e.(*ast.ColumnNameExpr)
	if !ok || c.Name.Table.O != "" {
		return "", false
	}
	return c.Name.Name.O, true
}

func (p *plan) analyzeExpr(sf *ast.SelectField, vs vschemaView) (colExpr, error) {
	if sf.WildCard != nil {
		return colExpr{}, invalid("* mixed with other columns is not supported")
	}
	switch e := sf.Expr.(type) {
	case *ast.ColumnNameExpr:
		name, ok := columnName(e)
		if !ok {
			return colExpr{}, invalid("unsupported qualifier for column %s", restore(e))
		}
		i, err := p.column(name)
		if err != nil {
			return colExpr{}, err
		}
		return colExpr{col: i, field: p.fields[i]}, nil
	case ast.ValueExpr:
		if v, ok := e.GetValue().(int64); ok && v == 1 {
			return colExpr{col: -1, fixed: []byte("1"), field: &querypb.Field{Name: "1", Type: querypb.Type_INT64, Charset: 63,
				Flags: uint32(querypb.MySqlFlag_NOT_NULL_FLAG | querypb.MySqlFlag_NUM_FLAG)}}, nil
		}
		return colExpr{}, invalid("only the integer literal 1 is supported, not %s", restore(e))
	case *ast.FuncCallExpr:
		return p.analyzeFunc(e, sf.AsName.O, vs)
	}
	return colExpr{}, invalid("unsupported expression %s", restore(sf.Expr))
}

func (p *plan) analyzeFunc(e *ast.FuncCallExpr, as string, vs vschemaView) (colExpr, error) {
	switch e.FnName.L {
	case "keyspace_id":
		if len(e.Args) != 0 {
			return colExpr{}, invalid("keyspace_id() takes no arguments")
		}
		v, cols, err := vs.primaryVindex(&tabletserver.TableSchema{Name: p.table, Fields: p.fields})
		if err != nil {
			return colExpr{}, err
		}
		return colExpr{col: -1, vindex: v, vindexCols: cols, field: &querypb.Field{Name: "keyspace_id",
			Type: querypb.Type_VARBINARY, Charset: 63, Flags: uint32(querypb.MySqlFlag_BINARY_FLAG)}}, nil
	case "convert":
		// convert(col using charset) [as name]: the source column, converted in table scans.
		if len(e.Args) == 0 {
			break
		}
		name, ok := columnName(e.Args[0])
		if !ok {
			break
		}
		i, err := p.column(name)
		if err != nil {
			return colExpr{}, err
		}
		return colExpr{col: i, field: p.fields[i], scanExpr: restore(e)}, nil
	case "convert_tz":
		// convert_tz(col, from, to) as col: the column named by the alias.
		if as == "" {
			return colExpr{}, invalid("convert_tz() needs an alias naming the column")
		}
		i, err := p.column(as)
		if err != nil {
			return colExpr{}, err
		}
		return colExpr{col: i, field: p.fields[i], scanExpr: restore(e)}, nil
	}
	return colExpr{}, invalid("unsupported function %s", restore(e))
}

// splitAnd flattens a WHERE of ANDed conditions.
func splitAnd(e ast.ExprNode, out []ast.ExprNode) []ast.ExprNode {
	if pe, ok := e.(*ast.ParenthesesExpr); ok {
		if b, ok := pe.Expr.(*ast.BinaryOperationExpr); ok && b.Op == opcode.LogicAnd {
			e = b
		}
	}
	if b, ok := e.(*ast.BinaryOperationExpr); ok && b.Op == opcode.LogicAnd {
		return splitAnd(b.R, splitAnd(b.L, out))
	}
	return append(out, e)
}

var comparisons = map[opcode.Op]opKind{opcode.EQ: opEQ, opcode.NE: opNE, opcode.LT: opLT, opcode.LE: opLE, opcode.GT: opGT, opcode.GE: opGE}

func (p *plan) analyzeWhere(where ast.ExprNode, vs vschemaView) error {
	if where == nil {
		return nil
	}
	for _, e := range splitAnd(where, nil) {
		if err := p.analyzeCondition(e, vs); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) analyzeCondition(e ast.ExprNode, vs vschemaView) error {
	switch c := e.(type) {
	case *ast.FuncCallExpr:
		if c.FnName.L != "in_keyrange" {
			return invalid("unsupported condition %s (only in_keyrange() and comparisons of a column with a literal)", restore(c))
		}
		return p.analyzeInKeyRange(c.Args, vs)
	case *ast.BinaryOperationExpr:
		op, ok := comparisons[c.Op]
		if !ok {
			return invalid("unsupported condition %s", restore(c))
		}
		col, err := p.conditionColumn(c.L)
		if err != nil {
			return err
		}
		v, err := literal(c.R)
		if err != nil {
			return err
		}
		p.filters = append(p.filters, filter{op: op, col: col, values: [][]byte{v}})
	case *ast.PatternInExpr:
		if c.Not || c.Sel != nil {
			return invalid("unsupported condition %s", restore(c))
		}
		col, err := p.conditionColumn(c.Expr)
		if err != nil {
			return err
		}
		f := filter{op: opIn, col: col}
		for _, item := range c.List {
			v, err := literal(item)
			if err != nil {
				return err
			}
			f.values = append(f.values, v)
		}
		p.filters = append(p.filters, f)
	case *ast.BetweenExpr:
		col, err := p.conditionColumn(c.Expr)
		if err != nil {
			return err
		}
		lo, err := literal(c.Left)
		if err != nil {
			return err
		}
		hi, err := literal(c.Right)
		if err != nil {
			return err
		}
		if c.Not {
			p.filters = append(p.filters, filter{op: opNotBetween, col: col, values: [][]byte{lo, hi}})
		} else {
			p.filters = append(p.filters, filter{op: opGE, col: col, values: [][]byte{lo}}, filter{op: opLE, col: col, values: [][]byte{hi}})
		}
	case *ast.IsNullExpr:
		col, err := p.conditionColumn(c.Expr)
		if err != nil {
			return err
		}
		op := opIsNull
		if c.Not {
			op = opIsNotNull
		}
		p.filters = append(p.filters, filter{op: op, col: col})
	default:
		return invalid("unsupported condition %s", restore(e))
	}
	p.pushdown = append(p.pushdown, "("+restore(e)+")")
	return nil
}

func (p *plan) conditionColumn(e ast.ExprNode) (int, error) {
	name, ok := columnName(e)
	if !ok {
		return 0, invalid("unsupported condition on %s: the left side must be a column of the table", restore(e))
	}
	return p.column(name)
}

// literal is a literal's value as MySQL would print it.
func literal(e ast.ExprNode) ([]byte, error) {
	v, ok := e.(ast.ValueExpr)
	if !ok {
		return nil, invalid("%s is not a literal", restore(e))
	}
	switch x := v.GetValue().(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case nil:
		return nil, invalid("compare with NULL using IS NULL")
	default:
		return []byte(fmt.Sprint(x)), nil
	}
}

func stringLiteral(e ast.ExprNode) (string, bool) {
	v, ok := e.(ast.ValueExpr)
	if !ok {
		return "", false
	}
	s, ok := v.GetValue().(string)
	return s, ok
}

// analyzeInKeyRange: in_keyrange('<range>') with the table's primary vindex, or
// in_keyrange(col[, col…], '<vindex type or ks.vindex>', '<range>').
func (p *plan) analyzeInKeyRange(args []ast.ExprNode, vs vschemaView) error {
	f := filter{op: opVindex}
	var spec string
	switch {
	case len(args) == 1:
		s, ok := stringLiteral(args[0])
		if !ok {
			return invalid("in_keyrange(%s): want a key range string such as '-80'", restoreAll(args))
		}
		v, cols, err := vs.primaryVindex(&tabletserver.TableSchema{Name: p.table, Fields: p.fields})
		if err != nil {
			return err
		}
		f.vindex, f.vindexCols, spec = v, cols, s
	case len(args) >= 3:
		for _, a := range args[:len(args)-2] {
			name, ok := columnName(a)
			if !ok {
				return invalid("in_keyrange(%s): %s is not a column", restoreAll(args), restore(a))
			}
			i, err := p.column(name)
			if err != nil {
				return err
			}
			f.vindexCols = append(f.vindexCols, i)
		}
		vname, ok1 := stringLiteral(args[len(args)-2])
		s, ok2 := stringLiteral(args[len(args)-1])
		if !ok1 || !ok2 {
			return invalid("in_keyrange(%s): want in_keyrange(col, '<vindex>', '<key range>')", restoreAll(args))
		}
		v, err := vs.namedVindex(vname)
		if err != nil {
			return err
		}
		f.vindex, spec = v, s
	default:
		return invalid("in_keyrange(%s): want in_keyrange('<key range>') or in_keyrange(col, '<vindex>', '<key range>')", restoreAll(args))
	}
	if len(f.vindexCols) != 1 {
		return invalid("in_keyrange(%s): multi-column vindexes are not supported", restoreAll(args))
	}
	kr, err := parseKeyRange(spec)
	if err != nil {
		return invalid("in_keyrange(%s): %v", restoreAll(args), err)
	}
	f.kr = kr
	p.filters = append(p.filters, f)
	return nil
}

// primaryVindex is the vindex Vitess would route table ts by: the cheapest unique column
// vindex of the table in the source keyspace's VSchema.
func (vs vschemaView) primaryVindex(ts *tabletserver.TableSchema) (vindex, []int, error) {
	ks := vs.srv.GetKeyspaces()[vs.keyspace]
	if ks == nil {
		return nil, nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "keyspace %s not found in the cell's VSchema: cannot find table %s's vindex", vs.keyspace, ts.Name)
	}
	t := ks.Tables[ts.Name]
	if t == nil {
		return nil, nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "table %s not found in keyspace %s's VSchema: no vindex to filter by key range", ts.Name, vs.keyspace)
	}
	best, bestCost := -1, 1<<30
	for i, cv := range t.ColumnVindexes {
		vd := ks.Vindexes[cv.Name]
		if vd == nil {
			continue
		}
		if c, ok := vindexCost[vd.Type]; ok && c < bestCost {
			best, bestCost = i, c
		}
	}
	if best < 0 {
		return nil, nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "table %s in keyspace %s has no unique functional vindex tabletd can evaluate", ts.Name, vs.keyspace)
	}
	cv := t.ColumnVindexes[best]
	cols := cv.Columns
	if len(cols) == 0 {
		cols = []string{cv.Column}
	}
	if len(cols) != 1 {
		return nil, nil, invalid("table %s: multi-column vindexes are not supported", ts.Name)
	}
	p := &plan{table: ts.Name, fields: ts.Fields}
	i, err := p.column(cols[0])
	if err != nil {
		return nil, nil, err
	}
	v, err := newVindex(ks.Vindexes[cv.Name].Type)
	return v, []int{i}, err
}

// namedVindex resolves 'ks.name' in the VSchema, or a bare vindex type ('hash').
func (vs vschemaView) namedVindex(name string) (vindex, error) {
	ksName, vname, qualified := strings.Cut(name, ".")
	if !qualified {
		for _, ks := range []string{vs.keyspace} {
			if vd := vs.srv.GetKeyspaces()[ks].GetVindexes()[name]; vd != nil {
				return newVindex(vd.Type)
			}
		}
		v, err := newVindex(name)
		if err != nil {
			return nil, invalid("%v", err)
		}
		return v, nil
	}
	vd := vs.srv.GetKeyspaces()[ksName].GetVindexes()[vname]
	if vd == nil {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "vindex %s not found in the cell's VSchema", name)
	}
	v, err := newVindex(vd.Type)
	if err != nil {
		return nil, invalid("vindex %s: %v", name, err)
	}
	return v, nil
}

func restore(n ast.Node) string {
	var sb strings.Builder
	if err := n.Restore(format.NewRestoreCtx(format.RestoreStringSingleQuotes|format.RestoreKeyWordLowercase|format.RestoreNameBackQuotes, &sb)); err != nil {
		return fmt.Sprintf("%T", n)
	}
	return sb.String()
}

func restoreAll(args []ast.ExprNode) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = restore(a)
	}
	return strings.Join(parts, ", ")
}

// enumMembers reads ENUM and SET member lists from the columns' types.
func enumMembers(fields []*querypb.Field) map[int][]string {
	var m map[int][]string
	for i, f := range fields {
		ct := strings.ToLower(f.ColumnType)
		var body string
		switch {
		case strings.HasPrefix(ct, "enum("):
			body = f.ColumnType[5:]
		case strings.HasPrefix(ct, "set("):
			body = f.ColumnType[4:]
		default:
			continue
		}
		if m == nil {
			m = map[int][]string{}
		}
		m[i] = parseMembers(strings.TrimSuffix(body, ")"))
	}
	return m
}

// parseMembers splits 'a','b”c' into its unquoted members.
func parseMembers(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case !in && ch == '\'':
			in = true
		case in && ch == '\'' && i+1 < len(s) && s[i+1] == '\'':
			cur.WriteByte('\'')
			i++
		case in && ch == '\'':
			in = false
			out = append(out, cur.String())
			cur.Reset()
		case in:
			cur.WriteByte(ch)
		}
	}
	return out
}

// keep reports whether a row (the table's column values, nil for NULL) passes the filters,
// and whether a vindex filter decided (an update then goes only where each image belongs).
func (p *plan) keep(vals [][]byte, nulls []bool) (ok, byVindex bool, err error) {
	for _, f := range p.filters {
		switch f.op {
		case opVindex:
			c := f.vindexCols[0]
			if nulls[c] {
				return false, true, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "table %s: cannot map NULL in column %s to a keyspace id", p.table, p.fields[c].Name)
			}
			id, err := f.vindex.keyspaceID(p.fields[c].Type, vals[c])
			if err != nil {
				return false, true, rpcerr.Wrap(vtrpcpb.Code_FAILED_PRECONDITION, err, "table %s", p.table)
			}
			byVindex = true
			if !f.kr.contains(id) {
				return false, true, nil
			}
		case opIsNull:
			if !nulls[f.col] {
				return false, byVindex, nil
			}
		case opIsNotNull:
			if nulls[f.col] {
				return false, byVindex, nil
			}
		default:
			if nulls[f.col] || !f.matches(p.fields[f.col].Type, vals[f.col]) {
				return false, byVindex, nil
			}
		}
	}
	return true, byVindex, nil
}

func (f filter) matches(t querypb.Type, v []byte) bool {
	switch f.op {
	case opIn:
		for _, fv := range f.values {
			if compareValues(t, v, fv) == 0 {
				return true
			}
		}
		return false
	case opNotBetween:
		return compareValues(t, v, f.values[0]) < 0 || compareValues(t, v, f.values[1]) > 0
	}
	c := compareValues(t, v, f.values[0])
	switch f.op {
	case opEQ:
		return c == 0
	case opNE:
		return c != 0
	case opLT:
		return c < 0
	case opLE:
		return c <= 0
	case opGT:
		return c > 0
	case opGE:
		return c >= 0
	}
	return false
}

// compareValues compares a column value with a literal: numerically for numeric columns,
// byte-wise otherwise (a binary collation: case-insensitive collations are not modelled).
func compareValues(t querypb.Type, a, b []byte) int {
	if isNumeric(t) {
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(b), 64)
		if err1 == nil && err2 == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return bytes.Compare(a, b)
}

func isNumeric(t querypb.Type) bool {
	switch t {
	case querypb.Type_INT8, querypb.Type_UINT8, querypb.Type_INT16, querypb.Type_UINT16, querypb.Type_INT24,
		querypb.Type_UINT24, querypb.Type_INT32, querypb.Type_UINT32, querypb.Type_INT64, querypb.Type_UINT64,
		querypb.Type_FLOAT32, querypb.Type_FLOAT64, querypb.Type_DECIMAL, querypb.Type_YEAR:
		return true
	}
	return false
}

// sentFields are the FIELD event's (and VStreamRows's first response's) fields.
func (p *plan) sentFields() []*querypb.Field {
	out := make([]*querypb.Field, len(p.cols))
	for i, c := range p.cols {
		out[i] = c.field
	}
	return out
}

// project builds the sent row from the table's column values.
func (p *plan) project(vals [][]byte, nulls []bool) (*querypb.Row, error) {
	row := &querypb.Row{Lengths: make([]int64, len(p.cols))}
	size := 0
	for _, c := range p.cols {
		if c.col >= 0 && !nulls[c.col] {
			size += len(vals[c.col])
		}
	}
	row.Values = make([]byte, 0, size)
	for i, c := range p.cols {
		var v []byte
		switch {
		case c.vindex != nil:
			id, err := c.vindex.keyspaceID(p.fields[c.vindexCols[0]].Type, vals[c.vindexCols[0]])
			if err != nil {
				return nil, rpcerr.Wrap(vtrpcpb.Code_FAILED_PRECONDITION, err, "table %s: keyspace_id()", p.table)
			}
			v = id
		case c.col < 0:
			v = c.fixed
		case nulls[c.col]:
			row.Lengths[i] = -1
			continue
		default:
			v = vals[c.col]
		}
		row.Lengths[i] = int64(len(v))
		row.Values = append(row.Values, v...)
	}
	return row, nil
}

// checkSelect validates a filter's select without the table: syntax, one table, and the key
// range of every in_keyrange().
func checkSelect(sql string) error {
	sel, _, err := parseSelect(sql)
	if err != nil {
		return err
	}
	if sel.Where == nil {
		return nil
	}
	for _, e := range splitAnd(sel.Where, nil) {
		fc, ok := e.(*ast.FuncCallExpr)
		if !ok {
			continue
		}
		if fc.FnName.L != "in_keyrange" {
			return invalid("filter %q: unsupported condition %s", sql, restore(fc))
		}
		if n := len(fc.Args); n != 1 && n < 3 {
			return invalid("filter %q: in_keyrange(%s): want in_keyrange('<key range>') or in_keyrange(col, '<vindex>', '<key range>')", sql, restoreAll(fc.Args))
		}
		spec, ok := stringLiteral(fc.Args[len(fc.Args)-1])
		if !ok {
			return invalid("filter %q: in_keyrange(%s): the key range must be a string literal", sql, restoreAll(fc.Args))
		}
		if _, err := parseKeyRange(spec); err != nil {
			return invalid("filter %q: in_keyrange(%s): %v", sql, restoreAll(fc.Args), err)
		}
	}
	return nil
}
