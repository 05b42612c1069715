package schema

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func TestTableFilter(t *testing.T) {
	type table struct{ name, typ string }
	all := []table{{"orders", typeBaseTable}, {"Customer", typeBaseTable}, {"orders_v", typeView}, {"s1", "SEQUENCE"}, {"log_2024", typeBaseTable}}
	for _, tc := range []struct {
		name         string
		tables, excl []string
		views        bool
		want         []string
	}{
		{"everything but views", nil, nil, false, []string{"orders", "Customer", "s1", "log_2024"}},
		{"views too", nil, nil, true, []string{"orders", "Customer", "orders_v", "s1", "log_2024"}},
		{"names are case-insensitive", []string{"customer", "ORDERS"}, nil, true, []string{"orders", "Customer"}},
		{"regexp", []string{"/^orders/"}, nil, true, []string{"orders", "orders_v"}},
		{"regexp and name", []string{"/_[0-9]+$/", "s1"}, nil, false, []string{"s1", "log_2024"}},
		{"exclusion wins", []string{"/.*/"}, []string{"orders", "/^log_/"}, true, []string{"Customer", "orders_v", "s1"}},
		{"a view asked for by name without views", []string{"orders_v"}, nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newTableFilter(tc.tables, tc.excl, tc.views)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tb := range all {
				if f.includes(tb.name, tb.typ) {
					got = append(got, tb.name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range [][2][]string{{{"/(/"}, nil}, {nil, {"/[z-a]/"}}} {
		if _, err := newTableFilter(bad[0], bad[1], false); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT)) {
			t.Errorf("filter %q/%q: error %v, want INVALID_ARGUMENT", bad[0], bad[1], err)
		}
	}
}

func TestIsInternalTable(t *testing.T) {
	for name, want := range map[string]bool{
		"_vt_hld_6ace8bcef73211ea87e9f875a4d24e90_20200915120410_": true,
		"_vt_vrp_6ace8bcef73211ea87e9f875a4d24e90_20200915120410_": true,
		"_vt_HOLD_6ace8bcef73211ea87e9f875a4d24e90_20200915120410": true,
		"_4e5dcf80_354b_11eb_82cd_f875a4d24e90_20201203114014_gho": true,
		"_orders_old": true,
		"orders":      false,
		"_vt_hld_6ace8bcef73211ea87e9f875a4d24e90_20200915120410": false,
		"vt_orders_old_x": false,
	} {
		if got := isInternalTable(name); got != want {
			t.Errorf("isInternalTable(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDiffSchemas(t *testing.T) {
	td := func(name, typ, schema string) *tabletmanagerdatapb.TableDefinition {
		return &tabletmanagerdatapb.TableDefinition{Name: name, Type: typ, Schema: schema}
	}
	sd := func(db string, tds ...*tabletmanagerdatapb.TableDefinition) *tabletmanagerdatapb.SchemaDefinition {
		return &tabletmanagerdatapb.SchemaDefinition{DatabaseSchema: db, TableDefinitions: tds}
	}
	base := sd("CREATE DATABASE {{.DatabaseName}}", td("a", typeBaseTable, "CREATE TABLE a"), td("v", typeView, "CREATE VIEW v"))
	for _, tc := range []struct {
		name        string
		left, right *tabletmanagerdatapb.SchemaDefinition
		want        []string // a fragment of each difference, in order
	}{
		{"equal", base, sd(base.DatabaseSchema, td("a", typeBaseTable, "CREATE TABLE a"), td("v", typeView, "CREATE VIEW v")), nil},
		{"both nil", nil, nil, nil},
		{"one nil", base, nil, []string{"schemas are different"}},
		{"database", base, sd("CREATE DATABASE x", base.TableDefinitions...), []string{"schemas are different"}},
		{"definition and type", base, sd(base.DatabaseSchema, td("a", typeBaseTable, "CREATE TABLE a2"), td("v", typeBaseTable, "CREATE VIEW v")),
			[]string{"schemas differ on table a", "schemas differ on table type for table v"}},
		{"extra tables and views on either side", base, sd(base.DatabaseSchema, td("0", typeBaseTable, ""), td("a", typeBaseTable, "CREATE TABLE a")),
			[]string{"right has an extra table named 0", "left has an extra view named v"}},
		{"internal tables are ignored", sd(base.DatabaseSchema, td("_a_old", typeBaseTable, "x")), sd(base.DatabaseSchema, td("_vt_hld_6ace8bcef73211ea87e9f875a4d24e90_20200915120410_", typeBaseTable, "y")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diffSchemas("left", tc.left, "right", tc.right)
			if len(got) != len(tc.want) {
				t.Fatalf("diffs %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("diff %d is %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}
