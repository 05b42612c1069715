package integration

import (
	"context"
	"io"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
)

// TestMaxDMLRows: a DML affecting more rows than --queryserver-config-max-dml-rows fails with
// ABORTED and is undone — in autocommit, inside a transaction (which stays usable, with its
// earlier work intact) and on a reserved connection; DMLs within the cap run normally.
func TestMaxDMLRows(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) { c.Query.Query.MaxDMLRows = 3 })
	ctx := context.Background()
	q.mustExec(t, 0, "create table t (id int primary key, n int not null)", nil)
	q.mustExec(t, 0, "insert into t values (1,0),(2,0),(3,0)", nil) // exactly the cap
	q.mustExec(t, 0, "insert into t select id + 3, 0 from t", nil)  // 3 more: 6 rows
	state := func() string {
		t.Helper()
		return values(q.mustExec(t, 0, "select count(*), sum(n) from t", nil))[0][0] + "/" +
			values(q.mustExec(t, 0, "select count(*), sum(n) from t", nil))[0][1]
	}
	if got := state(); got != "6/0" {
		t.Fatalf("setup: %s", got)
	}
	for _, tc := range []struct {
		sql  string
		want vtrpcpb.Code
		then string // count/sum afterwards
	}{
		{"update t set n = n + 1 where id <= 3", vtrpcpb.Code_OK, "6/3"},
		{"update t set n = n + 1", vtrpcpb.Code_ABORTED, "6/3"},
		{"delete from t where id > 2", vtrpcpb.Code_ABORTED, "6/3"},
		{"insert into t values (7,0),(8,0),(9,0),(10,0)", vtrpcpb.Code_ABORTED, "6/3"},
		{"insert into t values (1,0)", vtrpcpb.Code_ALREADY_EXISTS, "6/3"}, // MySQL's error, rolled back
		{"delete from t where id = 6", vtrpcpb.Code_OK, "5/3"},
	} {
		_, err := q.exec(t, 0, tc.sql, nil)
		if code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.sql, err, tc.want)
		}
		if got := state(); got != tc.then {
			t.Errorf("after %s: count/sum %s, want %s", tc.sql, got, tc.then)
		}
	}

	// In a transaction: the oversized statement alone is undone; the transaction goes on.
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		Query: &querypb.BoundQuery{Sql: "insert into t values (20, 100)"}})
	if err != nil || be.Error != nil {
		t.Fatalf("BeginExecute: %v %v", err, be.GetError())
	}
	if _, err := q.exec(t, be.TransactionId, "update t set n = n + 1000", nil); code(err) != vtrpcpb.Code_ABORTED {
		t.Fatalf("oversized update in a transaction: %v", err)
	}
	q.mustExec(t, be.TransactionId, "insert into t values (21, 200)", nil)
	if _, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: be.TransactionId}); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "7/303" {
		t.Fatalf("after the transaction: count/sum %s, want 7/303 (both inserts, no update)", got)
	}

	// A reserved connection outside a transaction behaves like autocommit.
	re, err := q.qs.ReserveExecute(ctx, &querypb.ReserveExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		PreQueries: []string{"set @@session.sql_mode = 'STRICT_ALL_TABLES'"}, Query: &querypb.BoundQuery{Sql: "delete from t"}})
	if err != nil || re.Error.GetCode() != vtrpcpb.Code_ABORTED || re.ReservedId == 0 {
		t.Fatalf("oversized delete on a reserved connection: %v %v", err, re)
	}
	r, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller, ReservedId: re.ReservedId,
		Query: &querypb.BoundQuery{Sql: "delete from t where id in (20, 21)"}})
	if err != nil || r.Result.RowsAffected != 2 {
		t.Fatalf("delete within the cap on the reserved connection: %v %v", err, r)
	}
	if _, err := q.qs.Release(ctx, &querypb.ReleaseRequest{Target: q.target, ReservedId: re.ReservedId}); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "5/3" {
		t.Fatalf("after the reserved connection: count/sum %s, want 5/3", got)
	}
	waitIdle(t, q)
}

// TestMaxDMLRowsStreamed: vtgate streams DML in OLAP mode; the cap holds there too.
func TestMaxDMLRowsStreamed(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) { c.Query.Query.MaxDMLRows = 1 })
	q.mustExec(t, 0, "create table t (id int primary key)", nil)
	q.mustExec(t, 0, "insert into t values (1)", nil)
	stream := func(sql string) error {
		st, err := q.qs.StreamExecute(context.Background(), &querypb.StreamExecuteRequest{Target: q.target,
			ImmediateCallerId: q.caller, Query: &querypb.BoundQuery{Sql: sql}})
		for err == nil {
			_, err = st.Recv()
		}
		if err == io.EOF {
			return nil
		}
		return err
	}
	if err := stream("insert into t values (2), (3)"); code(err) != vtrpcpb.Code_ABORTED {
		t.Fatalf("oversized streamed insert: %v", err)
	}
	if err := stream("insert into t values (2)"); err != nil {
		t.Fatalf("streamed insert within the cap: %v", err)
	}
	if n := values(q.mustExec(t, 0, "select count(*) from t", nil))[0][0]; n != "2" {
		t.Fatalf("rows after the streamed inserts: %s, want 2", n)
	}
	waitIdle(t, q)
}
