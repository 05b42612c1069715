package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// column is one target column, as information_schema describes it.
type column struct {
	name       string
	charset    string // text columns only
	collation  string
	generated  bool
	nullable   bool
	columnType string
}

// indexPart is one column of an index.
type indexPart struct {
	column  string
	subPart int // prefix length, 0: whole column
	desc    bool
}

// index is a secondary key of a target table.
type index struct {
	name    string
	unique  bool
	kind    string // BTREE, HASH, FULLTEXT, SPATIAL
	parts   []indexPart
	comment string
}

// tableSchema is a target table: its columns in order and the columns that identify a row
// (the primary key; without one the first unique key of NOT NULL columns; without one every
// column, as vttablet's PK-equivalent rule).
type tableSchema struct {
	name      string
	columns   []column
	pk        []string
	secondary []index
}

func (t *tableSchema) column(name string) (column, bool) {
	for _, c := range t.columns {
		if strings.EqualFold(c.name, name) {
			return c, true
		}
	}
	return column{}, false
}

// loadSchema reads the base tables of dbName.
func loadSchema(ctx context.Context, c *dbConn, dbName string) (map[string]*tableSchema, error) {
	qr, err := c.exec(ctx, "select c.table_name, c.column_name, c.character_set_name, c.collation_name, c.extra, "+
		"c.is_nullable, c.column_type from information_schema.columns c join information_schema.tables t "+
		"on t.table_schema = c.table_schema and t.table_name = c.table_name "+
		"where c.table_schema = "+QuoteString(dbName)+" and t.table_type = 'BASE TABLE' order by c.table_name, c.ordinal_position")
	if err != nil {
		return nil, err
	}
	tables := map[string]*tableSchema{}
	for _, r := range qr.Rows {
		v, null := rowValues(r, 7)
		name := string(v[0])
		t := tables[name]
		if t == nil {
			t = &tableSchema{name: name}
			tables[name] = t
		}
		extra := strings.ToLower(string(v[4]))
		// MySQL 8 writes DEFAULT_GENERATED for expression defaults: not a generated column.
		generated := strings.Contains(extra, "virtual generated") || strings.Contains(extra, "stored generated") ||
			extra == "virtual" || extra == "persistent"
		col := column{name: string(v[1]), generated: generated, nullable: string(v[5]) == "YES", columnType: string(v[6])}
		if !null[2] {
			col.charset, col.collation = string(v[2]), string(v[3])
		}
		t.columns = append(t.columns, col)
	}
	if err := loadIndexes(ctx, c, dbName, tables); err != nil {
		return nil, err
	}
	return tables, nil
}

func loadIndexes(ctx context.Context, c *dbConn, dbName string, tables map[string]*tableSchema) error {
	qr, err := c.exec(ctx, "select table_name, index_name, non_unique, column_name, sub_part, index_type, collation, index_comment "+
		"from information_schema.statistics where table_schema = "+QuoteString(dbName)+" order by table_name, index_name, seq_in_index")
	if err != nil {
		return err
	}
	type key struct{ table, index string }
	byKey := map[key]*index{}
	var order []key
	for _, r := range qr.Rows {
		v, null := rowValues(r, 8)
		k := key{string(v[0]), string(v[1])}
		ix := byKey[k]
		if ix == nil {
			ix = &index{name: k.index, unique: string(v[2]) == "0", kind: strings.ToUpper(string(v[5])), comment: string(v[7])}
			byKey[k] = ix
			order = append(order, k)
		}
		p := indexPart{column: string(v[3]), desc: !null[6] && string(v[6]) == "D"}
		if !null[4] {
			p.subPart, _ = strconv.Atoi(string(v[4]))
		}
		ix.parts = append(ix.parts, p)
	}
	for _, k := range order {
		t := tables[k.table]
		if t == nil {
			continue // a view or a table created meanwhile
		}
		ix := byKey[k]
		if k.index == "PRIMARY" {
			for _, p := range ix.parts {
				t.pk = append(t.pk, p.column)
			}
			continue
		}
		t.secondary = append(t.secondary, *ix)
	}
	for _, t := range tables {
		if len(t.pk) == 0 {
			t.pk = pkEquivalent(t)
		}
	}
	return nil
}

// pkEquivalent is the first unique key (by name) whose columns are all NOT NULL and whole, else
// every column.
func pkEquivalent(t *tableSchema) []string {
	cands := make([]index, 0, len(t.secondary))
	for _, ix := range t.secondary {
		if ix.unique && ix.kind != "FULLTEXT" && ix.kind != "SPATIAL" {
			cands = append(cands, ix)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].name < cands[j].name })
next:
	for _, ix := range cands {
		var cols []string
		for _, p := range ix.parts {
			c, ok := t.column(p.column)
			if !ok || c.nullable || p.subPart > 0 {
				continue next
			}
			cols = append(cols, p.column)
		}
		return cols
	}
	cols := make([]string, 0, len(t.columns))
	for _, c := range t.columns {
		if !c.generated {
			cols = append(cols, c.name)
		}
	}
	return cols
}

// deferrable are the secondary keys the copy drops and re-adds afterwards (vttablet's
// defer_secondary_keys): every secondary key but FULLTEXT ones, whose rebuild needs a table
// copy anyway.
func (t *tableSchema) deferrable() []index {
	var out []index
	for _, ix := range t.secondary {
		if ix.kind != "FULLTEXT" && !ix.identifies(t.pk) {
			out = append(out, ix)
		}
	}
	return out
}

// indexDDL returns the ALTER TABLE clauses that drop and re-add keys.
func indexDDL(keys []index) (drop, add string) {
	var d, a []string
	for _, ix := range keys {
		d = append(d, "drop key "+QuoteID(ix.name))
		var parts []string
		for _, p := range ix.parts {
			s := QuoteID(p.column)
			if p.subPart > 0 {
				s += fmt.Sprintf("(%d)", p.subPart)
			}
			if p.desc {
				s += " desc"
			}
			parts = append(parts, s)
		}
		kind := "key"
		switch {
		case ix.kind == "SPATIAL":
			kind = "spatial key"
		case ix.unique:
			kind = "unique key"
		}
		s := fmt.Sprintf("add %s %s (%s)", kind, QuoteID(ix.name), strings.Join(parts, ", "))
		if ix.kind == "HASH" {
			s += " using hash"
		}
		if ix.comment != "" {
			s += " comment " + QuoteString(ix.comment)
		}
		a = append(a, s)
	}
	return strings.Join(d, ", "), strings.Join(a, ", ")
}

// identifies reports whether the index is exactly the columns that identify a row (a table
// without a primary key keeps the unique key the player finds rows by).
func (ix index) identifies(pk []string) bool {
	if len(ix.parts) != len(pk) {
		return false
	}
	for i, p := range ix.parts {
		if !strings.EqualFold(p.column, pk[i]) {
			return false
		}
	}
	return true
}
