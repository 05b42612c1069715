package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tableaclpb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
)

// TestTableACLBypassAttempts tries to get around the table ACL: aliases, quoting, qualified
// names, letter case, comments (MySQL's and MariaDB's executable ones too), joins, subqueries,
// derived tables, UNION, CTEs (shadowing a protected name, recursive), views, other schemas,
// information_schema, multi-statement strings and stored procedures. The ACL is loaded from
// the binary protobuf form of tableacl.Config and names a table that does not exist.
func TestTableACLBypassAttempts(t *testing.T) {
	t.Parallel()
	cfg := &tableaclpb.Config{TableGroups: []*tableaclpb.TableGroupSpec{
		{Name: "open", TableNamesOrPrefixes: []string{"pub%"}, Readers: []string{"alice", "bob", "carol"}, Writers: []string{"alice", "carol"}, Admins: []string{"alice", "carol"}},
		{Name: "secret", TableNamesOrPrefixes: []string{"orders"}, Readers: []string{"alice"}, Writers: []string{"alice"}, Admins: []string{"alice"}},
		{Name: "views", TableNamesOrPrefixes: []string{"v_%"}, Readers: []string{"alice"}, Admins: []string{"alice"}},
		{Name: "catalog", TableNamesOrPrefixes: []string{"information_schema.%"}, Readers: []string{"carol"}},
		{Name: "ghost", TableNamesOrPrefixes: []string{"no_such_table"}, Readers: []string{"bob"}},
	}}
	data, err := proto.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "acl.pb")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	q := newQT(t, func(c *tablet.Config) {
		c.TableACLFile = file
		c.EnforceTableACL = true
		c.Query.ACL.Strict = true
	})
	ctx := context.Background()
	as := q.as
	for _, sql := range []string{
		"create table orders (id int primary key)", "insert into orders values (1), (2)",
		"create table pub_items (id int primary key)", "insert into pub_items values (1)",
		"create view v_orders as select * from orders",
	} {
		if err := as("alice", sql); err != nil {
			t.Fatalf("alice: %s: %v", sql, err)
		}
	}
	const allowed, invalid = "", "<invalid>"
	for _, tc := range []struct {
		user, sql string
		denied    string // the table the denial must name; allowed; or invalid (refused as a whole)
	}{
		{"bob", "select o.id from orders as o", "orders"},
		{"bob", "select * from `orders` `pub_items`", "orders"},
		{"bob", "select * from `vt_commerce`.`orders`", "orders"},
		{"bob", "SELECT * FROM Orders", "Orders"},
		{"bob", "select * from pub_items /* orders */", allowed},
		{"bob", "select * from pub_items /*! join orders */", "orders"},
		{"bob", "select * from pub_items /*!50000 join orders */", "orders"},
		{"bob", "select * from pub_items /*M! join orders */", "orders"},
		{"bob", "select * from pub_items -- no orders here\n join orders on 1", "orders"},
		{"bob", "select * from pub_items p, orders p2", "orders"},
		{"bob", "select * from pub_items p join (select * from orders) t on p.id = t.id", "orders"},
		{"bob", "select id from pub_items union select id from orders", "orders"},
		{"bob", "select (select max(id) from orders) from pub_items", "orders"},
		{"bob", "select * from pub_items where exists (select 1 from orders)", "orders"},
		{"bob", "with orders as (select 1 as id) select * from orders", allowed}, // a CTE, not the table
		{"bob", "with orders as (select 1 as id) select * from vt_commerce.orders", "orders"},
		{"bob", "with x as (select id from orders) select * from pub_items join x", "orders"},
		{"bob", "with recursive r as (select 1 as n union all select n + 1 from r where n < 3) select * from r join orders", "orders"},
		{"bob", "select * from v_orders", "v_orders"}, // a view is checked by its own name
		{"bob", "select table_name from information_schema.tables", "information_schema.tables"},
		{"bob", "select * from mysql.user", "mysql.user"},
		{"bob", "select * from pub_items; select * from orders", invalid},
		{"bob", "call some_procedure()", "?"},
		{"bob", "set @x = (select max(id) from orders)", "orders"},
		{"carol", "insert into pub_items select * from orders", "orders"},
		{"carol", "insert into pub_items (id) values (9) on duplicate key update id = (select max(id) from orders)", "orders"},
		{"carol", "update pub_items p join orders o on p.id = o.id set p.id = p.id + 10", "orders"},
		{"carol", "delete p from pub_items p join orders o on p.id = o.id", "orders"},
		{"carol", "delete from pub_items where id in (select id from orders)", "orders"},
		{"carol", "create view pub_v as select * from orders", "orders"},
		{"carol", "create table pub_copy as select * from orders", "orders"},
		{"carol", "select table_name from information_schema.tables where table_schema = 'vt_commerce'", allowed},
		{"carol", "insert into pub_items values (5)", allowed},
		{"alice", "select * from v_orders", allowed},
		{"alice", "select o.id from orders o join pub_items p on o.id = p.id", allowed},
	} {
		err := as(tc.user, tc.sql)
		switch tc.denied {
		case allowed:
			if err != nil {
				t.Errorf("%s: %q: %v, want it allowed", tc.user, tc.sql, err)
			}
		case invalid:
			if code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
				t.Errorf("%s: %q: %v, want INVALID_ARGUMENT", tc.user, tc.sql, err)
			}
		default:
			msg := status.Convert(err).Message()
			if code(err) != vtrpcpb.Code_PERMISSION_DENIED || !strings.Contains(msg, "user '"+tc.user+"'") || !strings.Contains(msg, "table '"+tc.denied+"'") {
				t.Errorf("%s: %q: %v; want PERMISSION_DENIED naming user %s and table %s", tc.user, tc.sql, err, tc.user, tc.denied)
			}
		}
	}
	// An ACL naming a table that does not exist loads; the statement reaches MySQL, which
	// says the table is missing (errno 1146), not the ACL.
	if err := as("bob", "select * from no_such_table"); err == nil || code(err) == vtrpcpb.Code_PERMISSION_DENIED ||
		!strings.Contains(status.Convert(err).Message(), "errno 1146") {
		t.Errorf("select from a table only the ACL knows: %v, want MySQL's errno 1146", err)
	}
	// Nothing was changed by the refused statements.
	res, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target,
		ImmediateCallerId: &querypb.VTGateCallerID{Username: "alice"}, Query: &querypb.BoundQuery{Sql: "select id from pub_items order by id"}})
	if err != nil || len(res.Result.Rows) != 2 {
		t.Fatalf("pub_items after the attempts: %v %v, want rows 1 and 5", res.GetResult(), err)
	}
}
