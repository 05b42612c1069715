package vstreamer

import (
	"strings"
	"testing"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// customerTable is customer(customer_id bigint pk, email varchar, kind enum('a','b'), score int).
func customerTable() *tabletserver.TableSchema {
	return &tabletserver.TableSchema{Name: "customer", PKColumns: []int{0}, Fields: []*querypb.Field{
		{Name: "customer_id", Type: querypb.Type_INT64, Charset: 63},
		{Name: "email", Type: querypb.Type_VARCHAR, Charset: 45, ColumnType: "varchar(128)"},
		{Name: "kind", Type: querypb.Type_ENUM, Charset: 45, ColumnType: "enum('a','b''c')"},
		{Name: "score", Type: querypb.Type_INT32, Charset: 63},
	}, Charsets: []string{"", "utf8mb4", "utf8mb4", ""}}
}

// testVSchema: keyspace customer is sharded by hash on customer_id; commerce is unsharded.
func testVSchema() vschemaView {
	return vschemaView{keyspace: "customer", srv: &vschemapb.SrvVSchema{Keyspaces: map[string]*vschemapb.Keyspace{
		"customer": {Sharded: true, Vindexes: map[string]*vschemapb.Vindex{"hash": {Type: "hash"}, "lu": {Type: "consistent_lookup_unique"}},
			Tables: map[string]*vschemapb.Table{
				"customer": {ColumnVindexes: []*vschemapb.ColumnVindex{{Name: "lu", Column: "email"}, {Name: "hash", Column: "customer_id"}}},
			}},
		"commerce": {},
	}}}
}

func row(vals ...string) ([][]byte, []bool) {
	out := make([][]byte, len(vals))
	nulls := make([]bool, len(vals))
	for i, v := range vals {
		if v == "NULL" {
			nulls[i] = true
			continue
		}
		out[i] = []byte(v)
	}
	return out, nulls
}

func rowText(r *querypb.Row) string {
	vals := make([][]byte, len(r.Lengths))
	nulls := make([]bool, len(r.Lengths))
	splitRow(r, vals, nulls)
	parts := make([]string, len(vals))
	for i := range vals {
		parts[i] = string(vals[i])
		if nulls[i] {
			parts[i] = "NULL"
		}
	}
	return strings.Join(parts, "|")
}

// TestPlanFilters runs filters over rows: customer ids 1, 2, 3, 5 hash into -80, 0, 4, 6
// into 80- (Vitess's hash, see the golden file).
func TestPlanFilters(t *testing.T) {
	tests := []struct {
		name   string
		rules  []*binlogdatapb.Rule
		row    []string
		keep   bool
		sent   string // project() of a kept row
		fields string // names of the sent fields
	}{
		{name: "exact select star", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer"}},
			row: []string{"4", "x@y", "a", "7"}, keep: true, sent: "4|x@y|a|7", fields: "customer_id,email,kind,score"},
		{name: "empty filter is every row", rules: []*binlogdatapb.Rule{{Match: "customer"}},
			row: []string{"4", "x", "a", "1"}, keep: true, sent: "4|x|a|1", fields: "customer_id,email,kind,score"},
		{name: "regexp with key range -80 keeps 1", rules: []*binlogdatapb.Rule{{Match: "/.*", Filter: "-80"}},
			row: []string{"1", "x", "a", "1"}, keep: true, sent: "1|x|a|1", fields: "customer_id,email,kind,score"},
		{name: "regexp with key range -80 drops 4", rules: []*binlogdatapb.Rule{{Match: "/.*", Filter: "-80"}},
			row: []string{"4", "x", "a", "1"}},
		{name: "regexp 80- keeps 0", rules: []*binlogdatapb.Rule{{Match: "/cust.*/", Filter: "80-"}},
			row: []string{"0", "x", "a", "1"}, keep: true, sent: "0|x|a|1", fields: "customer_id,email,kind,score"},
		{name: "in_keyrange with ks.vindex", rules: []*binlogdatapb.Rule{{Match: "customer",
			Filter: "select * from customer where in_keyrange(customer_id, 'customer.hash', '80-')"}},
			row: []string{"6", "x", "a", "1"}, keep: true, sent: "6|x|a|1", fields: "customer_id,email,kind,score"},
		{name: "in_keyrange with vindex type drops", rules: []*binlogdatapb.Rule{{Match: "customer",
			Filter: "select * from `customer` where in_keyrange(`customer_id`, 'hash', '80-')"}},
			row: []string{"5", "x", "a", "1"}},
		{name: "one-argument in_keyrange uses the primary vindex", rules: []*binlogdatapb.Rule{{Match: "customer",
			Filter: "select * from customer where in_keyrange('-80')"}},
			row: []string{"3", "x", "a", "1"}, keep: true, sent: "3|x|a|1", fields: "customer_id,email,kind,score"},
		{name: "projection and keyspace_id()", rules: []*binlogdatapb.Rule{{Match: "customer",
			Filter: "select score, customer_id as cid, keyspace_id(), 1 from customer"}},
			row: []string{"1", "x", "a", "9"}, keep: true, sent: "9|1|\x16k@\xb4J\xbaK\xd6|1", fields: "score,customer_id,keyspace_id,1"},
		{name: "comparison keeps", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where score >= 10 and email = 'x'"}},
			row: []string{"1", "x", "a", "10"}, keep: true, sent: "1|x|a|10", fields: "customer_id,email,kind,score"},
		{name: "numeric comparison is numeric", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where score > 9"}},
			row: []string{"1", "x", "a", "10"}, keep: true, sent: "1|x|a|10", fields: "customer_id,email,kind,score"},
		{name: "comparison drops", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where score < 10"}},
			row: []string{"1", "x", "a", "10"}},
		{name: "in list", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where kind in ('b', 'a')"}},
			row: []string{"1", "x", "a", "10"}, keep: true, sent: "1|x|a|10", fields: "customer_id,email,kind,score"},
		{name: "not between", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where score not between 1 and 5"}},
			row: []string{"1", "x", "a", "3"}},
		{name: "is null", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where email is null"}},
			row: []string{"1", "NULL", "a", "3"}, keep: true, sent: "1|NULL|a|3", fields: "customer_id,email,kind,score"},
		{name: "NULL never equals", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where email != 'x'"}},
			row: []string{"1", "NULL", "a", "3"}},
		{name: "first matching rule wins", rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "select * from customer where score = 1"},
			{Match: "/.*"}}, row: []string{"1", "x", "a", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := buildPlan(customerTable(), &binlogdatapb.Filter{Rules: tc.rules}, testVSchema())
			if err != nil {
				t.Fatal(err)
			}
			vals, nulls := row(tc.row...)
			keep, _, err := p.keep(vals, nulls)
			if err != nil {
				t.Fatal(err)
			}
			if keep != tc.keep {
				t.Fatalf("keep = %v, want %v", keep, tc.keep)
			}
			if !keep {
				return
			}
			r, err := p.project(vals, nulls)
			if err != nil {
				t.Fatal(err)
			}
			if got := rowText(r); got != tc.sent {
				t.Errorf("sent %q, want %q", got, tc.sent)
			}
			var names []string
			for _, f := range p.sentFields() {
				names = append(names, f.Name)
			}
			if got := strings.Join(names, ","); got != tc.fields {
				t.Errorf("fields %s, want %s", got, tc.fields)
			}
		})
	}
}

func TestPlanSelection(t *testing.T) {
	for _, tc := range []struct {
		rules []*binlogdatapb.Rule
		sent  bool
	}{
		{rules: []*binlogdatapb.Rule{{Match: "orders"}}},
		{rules: []*binlogdatapb.Rule{{Match: "customer", Filter: "exclude"}, {Match: "/.*"}}},
		{rules: []*binlogdatapb.Rule{{Match: "/.*", Filter: "exclude"}}},
		{rules: []*binlogdatapb.Rule{{Match: "/^cust/"}}, sent: true},
	} {
		p, err := buildPlan(customerTable(), &binlogdatapb.Filter{Rules: tc.rules}, testVSchema())
		if err != nil {
			t.Fatal(err)
		}
		if (p != nil) != tc.sent {
			t.Errorf("rules %v: plan %v, want sent=%v", tc.rules, p != nil, tc.sent)
		}
	}
}

// TestPlanErrors: bad filters fail with a code and a message naming the problem.
func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		filter string
		code   vtrpcpb.Code
		says   string
	}{
		{"select nosuch from customer", vtrpcpb.Code_FAILED_PRECONDITION, "column nosuch not found in table customer"},
		{"select * from customer where in_keyrange(customer_id, 'hash', '8x-')", vtrpcpb.Code_INVALID_ARGUMENT, "malformed key range"},
		{"select * from customer where in_keyrange(customer_id, 'hash')", vtrpcpb.Code_INVALID_ARGUMENT, "want in_keyrange"},
		{"select * from customer where in_keyrange(customer_id, 'customer.nope', '-80')", vtrpcpb.Code_FAILED_PRECONDITION, "vindex customer.nope not found"},
		{"select * from customer where in_keyrange(customer_id, 'md5_unknown', '-80')", vtrpcpb.Code_INVALID_ARGUMENT, "not supported"},
		{"select upper(email) from customer", vtrpcpb.Code_INVALID_ARGUMENT, "unsupported function"},
		{"select * from customer where lower(email) = 'x'", vtrpcpb.Code_INVALID_ARGUMENT, "unsupported condition"},
		{"select * from orders", vtrpcpb.Code_INVALID_ARGUMENT, "selects from orders"},
		{"select * from customer, orders", vtrpcpb.Code_INVALID_ARGUMENT, "one table"},
		{"selec * from customer", vtrpcpb.Code_INVALID_ARGUMENT, "does not parse"},
		{"select 2 from customer", vtrpcpb.Code_INVALID_ARGUMENT, "only the integer literal 1"},
	} {
		_, err := buildPlan(customerTable(), &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "customer", Filter: tc.filter}}}, testVSchema())
		if err == nil {
			t.Errorf("%q: no error", tc.filter)
			continue
		}
		if rpcerr.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: %v (code %v), want %v saying %q", tc.filter, err, rpcerr.Code(err), tc.code, tc.says)
		}
	}
	// A key range on a table without a vindex in the VSchema.
	_, err := buildPlan(&tabletserver.TableSchema{Name: "t", Fields: customerTable().Fields},
		&binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "/.*", Filter: "-80"}}}, testVSchema())
	if rpcerr.Code(err) != vtrpcpb.Code_FAILED_PRECONDITION {
		t.Errorf("table without vindex: %v", err)
	}
	// A NULL vindex column cannot be mapped.
	p, err := buildPlan(customerTable(), &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "/.*", Filter: "-80"}}}, testVSchema())
	if err != nil {
		t.Fatal(err)
	}
	vals, nulls := row("NULL", "x", "a", "1")
	if _, _, err := p.keep(vals, nulls); rpcerr.Code(err) != vtrpcpb.Code_FAILED_PRECONDITION {
		t.Errorf("NULL keyspace id column: %v", err)
	}
}

func TestValidateFilter(t *testing.T) {
	for _, tc := range []struct {
		rules []*binlogdatapb.Rule
		ok    bool
	}{
		{rules: nil},
		{rules: []*binlogdatapb.Rule{{Match: "/[/"}}},
		{rules: []*binlogdatapb.Rule{{Match: "/.*", Filter: "8-0"}}},
		{rules: []*binlogdatapb.Rule{{Match: "t", Filter: "select * from t where in_keyrange(id, 'hash', '-8g')"}}},
		{rules: []*binlogdatapb.Rule{{Match: "t", Filter: "select * from t where in_keyrange(id, 'hash', '-80')"}}, ok: true},
		{rules: []*binlogdatapb.Rule{{Match: "t", Filter: "-80"}, {Match: "/.*", Filter: "exclude"}}, ok: true},
	} {
		err := validateFilter(&binlogdatapb.Filter{Rules: tc.rules})
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.rules, err, tc.ok)
		}
		if err != nil && rpcerr.Code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
			t.Errorf("%v: code %v", tc.rules, rpcerr.Code(err))
		}
	}
}

func TestScanSQL(t *testing.T) {
	ts := customerTable()
	ts.PKColumns = []int{0, 1}
	p, err := buildSelectPlan(ts, "select * from customer where score > 3", testVSchema())
	if err != nil {
		t.Fatal(err)
	}
	got := scanSQL(p, ts, ts.PKColumns, [][]byte{[]byte("7"), []byte("a'b")})
	want := "select `customer_id`, `email`, `kind`, `score` from `customer` where (`score`>3) and " +
		"((`customer_id` = 7 and `email` > _utf8mb4 X'612762') or (`customer_id` > 7)) order by `customer_id`, `email`"
	if got != want {
		t.Errorf("scanSQL:\n got %s\nwant %s", got, want)
	}
	p, _ = buildSelectPlan(ts, "select * from customer", testVSchema())
	if got := scanSQL(p, ts, ts.PKColumns, nil); got != "select `customer_id`, `email`, `kind`, `score` from `customer` force index (`PRIMARY`) order by `customer_id`, `email`" {
		t.Errorf("scanSQL without lastpk: %s", got)
	}
}

func TestEnumMembers(t *testing.T) {
	got := enumMembers(customerTable().Fields)[2]
	if strings.Join(got, "|") != "a|b'c" {
		t.Errorf("members %q", got)
	}
}
