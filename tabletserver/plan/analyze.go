package plan

import (
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// analysis is what a statement's syntax tree says about it.
type analysis struct {
	typ          Type
	statement    string // Vitess's statement type name: SELECT, INSERT, DDL, ...
	tables       []TableRef
	target       *TableRef
	hasLimit     bool
	withoutWhere bool
	reserved     bool // needs a reserved connection (Vitess NeedsReservedConn)
	union        bool // a UNION (or INTERSECT, EXCEPT) at the top
}

// analyze classifies a parsed statement as vttablet's planbuilder does (Build and
// analyzeSelect/Update/Delete/Show/DDL/Flush) and lists its tables.
func analyze(stmt ast.StmtNode) (analysis, error) {
	a, err := classify(stmt)
	if err != nil {
		return a, err
	}
	a.tables = collectTables(stmt)
	switch s := stmt.(type) {
	case *ast.SelectStmt:
		a.hasLimit = s.Limit != nil
		a.target = singleTable(s.From, false)
		switch {
		case isImpossible(s.Where):
			a.typ = SelectImpossible
		case hasGetLock(s.Fields):
			a.typ, a.reserved = SelectLockFunc, true
		}
	case *ast.SetOprStmt:
		a.hasLimit, a.union = s.Limit != nil, true
	case *ast.InsertStmt:
		a.target = singleTable(s.Table, false)
	case *ast.UpdateStmt:
		a.withoutWhere = s.Where == nil
		a.target = singleTable(s.TableRefs, false)
		if s.Limit == nil && !s.MultipleTable && singleTable(s.TableRefs, true) != nil {
			a.typ = UpdateLimit
		}
	case *ast.DeleteStmt:
		a.withoutWhere = s.Where == nil
		a.target = singleTable(s.TableRefs, false)
		if s.Limit == nil && !s.IsMultiTable && singleTable(s.TableRefs, true) != nil {
			a.typ = DeleteLimit
		}
	case *ast.FlushStmt:
		a.reserved = s.ReadLock
		if len(s.Tables) == 1 {
			a.target = &TableRef{Qualifier: s.Tables[0].Schema.O, Name: s.Tables[0].Name.O, Role: Admin}
		}
	case *ast.CreateTableStmt:
		a.reserved = s.TemporaryKeyword != ast.TemporaryNone
	case *ast.DropTableStmt:
		a.reserved = s.TemporaryKeyword != ast.TemporaryNone
	}
	if a.target != nil {
		var found bool
		if a.target.Role, found = roleOf(a.tables, *a.target); !found {
			a.target = nil // a CTE, not a table
		}
	}
	return a, nil
}

// classify returns the plan type and statement type name of stmt, or ErrNotAllowed.
func classify(stmt ast.StmtNode) (analysis, error) {
	switch s := stmt.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
		return analysis{typ: Select, statement: "SELECT"}, nil
	case *ast.InsertStmt:
		if s.IsReplace {
			return analysis{typ: Insert, statement: "REPLACE"}, nil
		}
		return analysis{typ: Insert, statement: "INSERT"}, nil
	case *ast.UpdateStmt:
		return analysis{typ: Update, statement: "UPDATE"}, nil
	case *ast.DeleteStmt:
		return analysis{typ: Delete, statement: "DELETE"}, nil
	case *ast.CreateDatabaseStmt, *ast.AlterDatabaseStmt, *ast.DropDatabaseStmt:
		return analysis{}, notAllowed("database DDL", "vtgate runs it, not the tablet")
	case *ast.LockTablesStmt:
		return analysis{}, notAllowed("LOCK TABLES", "table locks would stay on a pooled connection")
	case *ast.OptimizeTableStmt, *ast.DoStmt:
		return analysis{typ: OtherAdmin, statement: "OTHER"}, nil
	case *ast.UnlockTablesStmt:
		return analysis{typ: UnlockTables, statement: "UNLOCK_TABLES"}, nil
	case ast.DDLNode, *ast.ProcedureInfo, *ast.DropProcedureStmt:
		return analysis{typ: DDL, statement: "DDL"}, nil
	case *ast.SetStmt:
		return analysis{typ: Set, statement: "SET", reserved: true}, nil
	case *ast.ShowStmt:
		return analysis{typ: showType(s.Tp), statement: "SHOW"}, nil
	case *ast.ExplainStmt:
		return analysis{typ: Select, statement: "EXPLAIN"}, nil
	case *ast.ExplainForStmt, *ast.HelpStmt:
		return analysis{typ: OtherRead, statement: "OTHER"}, nil
	case *ast.AnalyzeTableStmt:
		return analysis{typ: Select, statement: "ANALYZE"}, nil
	case *ast.CallStmt:
		return analysis{typ: CallProcedure, statement: "CALL_PROC"}, nil
	case *ast.LoadDataStmt:
		return analysis{typ: Load, statement: "OTHER"}, nil
	case *ast.FlushStmt:
		return analysis{typ: Flush, statement: "FLUSH"}, nil
	case *ast.SavepointStmt:
		return analysis{typ: Savepoint, statement: "SAVEPOINT"}, nil
	case *ast.ReleaseSavepointStmt:
		return analysis{typ: Release, statement: "RELEASE"}, nil
	case *ast.RollbackStmt:
		if s.SavepointName != "" {
			return analysis{typ: RollbackSavepoint, statement: "SAVEPOINT_ROLLBACK"}, nil
		}
		return analysis{}, notAllowed("ROLLBACK", "use the Rollback RPC")
	case *ast.BeginStmt:
		return analysis{}, notAllowed("BEGIN", "use the Begin RPC")
	case *ast.CommitStmt:
		return analysis{}, notAllowed("COMMIT", "use the Commit RPC")
	case *ast.UseStmt:
		return analysis{}, notAllowed("USE", "the database of a pooled connection is fixed")
	case *ast.PrepareStmt, *ast.ExecuteStmt, *ast.DeallocateStmt:
		return analysis{}, notAllowed("PREPARE/EXECUTE/DEALLOCATE", "prepared statements would stay on a pooled connection")
	case *ast.GrantStmt, *ast.RevokeStmt, *ast.GrantRoleStmt, *ast.RevokeRoleStmt, *ast.GrantProxyStmt,
		*ast.CreateUserStmt, *ast.AlterUserStmt, *ast.DropUserStmt, *ast.RenameUserStmt, *ast.SetPwdStmt,
		*ast.SetRoleStmt, *ast.SetDefaultRoleStmt:
		return analysis{typ: OtherAdmin, statement: "PRIV"}, nil
	case *ast.KillStmt:
		return analysis{}, notAllowed("KILL", "vtgate runs it, not the tablet")
	}
	return analysis{typ: OtherAdmin, statement: "OTHER"}, nil
}

func notAllowed(what, why string) error {
	return fmt.Errorf("%w: %s (%s)", ErrNotAllowed, what, why)
}

// showType maps SHOW statements as vttablet does: the ones Vitess's grammar reads as
// ShowBasic or ShowCreate are Show, everything else (PROCESSLIST, GRANTS, replica status,
// ...) is OtherRead.
func showType(tp ast.ShowStmtType) Type {
	switch tp {
	case ast.ShowEngines, ast.ShowDatabases, ast.ShowTables, ast.ShowTableStatus, ast.ShowColumns,
		ast.ShowWarnings, ast.ShowCharset, ast.ShowVariables, ast.ShowStatus, ast.ShowCollation,
		ast.ShowCreateTable, ast.ShowCreateView, ast.ShowCreateDatabase, ast.ShowCreateProcedure,
		ast.ShowTriggers, ast.ShowProcedureStatus, ast.ShowFunctionStatus, ast.ShowIndex,
		ast.ShowPlugins, ast.ShowPrivileges, ast.ShowOpenTables:
		return Show
	}
	return OtherRead
}

// singleTable returns the table of a table list made of exactly one table (Vitess's
// plan.Table), nil otherwise; with unqualified, a db.table does not count (Vitess finds only
// unqualified names in its schema, so only they get UpdateLimit/DeleteLimit).
func singleTable(refs *ast.TableRefsClause, unqualified bool) *TableRef {
	if refs == nil || refs.TableRefs == nil || refs.TableRefs.Right != nil {
		return nil
	}
	ts, ok := refs.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok || unqualified && tn.Schema.O != "" {
		return nil
	}
	return &TableRef{Qualifier: tn.Schema.O, Name: tn.Name.O}
}

// roleOf returns the strongest role tables give the table t, and whether it is there.
func roleOf(tables []TableRef, t TableRef) (Role, bool) {
	r, found := NoRole, false
	for _, u := range tables {
		if u.Qualifier == t.Qualifier && u.Name == t.Name {
			found = true
			r = max(r, u.Role)
		}
	}
	return r, found
}

// isImpossible reports a WHERE that is one comparison `literal != same literal`, such as
// vtgate's `where 1 != 1` field queries (Vitess ComparisonExpr.IsImpossible).
func isImpossible(where ast.ExprNode) bool {
	b, ok := where.(*ast.BinaryOperationExpr)
	if !ok || b.Op != opcode.NE {
		return false
	}
	l, lok := b.L.(ast.ValueExpr)
	r, rok := b.R.(ast.ValueExpr)
	if !lok || !rok || isParam(b.L) || isParam(b.R) {
		return false
	}
	ls, rs := restore(l), restore(r)
	return ls != "" && ls == rs && l.GetType().GetType() == r.GetType().GetType()
}

func isParam(e ast.ExprNode) bool {
	_, ok := e.(ast.ParamMarkerExpr)
	return ok
}

func restore(n ast.Node) string {
	var sb strings.Builder
	if err := n.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags, &sb)); err != nil {
		return ""
	}
	return sb.String()
}

// hasGetLock reports a get_lock() call in the select list (Vitess hasLockFunc).
func hasGetLock(fields *ast.FieldList) bool {
	if fields == nil {
		return false
	}
	f := &funcFinder{name: "get_lock"}
	fields.Accept(f)
	return f.found
}

type funcFinder struct {
	name  string
	found bool
}

func (f *funcFinder) Enter(n ast.Node) (ast.Node, bool) {
	if fc, ok := n.(*ast.FuncCallExpr); ok && fc.FnName.L == f.name {
		f.found = true
	}
	return n, f.found
}

func (f *funcFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
