package plan

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// collector walks a statement and lists every table it touches with the role it needs.
//
// Roles follow Vitess's planbuilder/permission.go: every table of a SELECT or UNION is read
// (READER); the tables of an INSERT, UPDATE or DELETE statement's own table list — joined
// tables of a multi-table UPDATE or DELETE included, as in Vitess — are written (WRITER);
// DDL and FLUSH need ADMIN; ANALYZE TABLE needs WRITER. Any table inside a subquery, derived
// table, CTE or INSERT ... SELECT is read. Where Vitess checks nothing although rows or
// schema are read or changed, tabletd is stricter: LOAD DATA → WRITER, OPTIMIZE → ADMIN,
// nextval()/setval()/NEXT VALUE FOR a sequence → WRITER, the tables read by CREATE TABLE ...
// SELECT and CREATE VIEW ... AS SELECT, the source of CREATE TABLE ... LIKE and a foreign
// key's parent table → READER, subqueries of SET, DO, CALL, SHOW and EXPLAIN → READER, the
// tables of an EXPLAINed statement → the role of that statement. Tables that are
// only named (SHOW CREATE TABLE t, DESCRIBE t) get NoRole. CREATE and DROP PROCEDURE give
// the procedure name ADMIN, as Vitess does; the body's tables are checked when it runs (by
// MySQL: CALL has no table list).
//
// CTE names are not tables: a name without a database that matches (exactly, case
// included, so that no real table is ever hidden) a CTE in scope is skipped. A CTE is in
// scope in the rest of its statement and in the CTEs after it (of its own WITH clause only:
// see scopeFrame.barrier); in a WITH RECURSIVE also in
// its own definition.
type collector struct {
	roles     []roleFrame
	scopes    []scopeFrame
	overrides map[*ast.TableName]Role
	tables    []TableRef
	seen      map[TableRef]bool // once tables is long, for deduplication
}

// skipTable is an override for a table name that is not a table reference.
const skipTable Role = -1

type roleFrame struct {
	owner ast.Node
	role  Role
}

type scopeFrame struct {
	owner ast.Node // nil: popped by the code that pushed it
	names []string
	// barrier: the frame of a CTE's body. MariaDB resolves the names in a CTE body against
	// its own WITH clause only, never against the CTEs of an enclosing WITH (found by
	// FuzzPlanTablesMatchMariaDB): there such a name is the real table. MySQL 8 does see
	// the outer CTEs; listing the name as a table there is only stricter.
	barrier bool
}

// collectTables returns the tables of stmt, deduplicated per (qualifier, name, role) in the
// order they appear.
func collectTables(stmt ast.Node) []TableRef {
	c := &collector{}
	stmt.Accept(c)
	return c.tables
}

// Enter implements ast.Visitor.
func (c *collector) Enter(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *ast.TableName:
		c.table(n)
		return n, true
	case *ast.DeleteTableList, *ast.WithClause:
		// DELETE's target list names tables of the FROM clause, possibly by alias; WITH
		// clauses are walked by their statement (see with).
		return n, true
	case *ast.SelectStmt:
		c.push(n, Reader)
		c.with(n, n.With)
		if n.LockInfo != nil {
			for _, t := range n.LockInfo.Tables { // FOR UPDATE OF: FROM tables, maybe aliases
				c.override(t, skipTable)
			}
		}
	case *ast.SetOprStmt:
		c.push(n, Reader)
		c.with(n, n.With)
	case *ast.InsertStmt:
		c.push(n, Writer)
	case *ast.UpdateStmt:
		c.push(n, Writer)
		c.with(n, n.With)
	case *ast.DeleteStmt:
		c.push(n, Writer)
		c.with(n, n.With)
	case *ast.OptimizeTableStmt:
		for _, t := range n.Tables { // its Accept does not visit them
			c.add(t, Admin)
		}
	case *ast.CreateTableStmt:
		c.push(n, Admin)
		if n.ReferTable != nil {
			c.override(n.ReferTable, Reader)
		}
	case *ast.ProcedureInfo: // Vitess checks the procedure name as a table; Accept skips it
		c.push(n, Admin)
		c.add(n.ProcedureName, Admin)
	case *ast.DropProcedureStmt:
		c.add(n.ProcedureName, Admin)
	case ast.DDLNode, *ast.FlushStmt:
		c.push(n, Admin)
	case *ast.ReferenceDef:
		c.push(n, Reader)
	case *ast.AnalyzeTableStmt, *ast.LoadDataStmt:
		c.push(n, Writer)
	case *ast.ShowStmt, *ast.ExplainStmt, *ast.SetStmt, *ast.DoStmt, *ast.CallStmt:
		c.push(n, NoRole)
	case *ast.FuncCallExpr:
		if n.FnName.L == "nextval" || n.FnName.L == "setval" {
			c.push(n, Writer)
		}
	}
	return n, false
}

// Leave implements ast.Visitor.
func (c *collector) Leave(n ast.Node) (ast.Node, bool) {
	if k := len(c.roles) - 1; k >= 0 && c.roles[k].owner == n {
		c.roles = c.roles[:k]
	}
	if k := len(c.scopes) - 1; k >= 0 && c.scopes[k].owner == n {
		c.scopes = c.scopes[:k]
	}
	return n, true
}

func (c *collector) push(owner ast.Node, r Role) {
	c.roles = append(c.roles, roleFrame{owner: owner, role: r})
}

func (c *collector) override(t *ast.TableName, r Role) {
	if c.overrides == nil {
		c.overrides = map[*ast.TableName]Role{}
	}
	c.overrides[t] = r
}

// with walks the CTE definitions of owner's WITH clause, each with the CTEs visible to it,
// then puts all of them in scope for the rest of owner.
func (c *collector) with(owner ast.Node, w *ast.WithClause) {
	if w == nil {
		return
	}
	names := make([]string, len(w.CTEs))
	for i, cte := range w.CTEs {
		names[i] = cte.Name.O
	}
	for i, cte := range w.CTEs {
		visible := names[:i]
		if w.IsRecursive {
			visible = names[:i+1]
		}
		c.scopes = append(c.scopes, scopeFrame{names: visible, barrier: true})
		if cte.Query != nil {
			cte.Query.Accept(c)
		}
		c.scopes = c.scopes[:len(c.scopes)-1]
	}
	c.scopes = append(c.scopes, scopeFrame{owner: owner, names: names})
}

func (c *collector) table(t *ast.TableName) {
	if t.IsAlias || t.Schema.O == "" && c.isCTE(t.Name.O) {
		return
	}
	r := NoRole
	if k := len(c.roles); k > 0 {
		r = c.roles[k-1].role
	}
	if o, ok := c.overrides[t]; ok {
		if o == skipTable {
			return
		}
		r = o
	}
	c.add(t, r)
}

func (c *collector) isCTE(name string) bool {
	for i := len(c.scopes) - 1; i >= 0; i-- {
		s := c.scopes[i]
		for _, n := range s.names {
			if n == name {
				return true
			}
		}
		if s.barrier {
			return false
		}
	}
	return false
}

func (c *collector) add(t *ast.TableName, r Role) {
	if t == nil {
		return
	}
	ref := TableRef{Qualifier: t.Schema.O, Name: t.Name.O, Role: r}
	if len(c.tables) < 16 {
		c.tables = appendTable(c.tables, ref)
		return
	}
	if c.seen == nil {
		c.seen = make(map[TableRef]bool, 2*len(c.tables))
		for _, t := range c.tables {
			c.seen[t] = true
		}
	}
	if !c.seen[ref] {
		c.seen[ref] = true
		c.tables = append(c.tables, ref)
	}
}

// appendTable appends ref unless tables already has it.
func appendTable(tables []TableRef, ref TableRef) []TableRef {
	for _, t := range tables {
		if t == ref {
			return tables
		}
	}
	return append(tables, ref)
}
