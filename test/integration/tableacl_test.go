package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// TestTableACL: the immediate caller needs the right role on every table a statement touches,
// and a broken file on reload keeps the ACL in force.
func TestTableACL(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "acl.json")
	writeACL := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeACL(`{"table_groups":[
		{"name":"open","table_names_or_prefixes":["pub%"],"readers":["alice","bob"],"writers":["alice"],"admins":["alice"]},
		{"name":"secret","table_names_or_prefixes":["orders"],"readers":["alice"],"writers":["alice"],"admins":["alice"]}]}`)
	q := newQT(t, func(c *tablet.Config) {
		c.TableACLFile = file
		c.Query.ACL.Strict = true
	})
	ctx := context.Background()
	as := q.as
	for _, sql := range []string{"create table orders (id int primary key)", "create table pub_items (id int primary key)"} {
		if err := as("alice", sql); err != nil {
			t.Fatalf("alice (admin): %s: %v", sql, err)
		}
	}
	for _, tc := range []struct {
		user, sql string
		denied    string // table named in the error; "" = allowed
	}{
		{"alice", "select * from orders", ""},
		{"bob", "select * from pub_items", ""},
		{"bob", "select * from orders", "orders"},
		{"bob", "select * from pub_items p join orders o on p.id = o.id", "orders"},
		{"bob", "select * from pub_items where id in (select id from `ORDERS`)", "ORDERS"},
		{"bob", "select * from vt_commerce.orders", "orders"},
		{"bob", "insert into pub_items values (1)", "pub_items"},
		{"bob", "with x as (select id from orders) select * from x", "orders"},
		{"bob", "select 1 from dual", ""},
	} {
		err := as(tc.user, tc.sql)
		if tc.denied == "" {
			if err != nil {
				t.Errorf("%s: %s: %v", tc.user, tc.sql, err)
			}
			continue
		}
		msg := status.Convert(err).Message()
		if code(err) != vtrpcpb.Code_PERMISSION_DENIED || !strings.Contains(msg, "'"+tc.user+"'") || !strings.Contains(msg, "'"+tc.denied+"'") {
			t.Errorf("%s: %s: got %v; want PERMISSION_DENIED naming %s and %s", tc.user, tc.sql, err, tc.user, tc.denied)
		}
	}
	// Streams and transactions are checked too.
	st, err := q.qs.StreamExecute(ctx, &querypb.StreamExecuteRequest{Target: q.target,
		ImmediateCallerId: &querypb.VTGateCallerID{Username: "bob"}, Query: &querypb.BoundQuery{Sql: "select * from orders"}})
	if err == nil {
		_, err = st.Recv()
	}
	if code(err) != vtrpcpb.Code_PERMISSION_DENIED {
		t.Errorf("StreamExecute as bob: %v", err)
	}
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target,
		ImmediateCallerId: &querypb.VTGateCallerID{Username: "bob"}, Query: &querypb.BoundQuery{Sql: "select * from orders"}})
	if err != nil || be.Error.GetCode() != vtrpcpb.Code_PERMISSION_DENIED {
		t.Errorf("BeginExecute as bob: %v %v", err, be.GetError())
	}
	if be.GetTransactionId() != 0 {
		_, _ = q.qs.Rollback(ctx, &querypb.RollbackRequest{Target: q.target, TransactionId: be.TransactionId})
	}

	// /debug/acl shows the ACL in force; /debug/query_plans the cached plans with their tables.
	if code, body := httpGet(t, "http://"+q.t.HTTPAddr()+"/debug/acl"); code != 200 || !strings.Contains(body, `"secret"`) {
		t.Errorf("/debug/acl: %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+q.t.HTTPAddr()+"/debug/query_plans"); code != 200 || !strings.Contains(body, "select * from orders") {
		t.Errorf("/debug/query_plans: %d %.300s", code, body)
	}
	// A broken file on reload: refused, the old ACL stays (bob still denied, alice allowed).
	writeACL(`{"table_groups":[{"name":"open","table_names_or_prefixes":["pub%"],"readers":["bob"]`)
	var reloadErr error
	if reloadErr = q.t.ReloadTableACL(); reloadErr == nil {
		t.Fatal("a malformed ACL file was accepted")
	}
	t.Logf("broken reload refused: %v", reloadErr)
	if err := as("bob", "select * from orders"); code(err) != vtrpcpb.Code_PERMISSION_DENIED {
		t.Fatalf("after a broken reload bob got %v: access opened", err)
	}
	if err := as("alice", "select * from orders"); err != nil {
		t.Fatalf("after a broken reload alice got %v", err)
	}
	_, page := httpGet(t, "http://"+q.t.HTTPAddr()+"/debug/status")
	if !strings.Contains(page, "stays in force") {
		t.Error("/debug/status does not show the failed reload")
	}
	// A good file takes effect.
	writeACL(`{"table_groups":[{"name":"all","table_names_or_prefixes":["%"],"readers":["bob"]}]}`)
	if err := q.t.ReloadTableACL(); err != nil {
		t.Fatal(err)
	}
	if err := as("bob", "select * from orders"); err != nil {
		t.Fatalf("after reload granting bob: %v", err)
	}
}

// TestTableACLBadFileAtStart: a tablet with an unreadable or malformed ACL file does not start.
func TestTableACLBadFileAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"table_groups":[{"table_names_or_prefixes":["a%b"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(t.TempDir(), "missing.json")} {
		// MySQL is never reached: the ACL file is read before anything connects.
		cfg := tabletConfig(e, &mariadbtest.Server{Host: "127.0.0.1", Port: 1}, tabletOpts{uid: 300})
		cfg.TableACLFile = path
		tb, err := tablet.New(cfg, tablet.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		err = tb.Open(context.Background())
		var ce *tablet.ConfigError
		if !errors.As(err, &ce) || !tablet.IsConfigError(err) {
			t.Fatalf("%s: Open = %v, want a configuration error", path, err)
		}
		t.Logf("refused: %v", err)
	}
}
