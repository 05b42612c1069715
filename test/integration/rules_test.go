package integration

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
)

// TestQueryRules: custom rules match DDL and the immediate caller, a broken file on reload
// keeps the rules in force, and the shard's denied tables give vttablet's FAIL_RETRY error.
func TestQueryRules(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "rules.json")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`[{"Name":"no_ddl_for_bob","Description":"bob may not change schemas","User":"bob","Plans":["DDL"]},
		{"Name":"no_big_scan","Description":"no scans of big","TableNames":["big"],"Query":"select \\* from big","Action":"FAIL_RETRY"},
		{"Name":"no_low_ids","Description":"ids below 100 are reserved","TableNames":["big"],"Plans":["Select"],
		 "BindVarConds":[{"Name":"id","OnAbsent":false,"Operator":"<","Value":100,"OnMismatch":false}]}]`)
	q := newQT(t, func(c *tablet.Config) { c.QueryRulesFile = file })
	ctx := context.Background()
	as := q.as
	withID := func(id int64) error {
		_, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
			Query: &querypb.BoundQuery{Sql: "select id from big where id = :id", BindVariables: map[string]*querypb.BindVariable{"id": i64(id)}}})
		return err
	}
	for _, tc := range []struct {
		user, sql string
		code      vtrpcpb.Code
		msg       string
	}{
		{"alice", "create table big (id int primary key)", vtrpcpb.Code_OK, ""},
		{"bob", "create table other (id int primary key)", vtrpcpb.Code_INVALID_ARGUMENT, "disallowed due to rule: bob may not change schemas"},
		{"bobby", "create table other2 (id int primary key)", vtrpcpb.Code_OK, ""},
		{"alice", "select * from big", vtrpcpb.Code_FAILED_PRECONDITION, "disallowed due to rule: no scans of big"},
		{"alice", "select id from big", vtrpcpb.Code_OK, ""},
	} {
		err := as(tc.user, tc.sql)
		if code(err) != tc.code || (tc.msg != "" && status.Convert(err).Message() != tc.msg) {
			t.Errorf("%s: %s: %v, want %v %q", tc.user, tc.sql, err, tc.code, tc.msg)
		}
	}
	// Bind-variable conditions: the rule matches the value sent, not the SQL text.
	for _, tc := range []struct {
		id   int64
		want vtrpcpb.Code
	}{{5, vtrpcpb.Code_INVALID_ARGUMENT}, {99, vtrpcpb.Code_INVALID_ARGUMENT}, {100, vtrpcpb.Code_OK}, {7000, vtrpcpb.Code_OK}} {
		if err := withID(tc.id); code(err) != tc.want {
			t.Errorf("select with :id = %d: %v, want %v", tc.id, err, tc.want)
		}
	}
	// A broken file (bad regexp) on reload: refused, the rules in force stay.
	write(`[{"Name":"broken","Query":"select ("}]`)
	if err := q.t.ReloadTableACL(); err == nil {
		t.Fatal("a rule with an invalid regexp was accepted")
	}
	if err := as("bob", "create table other3 (id int primary key)"); code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Fatalf("after a broken reload the old rule is gone: %v", err)
	}

	// Denied tables from the shard's tablet controls (a MoveTables cut-over), on RefreshState.
	var shard topodatapb.Shard
	key := path.Join(globalRoot, "keyspaces/commerce/shards/0/Shard")
	r := q.running
	e := q.e
	// Registration writes the shard record in the background: wait until it names this
	// tablet as primary, so our write is not raced by the tablet's own update.
	eventually(t, 10*time.Second, "shard names the tablet as primary", func() bool {
		return e.get(t, key, &shard) && shard.PrimaryAlias.GetUid() == 200
	})
	shard.TabletControls = []*topodatapb.Shard_TabletControl{{TabletType: topodatapb.TabletType_PRIMARY, DeniedTables: []string{"big"}}}
	e.put(t, key, &shard)
	if _, err := r.tm.RefreshState(ctx, &tabletmanagerdatapb.RefreshStateRequest{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "denied tables enforced", func() bool {
		err := as("alice", "select id from big")
		return code(err) == vtrpcpb.Code_FAILED_PRECONDITION && status.Convert(err).Message() == "disallowed due to rule: enforce denied tables"
	})
}
