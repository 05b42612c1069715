package engine

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the TiDB parser

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Sidecar tables the statements of VReplicationExec may name.
const (
	tblVReplication      = "vreplication"
	tblReshardingJournal = "resharding_journal"
	tblCopyState         = "copy_state"
	tblVReplicationLog   = "vreplication_log"
	tblPostCopyAction    = "post_copy_action"
)

// execKind is what a VReplicationExec statement does to the controllers.
type execKind int

const (
	execInsert  execKind = iota // new streams: start their controllers
	execUpdate                  // restart the controllers of the rows it changes
	execDelete                  // stop them, and delete the streams' copy state
	execSelect                  // read only
	execJournal                 // a resharding_journal statement: run as it is
)

// execPlan is a checked VReplicationExec statement (vttablet's controller_plan.go).
type execPlan struct {
	kind       execKind
	query      string // the statement, qualifiers pointing at the sidecar database
	numInserts int    // rows an insert adds
	where      string // the WHERE text of an update or delete (selects the ids)
}

// unsafeDirective lets an update or delete of vreplication rows select them by other columns
// than id and workflow (vtctld's UpdateVReplicationWorkflows uses it).
var unsafeDirective = regexp.MustCompile(`/\*vt\+[^*]*\bALLOW_UNSAFE_VREPLICATION_WRITE\b`)

// selectiveColumns are the columns an update or delete of vreplication must compare with =
// or IN.
var selectiveColumns = []string{"id", "workflow"}

func badExec(format string, args ...any) error {
	return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, format, args...)
}

// planExec checks query against the statement set vttablet's VReplicationExec accepts.
// Qualifiers may name "_vt" or the keyspace's sidecar database; the plan's query names the
// sidecar database.
func planExec(p *parser.Parser, query, sidecar string) (*execPlan, error) {
	stmts, _, err := p.ParseSQL(query)
	if err != nil {
		return nil, badExec("cannot parse %q: %v", query, err)
	}
	if len(stmts) != 1 {
		return nil, badExec("unsupported construct: %d statements in %q", len(stmts), query)
	}
	plan := &execPlan{query: replaceQualifier(query, "_vt", sidecar)}
	switch s := stmts[0].(type) {
	case *ast.InsertStmt:
		err = planInsert(plan, s, query, sidecar)
	case *ast.UpdateStmt:
		err = planWrite(plan, execUpdate, s.TableRefs, s.MultipleTable, s.Where, s.Order != nil || s.Limit != nil, query, sidecar)
		if err == nil && plan.kind == execUpdate {
			for _, a := range s.List {
				if a.Column.Name.L == "id" {
					return nil, badExec("id cannot be changed: %s", query)
				}
			}
		}
	case *ast.DeleteStmt:
		err = planWrite(plan, execDelete, s.TableRefs, s.IsMultiTable, s.Where, s.Order != nil || s.Limit != nil, query, sidecar)
	case *ast.SelectStmt:
		err = planSelect(plan, s, query, sidecar)
	default:
		return nil, badExec("unsupported construct: %s", query)
	}
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// singleTable returns the one table of a FROM clause, or an error naming the construct.
func singleTable(refs *ast.TableRefsClause, query string) (*ast.TableName, error) {
	if refs == nil || refs.TableRefs == nil || refs.TableRefs.Right != nil {
		return nil, badExec("invalid FROM construct: %s", query)
	}
	ts, ok := refs.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil, badExec("invalid FROM construct: %s", query)
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok {
		return nil, badExec("invalid FROM construct: %s", query)
	}
	return tn, nil
}

func checkQualifier(tn *ast.TableName, sidecar string) error {
	if q := tn.Schema.O; q != sidecar && q != "_vt" {
		return badExec("invalid database name: %s", q)
	}
	return nil
}

func planInsert(plan *execPlan, s *ast.InsertStmt, query, sidecar string) error {
	tn, err := singleTable(s.Table, query)
	if err != nil {
		return err
	}
	if err := checkQualifier(tn, sidecar); err != nil {
		return err
	}
	switch tn.Name.L {
	case tblReshardingJournal:
		plan.kind = execJournal
		return nil
	case tblVReplication:
	default:
		return badExec("invalid table name: %s", tn.Name.O)
	}
	if s.IsReplace || s.IgnoreErr || len(s.PartitionNames) > 0 || len(s.OnDuplicate) > 0 || s.Select != nil || s.Setlist {
		return badExec("unsupported construct: %s", query)
	}
	idPos := 0 // without a column list, id is the first column
	if len(s.Columns) > 0 {
		idPos = -1
		for i, c := range s.Columns {
			if c.Name.L == "id" {
				idPos = i
				break
			}
		}
	}
	if idPos >= 0 {
		for _, row := range s.Lists {
			if idPos >= len(row) {
				return badExec("malformed statement: %s", query)
			}
			if v, ok := row[idPos].(ast.ValueExpr); !ok || v.GetValue() != nil {
				return badExec("id should not have a value: %s", query)
			}
		}
	}
	plan.kind, plan.numInserts = execInsert, len(s.Lists)
	return nil
}

func planWrite(plan *execPlan, kind execKind, refs *ast.TableRefsClause, multi bool, where ast.ExprNode, orderOrLimit bool, query, sidecar string) error {
	verb := "update"
	if kind == execDelete {
		verb = "delete"
	}
	if multi {
		return badExec("unsupported construct: %s", query)
	}
	tn, err := singleTable(refs, query)
	if err != nil {
		return err
	}
	if err := checkQualifier(tn, sidecar); err != nil {
		return err
	}
	switch tn.Name.L {
	case tblReshardingJournal:
		plan.kind = execJournal
		return nil
	case tblVReplication:
	default:
		return badExec("invalid table name: %s", tn.Name.O)
	}
	if !unsafeDirective.MatchString(query) && !isSelective(where) {
		return badExec("unsafe WHERE clause in %s without the /*vt+ ALLOW_UNSAFE_VREPLICATION_WRITE */ comment directive: %s; "+
			"should be using = or in with at least one of the following columns: %s", verb, whereText(query), strings.Join(selectiveColumns, ", "))
	}
	if orderOrLimit || len(tn.PartitionNames) > 0 {
		return badExec("unsupported construct: %s", query)
	}
	plan.kind, plan.where = kind, topLevelWhere(plan.query)
	if plan.where == "" {
		plan.where = "1 = 1" // only with the unsafe directive
	}
	return nil
}

func whereText(query string) string {
	if w := topLevelWhere(query); w != "" {
		return " where " + w
	}
	return ""
}

func planSelect(plan *execPlan, s *ast.SelectStmt, query, sidecar string) error {
	tn, err := singleTableFrom(s, query)
	if err != nil {
		return err
	}
	if err := checkQualifier(tn, sidecar); err != nil {
		return err
	}
	switch tn.Name.L {
	case tblVReplication, tblReshardingJournal, tblCopyState, tblVReplicationLog:
		plan.kind = execSelect
		return nil
	}
	return badExec("invalid table name: %s", tn.Name.O)
}

// singleTableFrom returns the first table of a SELECT's FROM (vttablet checks only the
// first; joins with other sidecar tables are allowed, as vtctld's copy-progress query does).
func singleTableFrom(s *ast.SelectStmt, query string) (*ast.TableName, error) {
	if s.From == nil || s.From.TableRefs == nil {
		return nil, badExec("BUG: invalid SELECT statement found when building VReplication plan: %s", query)
	}
	var left ast.ResultSetNode = s.From.TableRefs
	for {
		switch n := left.(type) {
		case *ast.Join:
			left = n.Left
			continue
		case *ast.TableSource:
			if tn, ok := n.Source.(*ast.TableName); ok {
				return tn, nil
			}
		}
		return nil, badExec("invalid FROM construct: %s", query)
	}
}

// isSelective reports whether where compares id or workflow with = or IN somewhere (the
// rule of vttablet's controller plan: the statement then cannot touch every stream by
// accident).
func isSelective(where ast.ExprNode) bool {
	if where == nil {
		return false
	}
	v := &selectiveVisitor{}
	where.Accept(v)
	return v.found
}

type selectiveVisitor struct{ found bool }

func (v *selectiveVisitor) Enter(n ast.Node) (ast.Node, bool) {
	switch e := n.(type) {
	case *ast.BinaryOperationExpr:
		if e.Op == opcode.EQ && isSelectiveColumn(e.L) {
			v.found = true
		}
	case *ast.PatternInExpr:
		if !e.Not && isSelectiveColumn(e.Expr) {
			v.found = true
		}
	}
	return n, v.found
}

func (v *selectiveVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func isSelectiveColumn(e ast.ExprNode) bool {
	c, ok := e.(*ast.ColumnNameExpr)
	if !ok {
		return false
	}
	for _, name := range selectiveColumns {
		if c.Name.Name.L == name {
			return true
		}
	}
	return false
}

// String names the kind in logs.
func (k execKind) String() string {
	switch k {
	case execInsert:
		return "insert"
	case execUpdate:
		return "update"
	case execDelete:
		return "delete"
	case execSelect:
		return "select"
	}
	return fmt.Sprintf("journal(%d)", int(k))
}
