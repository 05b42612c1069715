package plan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestTypeNames(t *testing.T) {
	// Vitess's plan names, in Vitess's order (planbuilder/plan.go), then Passthrough.
	want := "Select Nextval SelectImpossible SelectLockFunc Insert InsertMessage Update UpdateLimit " +
		"Delete DeleteLimit DDL Set OtherRead OtherAdmin SelectNoLimit SelectStream MessageStream " +
		"Savepoint Release RollbackSavepoint Show Load Flush UnlockTables CallProcedure " +
		"AlterMigration RevertMigration ShowMigrations ShowMigrationLogs ShowThrottledApps " +
		"ShowThrottlerStatus Passthrough"
	var names []string
	for typ := range numTypes {
		names = append(names, typ.String())
		if got, ok := TypeByName(typ.String()); !ok || got != typ {
			t.Errorf("TypeByName(%s) = %v, %v", typ, got, ok)
		}
	}
	if got := strings.Join(names, " "); got != want {
		t.Errorf("names:\n got %s\nwant %s", got, want)
	}
	if Type(-1).String() != "" || numTypes.String() != "" {
		t.Error("out-of-range types have names")
	}
	if _, ok := TypeByName("select"); ok {
		t.Error("TypeByName is not exact")
	}
	j, _ := json.Marshal([]Type{Select, DDL})
	if string(j) != `["Select","DDL"]` {
		t.Errorf("JSON %s", j)
	}
}

func TestTypeHelpers(t *testing.T) {
	for typ, want := range map[Type]Type{Select: SelectNoLimit, UpdateLimit: Update, DeleteLimit: Delete, Insert: Insert, Show: Show} {
		if got := typ.Unlimited(); got != want {
			t.Errorf("%s.Unlimited() = %s, want %s", typ, got, want)
		}
	}
	for _, typ := range []Type{Insert, Update, UpdateLimit, Delete, DeleteLimit, InsertMessage} {
		if !typ.IsDML() {
			t.Errorf("%s is DML", typ)
		}
	}
	if Select.IsDML() || DDL.IsDML() || Passthrough.IsDML() {
		t.Error("non-DML reported as DML")
	}
}

func TestRolesAndTableRefs(t *testing.T) {
	for r, want := range map[Role]string{NoRole: "NONE", Reader: "READER", Writer: "WRITER", Admin: "ADMIN", Role(9): ""} {
		if r.String() != want {
			t.Errorf("%d: %q", r, r.String())
		}
	}
	ref := TableRef{Qualifier: "DB", Name: "Users", Role: Reader}
	if ref.String() != "DB.Users" || (TableRef{Name: "t"}).String() != "t" {
		t.Errorf("String: %s", ref)
	}
	for _, tc := range []struct {
		q, n string
		want bool
	}{{"db", "users", true}, {"", "USERS", true}, {"other", "users", false}, {"db", "user", false}} {
		if got := ref.Matches(tc.q, tc.n); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v", tc.q, tc.n, got)
		}
	}
	if !(TableRef{Name: "t"}).Matches("db", "T") {
		t.Error("an unqualified reference matches any database")
	}
}

func TestPlanHelpers(t *testing.T) {
	b := NewBuilder()
	for sql, want := range map[string]string{
		"select * from t":                       "SelectStream",
		"select a from t union select b from u": "SelectStream",
		"show tables":                           "SelectStream",
		"show full processlist":                 "SelectStream",
		"explain select 1":                      "SelectStream",
		"call p()":                              "SelectStream",
		"analyze table t":                       "OtherRead",
		"select * from t for system_time all":   "SelectStream",
		"insert into t values (1)":              "error: INSERT not allowed for streaming",
		"select next 1 values from s":           "error: SELECT not allowed for streaming",
		"create table t (a int)":                "error: DDL not allowed for streaming",
	} {
		p, err := b.Build(sql)
		if err != nil {
			t.Fatal(err)
		}
		typ, err := p.StreamType()
		got := typ.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != want {
			t.Errorf("%s: StreamType %s, want %s", sql, got, want)
		}
	}
	p, err := b.Build("select * from t1 join t2 join db.t1 where t1.a = :a")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.TableNames(), ","); got != "t1,t2" {
		t.Errorf("TableNames: %s", got)
	}
	j, err := json.Marshal(p)
	if err != nil || !strings.Contains(string(j), `"Type":"Select"`) || !strings.Contains(string(j), `"Query":"select * from t1 join t2 join db.t1 where t1.a = :a"`) {
		t.Errorf("MarshalJSON: %s, %v", j, err)
	}
	p, _ = b.Build("select * from t where x = 1 garbage garbage")
	if j, _ := json.Marshal(p); !strings.Contains(string(j), `"ParseError":"`) {
		t.Errorf("MarshalJSON of a passthrough: %s", j)
	}
	if _, err := b.Build("begin"); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "Begin RPC") {
		t.Errorf("begin: %v", err)
	}
}
