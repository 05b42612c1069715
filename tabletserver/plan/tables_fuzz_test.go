package plan

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// fuzzDB is the database the differential fuzz targets run against.
const fuzzDB = "fz"

// realTables are the tables of fuzzDB; prot is the one an ACL would protect.
var realTables = []string{"prot", "a", "b"}

// startFuzzDB starts a MariaDB with fuzzDB and its tables, a few rows each (an empty table
// lets the optimizer drop it from the plan, which hides nothing but tests less).
func startFuzzDB(tb testing.TB) *sql.DB {
	tb.Helper()
	srv := mariadbtest.Start(tb, mariadbtest.Options{})
	stmts := []string{"CREATE DATABASE " + fuzzDB}
	for _, t := range realTables {
		stmts = append(stmts, "CREATE TABLE "+fuzzDB+"."+t+" (id INT PRIMARY KEY, v INT, b LONGBLOB)",
			"INSERT INTO "+fuzzDB+"."+t+" (id, v) VALUES (1, 1), (2, 2), (3, 3)")
	}
	srv.Exec(tb, stmts...)
	db, err := sql.Open("mysql", srv.DSN("root", "", fuzzDB))
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

// sqlGen turns fuzz bytes into one SELECT, UPDATE or DELETE over realTables with nested
// subqueries, joins, derived tables, CTEs (some named like real tables) and unions. Every
// table reference gets an alias <name>_<n>, so that EXPLAIN's table names say which name a
// base table was reached by.
type sqlGen struct {
	in    []byte
	pos   int
	depth int
	n     int
	ctes  []string // CTE names in scope
}

// pick returns a choice in [0, n): 0, the simplest (a leaf, no repetition), once the input
// is used up or the statement is large, so that generation always ends.
func (g *sqlGen) pick(n int) int {
	if g.pos >= len(g.in) || n <= 1 || g.n > 40 {
		return 0
	}
	c := int(g.in[g.pos])
	g.pos++
	return c % n
}

func (g *sqlGen) alias(name string) string {
	g.n++
	return name + "_" + strconv.Itoa(g.n)
}

func (g *sqlGen) statement() string {
	switch g.pick(5) {
	case 1:
		t := realTables[g.pick(len(realTables))]
		return "update " + t + " set v = v where " + g.cond()
	case 2:
		t := realTables[g.pick(len(realTables))]
		return "delete from " + t + " where " + g.cond()
	case 3:
		x, y := realTables[g.pick(3)], realTables[g.pick(3)]
		ax, ay := g.alias(x), g.alias(y)
		if g.pick(2) == 0 {
			return "update " + x + " as " + ax + " join " + y + " as " + ay + " on " + ax + ".id = " + ay + ".id set " + ax + ".v = " + ax + ".v where " + g.cond()
		}
		return "delete " + ax + " from " + x + " as " + ax + " join " + y + " as " + ay + " on 1 = 1 where " + g.cond()
	}
	return g.query()
}

// query is [WITH name AS (query)] core [UNION [ALL] core].
func (g *sqlGen) query() string {
	g.depth++
	defer func() { g.depth-- }()
	scope := len(g.ctes)
	defer func() { g.ctes = g.ctes[:scope] }()
	prefix := ""
	if g.depth < 4 && g.pick(3) == 1 {
		name := []string{"c1", "c2", "prot", "a"}[g.pick(4)]
		body := g.query() // a non-recursive CTE does not see itself
		g.ctes = append(g.ctes, name)
		prefix = "with " + name + " as (" + body + ") "
	}
	s := prefix + g.core()
	if g.depth < 4 && g.pick(4) == 1 {
		s += []string{" union ", " union all "}[g.pick(2)] + g.core()
	}
	return s
}

func (g *sqlGen) core() string {
	s := "select 1 as id, 1 as v, null as b from " + g.source()
	for g.depth < 4 && g.pick(3) == 1 {
		s += " join " + g.source() + " on 1 = 1"
	}
	if g.pick(2) == 1 {
		s += " where " + g.cond()
	}
	return s
}

func (g *sqlGen) source() string {
	if g.depth < 4 && g.pick(4) == 1 {
		return "(" + g.query() + ") as " + g.alias("d")
	}
	names := append(append([]string{}, realTables...), g.ctes...)
	name := names[g.pick(len(names))]
	return name + " as " + g.alias(name)
}

func (g *sqlGen) cond() string {
	if g.depth >= 4 {
		return "1 = 1"
	}
	switch g.pick(5) {
	case 1:
		return "1 in (select 1 from " + g.source() + ")"
	case 2:
		return "exists (" + g.query() + ")"
	case 3:
		return "(select count(*) from " + g.source() + ") >= 0"
	case 4:
		return "1 = 1 and " + g.cond()
	}
	return "1 = 1"
}

// explainedTables lists the base tables in MariaDB's EXPLAIN FORMAT=JSON: "table" objects
// that are neither derived nor materialized, by the name their alias carries.
func explainedTables(doc any, out map[string]bool) {
	switch v := doc.(type) {
	case map[string]any:
		if t, ok := v["table"].(map[string]any); ok {
			name, _ := t["table_name"].(string)
			_, materialized := t["materialized"]
			if name != "" && !strings.HasPrefix(name, "<") && !materialized {
				if i := strings.LastIndexByte(name, '_'); i > 0 {
					if _, err := strconv.Atoi(name[i+1:]); err == nil {
						name = name[:i]
					}
				}
				out[name] = true
			}
		}
		for _, x := range v {
			explainedTables(x, out)
		}
	case []any:
		for _, x := range v {
			explainedTables(x, out)
		}
	}
}

// FuzzPlanTablesMatchMariaDB is the differential check behind the table ACL: for generated
// statements, every table MariaDB's plan reads must be in the plan's table list. A table
// MariaDB reads that the plan misses would be read without an ACL check. Statements MariaDB
// refuses (e.g. 1093, a subquery on the table being updated) are skipped.
func FuzzPlanTablesMatchMariaDB(f *testing.F) {
	for _, seed := range []string{
		"", "\x00\x00\x00", "\x03\x00\x01\x02\x03\x04", "\x04\x00\x00\x00\x02\x01", "\x02\x00\x01\x00\x03\x00",
		"\x04\x00\x02\x02\x00\x01\x00\x00\x01\x02\x03", "\x04\x00\x00\x03\x01\x00\x00\x02\x00\x01",
	} {
		f.Add([]byte(seed))
	}
	db := startFuzzDB(f)
	var explained, refused atomic.Int64
	f.Cleanup(func() {
		e, r := explained.Load(), refused.Load()
		f.Logf("%d statements explained, %d refused by MariaDB", e, r)
		if r > 0 && e == 0 {
			f.Error("MariaDB refused every generated statement: the generator writes SQL MariaDB cannot run")
		}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		sql := (&sqlGen{in: in}).statement()
		p, err := Build(sql)
		if err != nil {
			t.Fatalf("%s: the plan builder refuses a statement MariaDB may run: %v", sql, err)
		}
		if !p.TablesComplete {
			t.Fatalf("%s: table list incomplete", sql)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var doc string
		if err := db.QueryRowContext(ctx, "explain format=json "+sql).Scan(&doc); err != nil {
			refused.Add(1)
			return
		}
		explained.Add(1)
		var parsed any
		if err := json.Unmarshal([]byte(doc), &parsed); err != nil {
			t.Fatalf("EXPLAIN output is not JSON: %v", err)
		}
		read := map[string]bool{}
		explainedTables(parsed, read)
		inPlan := map[string]bool{}
		for _, tr := range p.Tables {
			inPlan[tr.Name] = true
		}
		for _, name := range realTables {
			if read[name] && !inPlan[name] {
				t.Fatalf("MariaDB reads %s, the plan does not list it (an ACL bypass):\n%s\nplan tables %v", name, sql, p.Tables)
			}
		}
	})
}
