package engine

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

var update = flag.Bool("update", false, "rewrite golden files")

// row builds a querypb.Row; nil is NULL.
func row(vals ...any) *querypb.Row {
	r := &querypb.Row{}
	for _, v := range vals {
		if v == nil {
			r.Lengths = append(r.Lengths, -1)
			continue
		}
		s := fmt.Sprint(v)
		r.Lengths = append(r.Lengths, int64(len(s)))
		r.Values = append(r.Values, s...)
	}
	return r
}

var customerSchema = &tableSchema{name: "customer",
	columns: []column{{name: "customer_id"}, {name: "email", charset: "utf8mb4", collation: "utf8mb4_general_ci", nullable: true},
		{name: "email_len", generated: true}, {name: "flags", nullable: true}},
	pk: []string{"customer_id"}}

var customerFields = []*querypb.Field{{Name: "customer_id", Type: querypb.Type_INT64}, {Name: "email", Type: querypb.Type_VARCHAR},
	{Name: "email_len", Type: querypb.Type_INT64}, {Name: "flags", Type: querypb.Type_BIT}}

var nokeySchema = &tableSchema{name: "nokey", columns: []column{{name: "a", nullable: true}, {name: "b", charset: "latin1", collation: "latin1_swedish_ci", nullable: true}}}

func init() { nokeySchema.pk = pkEquivalent(nokeySchema) }

var nokeyFields = []*querypb.Field{{Name: "a", Type: querypb.Type_INT32}, {Name: "b", Type: querypb.Type_VARBINARY}}

// TestRowSQL checks the statements the copy and the player write (testdata/rowsql.golden).
func TestRowSQL(t *testing.T) {
	var out strings.Builder
	lpk := &lastPK{fields: []*querypb.Field{{Name: "customer_id", Type: querypb.Type_INT64}}, row: row(500)}
	for _, tc := range []struct {
		name   string
		schema *tableSchema
		fields []*querypb.Field
		lastpk *lastPK
		rc     *binlogdatapb.RowChange
	}{
		{"insert", customerSchema, customerFields, nil, &binlogdatapb.RowChange{After: row(1, "a'b\\c\n", 3, "\x05")}},
		{"insert within lastpk", customerSchema, customerFields, lpk, &binlogdatapb.RowChange{After: row(7, "x", 1, nil)}},
		{"update", customerSchema, customerFields, nil, &binlogdatapb.RowChange{Before: row(1, "a", 1, nil), After: row(1, "bb", 2, nil)}},
		{"update within lastpk", customerSchema, customerFields, lpk, &binlogdatapb.RowChange{Before: row(1, "a", 1, nil), After: row(1, "b", 1, nil)}},
		{"key change", customerSchema, customerFields, nil, &binlogdatapb.RowChange{Before: row(1, "a", 1, nil), After: row(2, "a", 1, nil)}},
		{"delete", customerSchema, customerFields, lpk, &binlogdatapb.RowChange{Before: row(9, nil, nil, nil)}},
		{"partial image", customerSchema, customerFields, nil, &binlogdatapb.RowChange{Before: row(1, "a", 1, nil), After: row(1, "z", 1, nil),
			DataColumns: &binlogdatapb.RowChange_Bitmap{Count: 4, Cols: []byte{0b0011}}}},
		{"no key: null-safe", nokeySchema, nokeyFields, nil, &binlogdatapb.RowChange{Before: row(nil, "q"), After: row(4, "q")}},
	} {
		tp := &tablePlan{target: tc.schema, sourceTable: tc.schema.name, lastpk: tc.lastpk}
		fp, err := tp.fieldPlan(tc.fields, true)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fmt.Fprintf(&out, "-- %s\n", tc.name)
		for _, s := range fp.changeSQL(tc.rc) {
			fmt.Fprintln(&out, s)
		}
	}
	tp := &tablePlan{target: customerSchema}
	fp, _ := tp.fieldPlan(customerFields, true)
	fmt.Fprintf(&out, "-- copy batch\n%svalues %s,%s\n", fp.head, fp.appendRow(nil, row(1, "a", 1, "\x01")), fp.appendRow(nil, row(2, nil, 1, nil)))
	golden(t, "testdata/rowsql.golden", out.String())
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestFieldPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []*querypb.Field
	}{
		{"unknown column", []*querypb.Field{{Name: "customer_id", Type: querypb.Type_INT64}, {Name: "nope", Type: querypb.Type_INT64}}},
		{"no key column", []*querypb.Field{{Name: "email", Type: querypb.Type_VARCHAR}}},
	} {
		_, err := (&tablePlan{target: customerSchema}).fieldPlan(tc.fields, true)
		if rpcerr.Code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", tc.name, err)
		}
	}
}

// TestReplicatorPlan checks rule matching: exact and regexp matches, shard-range filters,
// exclude, projections, the tables left out while not yet copied, and bad filters.
func TestReplicatorPlan(t *testing.T) {
	schema := map[string]*tableSchema{"customer": customerSchema, "nokey": nokeySchema,
		"corder": {name: "corder", columns: []column{{name: "order_id"}, {name: "customer_id"}}, pk: []string{"order_id"}}}
	p := parser.New()
	for _, tc := range []struct {
		name    string
		rules   []*binlogdatapb.Rule
		copying map[string]*lastPK
		want    string // "source:query" sorted by target, or the error code
	}{
		{"movetables", []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from `customer`"}, {Match: "corder", Filter: "select * from `corder`"}}, nil,
			"corder<-corder:select * from `corder`; customer<-customer:select * from `customer`"},
		{"reshard", []*binlogdatapb.Rule{{Match: "nokey", Filter: "exclude"}, {Match: "/.*", Filter: "-80"}}, nil,
			"corder<-corder:select * from `corder` where in_keyrange('-80'); customer<-customer:select * from `customer` where in_keyrange('-80')"},
		{"keyrange function", []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where in_keyrange(customer_id, 'customer.hash', '80-')"}}, nil,
			"customer<-customer:select * from customer where in_keyrange(customer_id, 'customer.hash', '80-')"},
		{"projection from another table", []*binlogdatapb.Rule{{Match: "corder", Filter: "select id as order_id, cid as customer_id from orders"}}, nil,
			"corder<-orders:select id as order_id, cid as customer_id from orders"},
		{"not copied yet", []*binlogdatapb.Rule{{Match: "/.*"}}, map[string]*lastPK{"customer": nil, "nokey": {}},
			"corder<-corder:select * from `corder`; nokey<-nokey:select * from `nokey`"},
		{"missing column", []*binlogdatapb.Rule{{Match: "corder", Filter: "select order_id, nope from corder"}}, nil, "INVALID_ARGUMENT"},
		{"key not selected", []*binlogdatapb.Rule{{Match: "corder", Filter: "select customer_id from corder"}}, nil, "INVALID_ARGUMENT"},
		{"malformed in_keyrange", []*binlogdatapb.Rule{{Match: "corder", Filter: "select * from corder where in_keyrange(customer_id, 'hash')"}}, nil, "INVALID_ARGUMENT"},
		{"bad key range", []*binlogdatapb.Rule{{Match: "corder", Filter: "select * from corder where in_keyrange('-8')"}}, nil, "INVALID_ARGUMENT"},
		{"not a select", []*binlogdatapb.Rule{{Match: "corder", Filter: "delete from corder"}}, nil, "INVALID_ARGUMENT"},
		{"bad regexp", []*binlogdatapb.Rule{{Match: "/(/"}}, nil, "INVALID_ARGUMENT"},
		{"two sources into one", []*binlogdatapb.Rule{{Match: "corder", Filter: "select * from x"}, {Match: "customer", Filter: "select * from x"}}, nil, "INVALID_ARGUMENT"},
	} {
		plan, err := buildReplicatorPlan(p, &binlogdatapb.BinlogSource{Filter: &binlogdatapb.Filter{Rules: tc.rules}}, schema, tc.copying)
		var got string
		if err != nil {
			got = rpcerr.Code(err).String()
		} else {
			var parts []string
			for _, name := range []string{"corder", "customer", "nokey"} {
				if tp := plan.byTarget[name]; tp != nil {
					parts = append(parts, name+"<-"+tp.sourceTable+":"+tp.query)
				}
			}
			got = strings.Join(parts, "; ")
		}
		if got != tc.want {
			t.Errorf("%s: got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if m := missingTables(&binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "gone"}, {Match: "/.*"}, {Match: "corder"}}}, schema); strings.Join(m, ",") != "gone" {
		t.Errorf("missingTables = %v", m)
	}
}

func TestParseTabletTypes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "in_order:REPLICA,PRIMARY"},
		{"in_order:replica,primary", "in_order:REPLICA,PRIMARY"},
		{"PRIMARY", "PRIMARY"},
		{"rdonly, replica", "RDONLY,REPLICA"},
		{"master", "PRIMARY"},
	} {
		tt, err := parseTabletTypes(tc.in)
		if err != nil || tt.String() != tc.want {
			t.Errorf("parseTabletTypes(%q) = %s, %v; want %s", tc.in, tt, err, tc.want)
		}
	}
	if _, err := parseTabletTypes("leader"); rpcerr.Code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Errorf("unknown type: %v", err)
	}
}

func TestTerminalErrors(t *testing.T) {
	for _, tc := range []struct {
		err      error
		terminal bool
	}{
		{rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "bad filter"), true},
		{rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "binlog_row_image"), true},
		{rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "wrong tablet type"), false},
		{rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "connection refused"), false},
		{fmt.Errorf("vttablet: Duplicate entry '1' for key 'PRIMARY' (errno 1062) (sqlstate 23000)"), true},
		{fmt.Errorf("Could not find GTID state requested by slave in any binlog files (errno 1236) (sqlstate HY000)"), true},
		{fmt.Errorf("Lock wait timeout exceeded (errno 1205) (sqlstate HY000)"), false},
	} {
		if got := isTerminal(tc.err); got != tc.terminal {
			t.Errorf("isTerminal(%v) = %v", tc.err, got)
		}
	}
	msg := explain(fmt.Errorf("x (errno 1236) (sqlstate HY000)"), "MariaDB/0-1-5")
	if !strings.Contains(msg, "purged past position MariaDB/0-1-5") {
		t.Errorf("explain: %s", msg)
	}
}

// TestNetChanges: the end state of each key, written as one delete and one upsert; and
// which tables qualify.
func TestNetChanges(t *testing.T) {
	fp, err := (&tablePlan{target: customerSchema}).fieldPlan(customerFields, true)
	if err != nil {
		t.Fatal(err)
	}
	if !fp.net {
		t.Fatal("customer (integer key, no other unique key, full rows) does not qualify")
	}
	var n netChanges
	for _, rc := range []*binlogdatapb.RowChange{
		{After: row(1, "a", 1, nil)},                              // insert 1
		{Before: row(1, "a", 1, nil), After: row(1, "b", 1, nil)}, // update 1: last image wins
		{Before: row(2, "x", 1, nil)},                             // delete 2
		{After: row(2, "y", 1, nil)},                              // re-insert 2: an upsert
		{Before: row(3, "z", 1, nil), After: row(4, "z", 1, nil)}, // key change: delete 3, upsert 4
		{After: row(5, "t", 1, nil)},                              // insert then delete 5: a delete
		{Before: row(5, "t", 1, nil)},
	} {
		if !n.add(fp, rc) {
			t.Fatalf("change %v not netted", rc)
		}
	}
	if n.add(fp, &binlogdatapb.RowChange{Before: row(1, "b", 1, nil), After: row(1, "c", 1, nil),
		DataColumns: &binlogdatapb.RowChange_Bitmap{Count: 4, Cols: []byte{0b0011}}}) {
		t.Fatal("a partial image was netted")
	}
	got := strings.Join(n.tables[fp].statements(), "\n") + "\n"
	golden(t, "testdata/netchange.golden", got)

	for _, tc := range []struct {
		name   string
		schema *tableSchema
		fields []*querypb.Field
		lastpk *lastPK
		want   bool
	}{
		{"text key", &tableSchema{name: "t", columns: []column{{name: "k", charset: "utf8mb4", collation: "utf8mb4_general_ci"}, {name: "v"}}, pk: []string{"k"}},
			[]*querypb.Field{{Name: "k", Type: querypb.Type_VARCHAR}, {Name: "v", Type: querypb.Type_INT64}}, nil, false},
		{"other unique key", &tableSchema{name: "t", columns: []column{{name: "id"}, {name: "u"}}, pk: []string{"id"},
			secondary: []index{{name: "uk", unique: true, parts: []indexPart{{column: "u"}}}}},
			[]*querypb.Field{intField("id"), intField("u")}, nil, false},
		{"being copied", customerSchema, customerFields, &lastPK{}, false},
		{"projection of some columns", customerSchema, customerFields[:2], nil, false},
		{"no key", nokeySchema, nokeyFields, nil, false},
	} {
		fp, err := (&tablePlan{target: tc.schema, lastpk: tc.lastpk}).fieldPlan(tc.fields, true)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if fp.net != tc.want {
			t.Errorf("%s: qualifies %v, want %v", tc.name, fp.net, tc.want)
		}
	}
}
