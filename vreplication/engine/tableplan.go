package engine

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// excludeFilter is a rule filter that leaves a table out (Reshard's reference tables).
const excludeFilter = "exclude"

// keyRangeSpec is a shard-range filter such as "-80" or "80-" (Vitess's key.KeyRangePattern).
var keyRangeSpec = regexp.MustCompile(`^(0|([0-9a-fA-F]{2})*-([0-9a-fA-F]{2})*)$`)

// lastPK is a table's copy progress as _vt.copy_state stores it: the PK fields and the last
// copied PK, the prototext of a query.QueryResult with one row.
type lastPK struct {
	fields []*querypb.Field
	row    *querypb.Row
}

func parseLastPK(text []byte) (*lastPK, error) {
	var qr querypb.QueryResult
	if err := prototext.Unmarshal(text, &qr); err != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "copy_state.lastpk is not a QueryResult in protobuf text format: %v", err)
	}
	if len(qr.Rows) != 1 || len(qr.Fields) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "copy_state.lastpk has %d fields and %d rows, want fields and one row", len(qr.Fields), len(qr.Rows))
	}
	return &lastPK{fields: qr.Fields, row: qr.Rows[0]}, nil
}

func (l *lastPK) marshal() ([]byte, error) {
	return prototext.Marshal(&querypb.QueryResult{Fields: l.fields, Rows: []*querypb.Row{l.row}})
}

// tablePlan is how one target table is fed: the source table and the SELECT the source is
// asked for (both VStream's rule and VStreamRows' query), and the copy restriction.
type tablePlan struct {
	target      *tableSchema
	sourceTable string
	query       string
	// columns are the target columns of a projection, in select order; nil for select *.
	columns []string
	// lastpk: only rows up to it are copied yet (catch-up and fast-forward apply events to
	// those only); nil: the table is fully copied.
	lastpk           *lastPK
	convertIntToEnum map[string]bool
}

// replicatorPlan is the plan of a whole stream.
type replicatorPlan struct {
	byTarget map[string]*tablePlan
	bySource map[string]*tablePlan
	filter   *binlogdatapb.Filter // what VStream is asked
}

// buildReplicatorPlan matches the stream's rules against the target tables (the first rule
// whose match is the table's name or a /regexp/ matching it wins). copyState lists the tables
// still being copied: a nil lastpk means not started, and such tables are left out.
func buildReplicatorPlan(p *parser.Parser, src *binlogdatapb.BinlogSource, schema map[string]*tableSchema, copyState map[string]*lastPK) (*replicatorPlan, error) {
	if src.GetFilter() == nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "the stream's BinlogSource has no filter: tabletd replicates with filter rules only")
	}
	if err := checkRules(src.Filter); err != nil {
		return nil, err
	}
	plan := &replicatorPlan{byTarget: map[string]*tablePlan{}, bySource: map[string]*tablePlan{},
		filter: &binlogdatapb.Filter{FieldEventMode: src.Filter.FieldEventMode}}
	names := make([]string, 0, len(schema))
	for n := range schema {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		lpk, copying := copyState[name]
		if copying && lpk == nil {
			continue
		}
		rule, err := matchTable(name, src.Filter)
		if err != nil || rule == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		tp, err := buildTablePlan(p, schema[name], rule)
		if err != nil || tp == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		tp.lastpk = lpk
		if dup, ok := plan.bySource[tp.sourceTable]; ok {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "more than one target for source table %s: %s and %s", tp.sourceTable, dup.target.name, name)
		}
		plan.byTarget[name], plan.bySource[tp.sourceTable] = tp, tp
		plan.filter.Rules = append(plan.filter.Rules, &binlogdatapb.Rule{Match: tp.sourceTable, Filter: tp.query})
	}
	return plan, nil
}

// checkRules refuses what tabletd cannot apply, and exact-match rules naming no table.
func checkRules(f *binlogdatapb.Filter) error {
	for _, r := range f.Rules {
		if r.Match == "" {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "a filter rule has an empty match")
		}
		if strings.HasPrefix(r.Match, "/") {
			if _, err := regexp.Compile(strings.Trim(r.Match, "/")); err != nil {
				return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter rule match %q is not a valid regular expression: %v", r.Match, err)
			}
		}
		if len(r.ConvertCharset) > 0 || len(r.ConvertEnumToText) > 0 {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter rule for %s: convert_charset and convert_enum_to_text are not supported by tabletd", r.Match)
		}
	}
	return nil
}

// matchTable returns the rule that applies to a target table, nil if none.
func matchTable(name string, f *binlogdatapb.Filter) (*binlogdatapb.Rule, error) {
	for _, r := range f.Rules {
		if strings.HasPrefix(r.Match, "/") {
			ok, err := regexp.MatchString(strings.Trim(r.Match, "/"), name)
			if err != nil {
				return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter rule match %q: %v", r.Match, err)
			}
			if ok {
				return r, nil
			}
			continue
		}
		if r.Match == name {
			return r, nil
		}
	}
	return nil, nil
}

// missingTables names the exact-match rules whose table the target does not have.
func missingTables(f *binlogdatapb.Filter, schema map[string]*tableSchema) []string {
	var out []string
	for _, r := range f.GetRules() {
		if !strings.HasPrefix(r.Match, "/") && r.Filter != excludeFilter && schema[r.Match] == nil {
			out = append(out, r.Match)
		}
	}
	return out
}

// buildTablePlan turns a rule into the table's plan; nil for an excluded table.
func buildTablePlan(p *parser.Parser, t *tableSchema, rule *binlogdatapb.Rule) (*tablePlan, error) {
	query := rule.Filter
	switch {
	case query == "":
		query = "select * from " + QuoteID(t.name)
	case keyRangeSpec.MatchString(query):
		query = "select * from " + QuoteID(t.name) + " where in_keyrange(" + QuoteString(query) + ")"
	case query == excludeFilter:
		return nil, nil
	}
	tp := &tablePlan{target: t, query: query, convertIntToEnum: rule.ConvertIntToEnum}
	stmts, _, err := p.ParseSQL(query)
	if err != nil || len(stmts) != 1 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s is not one SELECT: %q: %v", t.name, query, err)
	}
	sel, ok := stmts[0].(*ast.SelectStmt)
	if !ok || sel.From == nil || sel.From.TableRefs == nil || sel.From.TableRefs.Right != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s must be a SELECT from one table: %q", t.name, query)
	}
	ts, ok := sel.From.TableRefs.Left.(*ast.TableSource)
	tn, ok2 := (*ast.TableName)(nil), false
	if ok {
		tn, ok2 = ts.Source.(*ast.TableName)
	}
	if !ok2 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s must select from a table: %q", t.name, query)
	}
	tp.sourceTable = tn.Name.O
	if sel.GroupBy != nil || sel.Having != nil || sel.Limit != nil || sel.OrderBy != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s: GROUP BY, HAVING, ORDER BY and LIMIT are not supported: %q", t.name, query)
	}
	if sel.Where != nil {
		if err := checkInKeyrange(sel.Where, t.name); err != nil {
			return nil, err
		}
	}
	if err := tp.analyzeFields(sel.Fields); err != nil {
		return nil, err
	}
	return tp, nil
}

func (tp *tablePlan) analyzeFields(fl *ast.FieldList) error {
	t := tp.target
	if len(fl.Fields) == 1 && fl.Fields[0].WildCard != nil {
		if fl.Fields[0].WildCard.Table.L != "" {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s: unsupported qualifier for '*'", t.name)
		}
		return nil
	}
	for _, f := range fl.Fields {
		if f.WildCard != nil {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s: unsupported mix of '*' and columns", t.name)
		}
		name := f.AsName.O
		if name == "" {
			c, ok := f.Expr.(*ast.ColumnNameExpr)
			if !ok {
				return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s: an expression needs an alias naming its target column", t.name)
			}
			name = c.Name.Name.O
		}
		col, ok := t.column(name)
		if !ok {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s selects column %s, which the target table does not have", t.name, name)
		}
		tp.columns = append(tp.columns, col.name)
	}
	for _, pk := range t.pk {
		found := false
		for _, c := range tp.columns {
			found = found || strings.EqualFold(c, pk)
		}
		if !found {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s does not select its key column %s", t.name, pk)
		}
	}
	return nil
}

// checkInKeyrange refuses a malformed in_keyrange(): one argument or three, the last a key
// range such as '-80'.
func checkInKeyrange(where ast.ExprNode, table string) error {
	v := &keyrangeVisitor{table: table}
	where.Accept(v)
	return v.err
}

type keyrangeVisitor struct {
	table string
	err   error
}

func (v *keyrangeVisitor) Enter(n ast.Node) (ast.Node, bool) {
	f, ok := n.(*ast.FuncCallExpr)
	if !ok || f.FnName.L != "in_keyrange" || v.err != nil {
		return n, v.err != nil
	}
	bad := func(why string) {
		v.err = rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter for table %s: malformed in_keyrange: %s", v.table, why)
	}
	switch len(f.Args) {
	case 1, 3:
	default:
		bad(fmt.Sprintf("%d arguments, want 1 (key range) or 3 (column, vindex, key range)", len(f.Args)))
		return n, true
	}
	last, ok := f.Args[len(f.Args)-1].(ast.ValueExpr)
	s, isStr := "", false
	if ok {
		s, isStr = last.GetValue().(string)
	}
	if !isStr || !keyRangeSpec.MatchString(s) {
		bad("the key range (last argument) must be a string such as '-80', '80-' or '40-80'")
	}
	return n, true
}

func (v *keyrangeVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }
