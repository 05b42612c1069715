package plan

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Plan is what the tablet needs to know about one SQL text. Plans are immutable after
// Build and shared between goroutines: never modify one, its slices or its map.
type Plan struct {
	// Type is the plan type. For a Select, UpdateLimit or DeleteLimit the executor adds
	// the max-rows guard (LimitQuery); Type.Unlimited gives the type without it.
	Type Type
	// Fallback is Type, except for a Passthrough: the type the statement most likely has,
	// from its first keyword (see Build), for choosing a connection pool and transaction
	// handling. It is never Passthrough.
	Fallback Type
	// Statement is Vitess's statement type name: SELECT, INSERT, REPLACE, UPDATE, DELETE,
	// DDL, SET, SHOW, EXPLAIN, ANALYZE, ..., or the upper-cased first keyword of a
	// Passthrough.
	Statement string
	// Tables is every table the statement touches with the role it needs: joins,
	// subqueries, derived tables, UNION branches, CTE bodies (not CTE names), INSERT ...
	// SELECT, multi-table UPDATE and DELETE, views. One entry per (qualifier, name, role), in
	// order of appearance. See collector for the role rules.
	Tables []TableRef
	// TablesComplete reports that Tables lists every table: true for every plan built from a
	// syntax tree, false for a Passthrough whose SQL could not be read (its Tables is then
	// empty). The table ACL must not take an incomplete list as "no tables".
	TablesComplete bool
	// Target is the one table of a single-table statement (Vitess's plan.Table): the FROM
	// table of a one-table SELECT, the table of an INSERT, of a single-table UPDATE or
	// DELETE, the sequence of a Nextval, the table of FLUSH TABLES t; nil otherwise.
	Target *TableRef
	// Query is the SQL sent to MySQL: Leading, the statement, Trailing, with its bind
	// variables (Vitess's margin comments + FullQuery).
	Query *ParsedQuery
	// LimitQuery is Query with " limit :#maxLimit" added where the max-rows guard goes: set
	// for a SELECT or UNION without its own top-level LIMIT (when the place is certain) and
	// for UpdateLimit and DeleteLimit; nil otherwise, and then the executor sends Query and
	// counts rows itself. The executor binds #maxLimit to max rows + 1.
	LimitQuery *ParsedQuery
	// Where is the WHERE clause of an UPDATE or DELETE ("where id = :id"), for hot-row
	// protection (Vitess's WhereClause); nil if there is none or it cannot be cut out.
	Where *ParsedQuery
	// Leading and Trailing are the /* */ comments before and after the statement, as
	// Vitess's SplitMarginComments returns them (for query rules).
	Leading, Trailing string
	// Directives are the /*vt+ KEY=VALUE KEY2 */ hints in the statement's comments, keys
	// upper-cased, a bare key set to "true", a quoted value unquoted; nil if none.
	Directives map[string]string
	// HasLimit reports a top-level LIMIT on a SELECT or UNION.
	HasLimit bool
	// IsDML reports an INSERT, UPDATE or DELETE (also for a Passthrough whose Fallback is one).
	IsDML bool
	// WithoutWhere reports an UPDATE or DELETE without a WHERE clause.
	WithoutWhere bool
	// NeedsReservedConn reports a statement that leaves state on its connection: SET,
	// SELECT with get_lock(), CREATE/DROP TEMPORARY TABLE, FLUSH TABLES WITH READ LOCK.
	NeedsReservedConn bool
	// Cacheable reports that the plan may be cached: as in Vitess, SELECT, INSERT, REPLACE,
	// UPDATE and DELETE plans (also Passthrough plans with such a Fallback: they are as
	// deterministic and costlier to build), none with a SKIP_QUERY_PLAN_CACHE directive.
	Cacheable bool
	// NextCount and NextCountBindVar are a Nextval's count: the literal, or the name of
	// the bind variable holding it (then NextCount is 0).
	NextCount        int64
	NextCountBindVar string
	// ParseError is why the statement could not be read; non-nil exactly for Passthrough.
	ParseError error
}

// TableNames returns the names of the tables (without qualifier, deduplicated), for query
// rules' TableNames as vttablet matches them.
func (p *Plan) TableNames() []string {
	names := make([]string, len(p.Tables))
	for i, t := range p.Tables {
		names[i] = t.Name
	}
	return uniqueInOrder(names)
}

// StreamType returns the plan type for StreamExecute, as Vitess's BuildStreaming decides:
// SELECT, UNION, SHOW, EXPLAIN and CALL stream as SelectStream, ANALYZE as OtherRead;
// anything else is an error naming the statement. A Passthrough streams when its Fallback
// would.
func (p *Plan) StreamType() (Type, error) {
	switch {
	case p.Statement == "ANALYZE":
		return OtherRead, nil
	case p.Type == Nextval:
	case p.Fallback == Select || p.Fallback == SelectImpossible || p.Fallback == SelectLockFunc ||
		p.Fallback == Show || p.Fallback == OtherRead || p.Fallback == CallProcedure:
		return SelectStream, nil
	}
	return 0, fmt.Errorf("%s not allowed for streaming", p.Statement)
}

// MarshalJSON writes the plan for /debug/query_plans.
func (p *Plan) MarshalJSON() ([]byte, error) {
	type view struct {
		Type, Fallback    Type
		Statement         string
		Tables            []TableRef        `json:",omitempty"`
		TablesComplete    bool              `json:",omitempty"`
		Target            *TableRef         `json:",omitempty"`
		Query             *ParsedQuery      `json:",omitempty"`
		LimitQuery        *ParsedQuery      `json:",omitempty"`
		Where             *ParsedQuery      `json:",omitempty"`
		Directives        map[string]string `json:",omitempty"`
		NeedsReservedConn bool              `json:",omitempty"`
		ParseError        string            `json:",omitempty"`
		NextCount         int64             `json:",omitempty"`
		NextCountBindVar  string            `json:",omitempty"`
		HasLimit, IsDML   bool              `json:",omitempty"`
		WithoutWhere      bool              `json:",omitempty"`
		Leading, Trailing string            `json:",omitempty"`
	}
	v := view{Type: p.Type, Fallback: p.Fallback, Statement: p.Statement, Tables: p.Tables,
		TablesComplete: p.TablesComplete, Target: p.Target, Query: p.Query,
		LimitQuery: p.LimitQuery, Where: p.Where,
		Directives: p.Directives, NeedsReservedConn: p.NeedsReservedConn,
		NextCount: p.NextCount, NextCountBindVar: p.NextCountBindVar, HasLimit: p.HasLimit,
		IsDML: p.IsDML, WithoutWhere: p.WithoutWhere, Leading: p.Leading, Trailing: p.Trailing}
	if p.ParseError != nil {
		v.ParseError = p.ParseError.Error()
	}
	return json.Marshal(v)
}

// directives parses the /*vt+ ... */ comments of sc as Vitess's ParsedComments.Directives
// does: fields after "/*vt+" up to "*/", KEY=VALUE or KEY (= "true").
func directives(sc *scanned, into map[string]string) map[string]string {
	for _, t := range sc.toks {
		text := sc.str(t)
		if t.kind != tokComment || !strings.HasPrefix(text, "/*vt+") {
			continue
		}
		fields := strings.Fields(strings.TrimSuffix(text[len("/*vt+"):], "*/"))
		for _, f := range fields {
			key, val, ok := strings.Cut(f, "=")
			if !ok {
				val = "true"
			} else if u, err := strconv.Unquote(val); err == nil {
				val = u
			}
			if into == nil {
				into = map[string]string{}
			}
			into[strings.ToUpper(key)] = val
		}
	}
	return into
}
