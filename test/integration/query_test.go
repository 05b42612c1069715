package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// qt is a primary tablet on a fresh MariaDB with database vt_commerce, for query tests.
type qt struct {
	*running
	e      *env
	db     *mariadbtest.Server
	target *querypb.Target
	caller *querypb.VTGateCallerID
}

func newQT(t *testing.T, tweak func(*tablet.Config)) *qt {
	t.Helper()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	cfg := tabletConfig(e, db, tabletOpts{uid: 200, initType: topodatapb.TabletType_PRIMARY})
	if tweak != nil {
		tweak(&cfg)
	}
	r := startTablet(t, cfg)
	r.health(t).until(10*time.Second, "serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	return &qt{running: r, e: e, db: db, caller: &querypb.VTGateCallerID{Username: "alice"},
		target: &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}}
}

func i64(n int64) *querypb.BindVariable {
	return &querypb.BindVariable{Type: querypb.Type_INT64, Value: []byte(fmt.Sprint(n))}
}

func str(s string) *querypb.BindVariable {
	return &querypb.BindVariable{Type: querypb.Type_VARCHAR, Value: []byte(s)}
}

func (q *qt) exec(t *testing.T, txID int64, sql string, bv map[string]*querypb.BindVariable) (*querypb.QueryResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		Query: &querypb.BoundQuery{Sql: sql, BindVariables: bv}, TransactionId: txID})
	return r.GetResult(), err
}

func (q *qt) mustExec(t *testing.T, txID int64, sql string, bv map[string]*querypb.BindVariable) *querypb.QueryResult {
	t.Helper()
	r, err := q.exec(t, txID, sql, bv)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return r
}

// values decodes a result's rows into strings (NULL as "NULL").
func values(r *querypb.QueryResult) [][]string {
	var out [][]string
	for _, row := range r.Rows {
		var vals []string
		off := int64(0)
		for _, l := range row.Lengths {
			if l < 0 {
				vals = append(vals, "NULL")
				continue
			}
			vals = append(vals, string(row.Values[off:off+l]))
			off += l
		}
		out = append(out, vals)
	}
	return out
}

// as runs sql through Execute with user as the immediate caller (vtgate's VTGateCallerID).
func (q *qt) as(user, sql string) error {
	_, err := q.qs.Execute(context.Background(), &querypb.ExecuteRequest{Target: q.target,
		ImmediateCallerId: &querypb.VTGateCallerID{Username: user}, Query: &querypb.BoundQuery{Sql: sql}})
	return err
}

func code(err error) vtrpcpb.Code { return vtrpcpb.Code(status.Code(err)) }

func TestQueryBasics(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	q.mustExec(t, 0, "create table t (id bigint primary key auto_increment, name varchar(64), n int unsigned)", nil)
	res := q.mustExec(t, 0, "insert into t (name, n) values (:a, :n), (:b, null)", map[string]*querypb.BindVariable{
		"a": str(`it's "quoted" \ back`), "b": str("bob"), "n": i64(7)})
	if res.RowsAffected != 2 || res.InsertId != 1 {
		t.Fatalf("insert: rows_affected %d insert_id %d", res.RowsAffected, res.InsertId)
	}
	res = q.mustExec(t, 0, "select id, name, n from t where id in ::ids order by id", map[string]*querypb.BindVariable{
		"ids": {Type: querypb.Type_TUPLE, Values: []*querypb.Value{{Type: querypb.Type_INT64, Value: []byte("1")}, {Type: querypb.Type_INT64, Value: []byte("2")}}}})
	got := values(res)
	want := [][]string{{"1", `it's "quoted" \ back`, "7"}, {"2", "bob", "NULL"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
	if len(res.Fields) != 3 || res.Fields[0].Type != querypb.Type_INT64 || res.Fields[1].Type != querypb.Type_VARCHAR ||
		res.Fields[2].Type != querypb.Type_UINT32 || res.Fields[0].Name != "id" {
		t.Fatalf("fields %v", res.Fields)
	}

	// included_fields ALL: full metadata, the keyspace shown as the database.
	all, err := q.qs.Execute(context.Background(), &querypb.ExecuteRequest{Target: q.target,
		Query:   &querypb.BoundQuery{Sql: "select id as ident, name from t as tt where id = 1"},
		Options: &querypb.ExecuteOptions{IncludedFields: querypb.ExecuteOptions_ALL}})
	if err != nil {
		t.Fatal(err)
	}
	f := all.Result.Fields[0]
	if f.Name != "ident" || f.OrgName != "id" || f.Table != "tt" || f.OrgTable != "t" || f.Database != "commerce" ||
		f.Flags&uint32(querypb.MySqlFlag_PRI_KEY_FLAG) == 0 || f.ColumnLength == 0 || f.Charset != 63 {
		t.Fatalf("ALL field metadata: %v", f)
	}

	// Errors carry vttablet's code and the MySQL errno/sqlstate vtgate extracts.
	for _, tc := range []struct {
		sql   string
		bv    map[string]*querypb.BindVariable
		code  vtrpcpb.Code
		errno string
	}{
		{"insert into t (id, name) values (1, 'dup')", nil, vtrpcpb.Code_ALREADY_EXISTS, "(errno 1062) (sqlstate 23000)"},
		{"selec 1", nil, vtrpcpb.Code_INVALID_ARGUMENT, "(errno 1064) (sqlstate 42000)"},
		{"select * from nosuch", nil, vtrpcpb.Code_NOT_FOUND, "(errno 1146) (sqlstate 42S02)"},
		{"select * from t where id = :missing", nil, vtrpcpb.Code_INVALID_ARGUMENT, "missing"},
	} {
		_, err := q.exec(t, 0, tc.sql, tc.bv)
		if code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.errno) {
			t.Errorf("%s: %v (code %v), want %v with %q", tc.sql, err, code(err), tc.code, tc.errno)
		}
	}

	// /debug/query_stats counts per statement, errors included.
	_, stats := httpGet(t, "http://"+q.t.HTTPAddr()+"/debug/query_stats")
	var rows []struct {
		Query                  string
		QueryCount, ErrorCount int64
	}
	if err := json.Unmarshal([]byte(stats), &rows); err != nil {
		t.Fatalf("/debug/query_stats: %v\n%s", err, stats)
	}
	seen := map[string][2]int64{}
	for _, r := range rows {
		seen[r.Query] = [2]int64{r.QueryCount, r.ErrorCount}
	}
	if got := seen["insert into t (id, name) values (1, 'dup')"]; got != [2]int64{1, 1} {
		t.Errorf("query_stats for the failed insert: %v (all: %v)", got, seen)
	}

	// Target checks, with the codes vtgate's retry logic relies on.
	bad := []*querypb.Target{
		{Keyspace: "other", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY},
		{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_REPLICA},
	}
	wantCodes := []codes.Code{codes.InvalidArgument, codes.FailedPrecondition}
	for i, tg := range bad {
		_, err := q.qs.Execute(context.Background(), &querypb.ExecuteRequest{Target: tg, Query: &querypb.BoundQuery{Sql: "select 1"}})
		if status.Code(err) != wantCodes[i] {
			t.Errorf("target %v: %v", tg, err)
		}
	}
}

func TestTransactionsAndReserved(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	ctx := context.Background()
	q.mustExec(t, 0, "create table t (id int primary key, v varchar(10))", nil)

	// Commit makes the row visible; the ID is then gone, with vttablet's words.
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		Query: &querypb.BoundQuery{Sql: "insert into t values (1, 'a')"}})
	if err != nil || be.Error != nil || be.TransactionId == 0 || be.TabletAlias.GetUid() != 200 {
		t.Fatalf("BeginExecute: %v %v", err, be)
	}
	if n := len(q.mustExec(t, 0, "select * from t", nil).Rows); n != 0 {
		t.Fatalf("uncommitted row visible outside the transaction (%d rows)", n)
	}
	if _, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: be.TransactionId}); err != nil {
		t.Fatal(err)
	}
	if n := len(q.mustExec(t, 0, "select * from t", nil).Rows); n != 1 {
		t.Fatalf("committed row not visible (%d rows)", n)
	}
	_, err = q.exec(t, be.TransactionId, "select 1", nil)
	if code(err) != vtrpcpb.Code_ABORTED || !strings.Contains(status.Convert(err).Message(), "ended at") {
		t.Fatalf("use after commit: %v", err)
	}

	// Rollback discards; an in-band error keeps the transaction ID.
	be, _ = q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "insert into t values (1, 'dup')"}})
	if be.Error == nil || be.Error.Code != vtrpcpb.Code_ALREADY_EXISTS || be.TransactionId == 0 {
		t.Fatalf("in-band error: %v", be)
	}
	q.mustExec(t, be.TransactionId, "insert into t values (2, 'b')", nil)
	if _, err := q.qs.Rollback(ctx, &querypb.RollbackRequest{Target: q.target, TransactionId: be.TransactionId}); err != nil {
		t.Fatal(err)
	}
	if n := len(q.mustExec(t, 0, "select * from t", nil).Rows); n != 1 {
		t.Fatalf("rolled back row visible (%d rows)", n)
	}

	// Reserved connection: settings stick; commit renews the ID; release ends it.
	re, err := q.qs.ReserveBeginExecute(ctx, &querypb.ReserveBeginExecuteRequest{Target: q.target,
		PreQueries: []string{"set @x = 42"}, Query: &querypb.BoundQuery{Sql: "select @x"}})
	if err != nil || re.Error != nil || re.TransactionId == 0 || re.TransactionId != re.ReservedId {
		t.Fatalf("ReserveBeginExecute: %v %v", err, re)
	}
	if v := values(re.Result); v[0][0] != "42" {
		t.Fatalf("@x = %v", v)
	}
	cr, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: re.TransactionId})
	if err != nil || cr.ReservedId == 0 || cr.ReservedId == re.ReservedId {
		t.Fatalf("commit on a reserved connection must return a new reserved id: %v %v", err, cr)
	}
	r2, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ReservedId: cr.ReservedId, Query: &querypb.BoundQuery{Sql: "select @x"}})
	if err != nil || values(r2.Result)[0][0] != "42" {
		t.Fatalf("setting lost on the reserved connection: %v %v", err, r2)
	}
	// The session setting never leaks into pooled connections.
	for range 5 {
		if v := values(q.mustExec(t, 0, "select @x", nil)); v[0][0] != "NULL" {
			t.Fatalf("a pooled connection carries a reserved connection's setting: %v", v)
		}
	}
	if _, err := q.qs.Release(ctx, &querypb.ReleaseRequest{Target: q.target, ReservedId: cr.ReservedId}); err != nil {
		t.Fatal(err)
	}
	_, err = q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ReservedId: cr.ReservedId, Query: &querypb.BoundQuery{Sql: "select 1"}})
	if code(err) != vtrpcpb.Code_ABORTED {
		t.Fatalf("use after release: %v", err)
	}
	// Bad ID combinations.
	_, err = q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, TransactionId: 5, ReservedId: 6, Query: &querypb.BoundQuery{Sql: "select 1"}})
	if code(err) != vtrpcpb.Code_INTERNAL {
		t.Fatalf("mismatched ids: %v", err)
	}
	if _, err = q.qs.Release(ctx, &querypb.ReleaseRequest{Target: q.target}); code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Fatalf("release of nothing: %v", err)
	}
	_, err = q.exec(t, 12345, "select 1", nil)
	if code(err) != vtrpcpb.Code_ABORTED || !strings.Contains(status.Convert(err).Message(), "not found") {
		t.Fatalf("unknown transaction: %v", err)
	}
	waitIdle(t, q)
}

func TestTimeoutsAndKills(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) {
		c.Query.Query.TxTimeout = 300 * time.Millisecond
		c.Query.Query.MaxResultSize = 100
	})
	ctx := context.Background()
	root := q.db.RootDB(t)

	// The caller's deadline kills the statement in MySQL, not just the wait for it.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err := q.qs.Execute(dctx, &querypb.ExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "select sleep(20)"}})
	cancel()
	if code(err) != vtrpcpb.Code_DEADLINE_EXCEEDED {
		t.Fatalf("deadline: %v", err)
	}
	t.Logf("deadline error after %v", time.Since(start).Round(time.Millisecond))
	eventually(t, 5*time.Second, "the sleeping statement was killed in MySQL", func() bool {
		var n int
		_ = root.QueryRow("select count(*) from information_schema.processlist where info like 'select sleep(20)%'").Scan(&n)
		return n == 0
	})

	// Max result rows: a clear error; the pool is fine afterwards.
	q.mustExec(t, 0, "create table big (id int primary key)", nil)
	q.mustExec(t, 0, "insert into big select seq from seq_1_to_200", nil)
	_, err = q.exec(t, 0, "select * from big", nil)
	if code(err) != vtrpcpb.Code_ABORTED || !strings.Contains(status.Convert(err).Message(), "row count exceeded 100") {
		t.Fatalf("max rows: %v", err)
	}
	if n := len(q.mustExec(t, 0, "select * from big limit 50", nil).Rows); n != 50 {
		t.Fatalf("after max rows: %d rows", n)
	}

	// The transaction killer: an idle transaction past its timeout is rolled back, and the
	// next call with its ID says so in vttablet's words.
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "insert into big values (1000)"}})
	if err != nil || be.Error != nil {
		t.Fatal(err, be)
	}
	// While the killer holds it, a call gets "in use: for tx killer rollback" (vtgate treats
	// both texts as a closed transaction); once it is done, the reason.
	var last error
	eventually(t, 5*time.Second, "the killer ended the transaction", func() bool {
		_, last = q.exec(t, be.TransactionId, "select 1", nil)
		return last != nil && !strings.Contains(status.Convert(last).Message(), "in use: for tx killer rollback")
	})
	if code(last) != vtrpcpb.Code_ABORTED || !strings.Contains(status.Convert(last).Message(), "exceeded timeout") {
		t.Fatalf("after the killer: %v", last)
	}
	if n := len(q.mustExec(t, 0, "select * from big where id = 1000", nil).Rows); n != 0 {
		t.Fatal("the killed transaction's insert survived")
	}
	waitIdle(t, q)
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	q.mustExec(t, 0, "create table s (id int primary key, pad char(100) not null default 'x')", nil)
	q.mustExec(t, 0, "insert into s (id) select seq from seq_1_to_20000", nil)
	st, err := q.qs.StreamExecute(context.Background(), &querypb.StreamExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "select * from s"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, rows := 0, 0
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if msgs == 0 && (len(m.Result.Fields) != 2 || len(m.Result.Rows) != 0) {
			t.Fatalf("first message must carry the fields only: %v", m.Result.Fields)
		}
		msgs++
		rows += len(m.Result.Rows)
	}
	if rows != 20000 || msgs < 3 {
		t.Fatalf("%d rows in %d messages", rows, msgs)
	}

	// A client that goes away mid-stream: the statement is killed and nothing leaks.
	ctx, cancel := context.WithCancel(context.Background())
	st, err = q.qs.StreamExecute(ctx, &querypb.StreamExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "select s1.id, sleep(0.001) from s s1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitIdle(t, q)
}

func TestMySQLRestartMidTransaction(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	ctx := context.Background()
	q.mustExec(t, 0, "create table t (id int primary key)", nil)
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "insert into t values (1)"}})
	if err != nil || be.Error != nil {
		t.Fatal(err, be)
	}
	q.db.Kill(t)
	q.db.Restart(t)
	// While the tablet notices the outage it may answer NOT_SERVING; after that, the
	// transaction's connection is found dead.
	eventually(t, 10*time.Second, "the lost transaction reports an error other than NOT_SERVING", func() bool {
		_, err = q.exec(t, be.TransactionId, "insert into t values (2)", nil)
		return err != nil && code(err) != vtrpcpb.Code_CLUSTER_EVENT
	})
	t.Logf("after restart: %v", err)
	if _, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: be.TransactionId}); code(err) != vtrpcpb.Code_ABORTED {
		t.Fatalf("commit of the lost transaction: %v", err)
	}
	eventually(t, 10*time.Second, "queries work again", func() bool {
		_, err := q.exec(t, 0, "select * from t", nil)
		return err == nil
	})
	waitIdle(t, q)
}

func TestGetSchema(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	q.mustExec(t, 0, "create table t1 (id int primary key)", nil)
	q.mustExec(t, 0, "create view v1 as select id from t1", nil)
	st, err := q.qs.GetSchema(context.Background(), &querypb.GetSchemaRequest{Target: q.target, TableType: querypb.SchemaTableType_TABLES})
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]string{}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range m.TableDefinition {
			defs[k] = v
		}
	}
	if !strings.HasPrefix(defs["t1"], "CREATE TABLE `t1`") || defs["v1"] != "" {
		t.Fatalf("definitions: %v", defs)
	}
}

// waitIdle waits until no pooled connection is in use and no transaction is open.
func waitIdle(t *testing.T, q *qt) {
	t.Helper()
	eventually(t, 10*time.Second, "connections returned", func() bool {
		return q.t.QueryService().InUse() == 0
	})
}

// TestOversizedBindVariable: a value larger than max_allowed_packet is refused by MySQL with a
// clear error; the broken connection is replaced and the tablet goes on.
func TestOversizedBindVariable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--max-allowed-packet=1M"}})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 201, initType: topodatapb.TabletType_PRIMARY}))
	r.health(t).until(10*time.Second, "serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	q := &qt{running: r, db: db, target: &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}}
	q.mustExec(t, 0, "create table b (id int primary key, v longblob)", nil)
	_, err := q.exec(t, 0, "insert into b values (1, :v)", map[string]*querypb.BindVariable{
		"v": {Type: querypb.Type_VARBINARY, Value: make([]byte, 2<<20)}})
	if err == nil {
		t.Fatal("a 2 MiB value passed a 1 MiB max_allowed_packet")
	}
	switch code(err) {
	case vtrpcpb.Code_RESOURCE_EXHAUSTED, vtrpcpb.Code_CANCELED, vtrpcpb.Code_UNAVAILABLE:
	default:
		t.Fatalf("oversized value: %v (code %v)", err, code(err))
	}
	t.Logf("oversized value: %v", status.Convert(err).Message()[:min(160, len(status.Convert(err).Message()))])
	q.mustExec(t, 0, "insert into b values (2, 'small')", nil)
	waitIdle(t, q)
}

// TestShutdownGracePeriod: on shutdown new work is refused, an open transaction may still
// commit within the grace period, and one left open is rolled back after it.
func TestShutdownGracePeriod(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) { c.Query.ShutdownGracePeriod = 2 * time.Second })
	ctx := context.Background()
	q.mustExec(t, 0, "create table t (id int primary key)", nil)
	committer, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "insert into t values (1)"}})
	if err != nil || committer.Error != nil {
		t.Fatal(err, committer)
	}
	abandoned, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "insert into t values (2)"}})
	if err != nil || abandoned.Error != nil {
		t.Fatal(err, abandoned)
	}
	stopped := make(chan struct{})
	go func() { q.t.Shutdown(context.Background()); close(stopped) }()
	eventually(t, 5*time.Second, "new work refused while draining", func() bool {
		_, err := q.exec(t, 0, "select 1", nil)
		return code(err) == vtrpcpb.Code_CLUSTER_EVENT && status.Convert(err).Message() == "operation not allowed in state SHUTTING_DOWN"
	})
	if _, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: committer.TransactionId}); err != nil {
		t.Fatalf("commit within the grace period: %v", err)
	}
	<-stopped
	var n int
	if err := q.db.RootDB(t).QueryRow("select count(*) from vt_commerce.t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after shutdown: %d rows (%v); want only the committed one", n, err)
	}
}

// TestShutdownLameduck: after SIGTERM's Shutdown starts, the health stream says the tablet
// no longer serves (vtgate stops routing to it, or buffers a primary) while queries are still
// answered; only when the lameduck period ends does the drain refuse them. The period here is
// long; the test ends it by cancelling Shutdown's context.
func TestShutdownLameduck(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) { c.LameduckPeriod = time.Minute })
	h := q.health(t)
	h.until(10*time.Second, "serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	go func() { q.t.Shutdown(ctx); close(stopped) }()
	m := h.until(10*time.Second, "not serving in lameduck", func(m *querypb.StreamHealthResponse) bool { return !m.Serving })
	if m.RealtimeStats.GetHealthError() == "" {
		t.Error("the lameduck record gives no reason")
	}
	if v := values(q.mustExec(t, 0, "select 1", nil)); v[0][0] != "1" {
		t.Fatalf("select 1 in lameduck: %v", v)
	}
	select {
	case <-stopped:
		t.Fatal("Shutdown returned during the lameduck period")
	default:
	}
	t.Logf("lameduck: not serving, query answered")
	cancel()
	<-stopped
	t.Logf("stopped")
}

// TestLimitsAndHints: /*vt+ QUERY_TIMEOUT_MS */ bounds a statement (a bad value is an error
// naming the hint), and UPDATE/DELETE without WHERE are refused when configured.
func TestLimitsAndHints(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) { c.Query.Query.RejectDMLWithoutWhere = true })
	q.mustExec(t, 0, "create table t (id int primary key)", nil)
	_, err := q.exec(t, 0, "select /*vt+ QUERY_TIMEOUT_MS=200 */ sleep(10)", nil)
	if code(err) != vtrpcpb.Code_DEADLINE_EXCEEDED {
		t.Fatalf("QUERY_TIMEOUT_MS=200 on sleep(10): %v", err)
	}
	_, err = q.exec(t, 0, "select /*vt+ QUERY_TIMEOUT_MS=soon */ 1", nil)
	if code(err) != vtrpcpb.Code_INVALID_ARGUMENT || !strings.Contains(status.Convert(err).Message(), "QUERY_TIMEOUT_MS") {
		t.Fatalf("bad hint value: %v", err)
	}
	for _, sql := range []string{"delete from t", "update t set id = id + 1"} {
		if _, err := q.exec(t, 0, sql, nil); code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
			t.Errorf("%s: %v, want refused", sql, err)
		}
	}
	q.mustExec(t, 0, "delete from t where id = 1", nil)
	waitIdle(t, q)
}

// TestConsolidation: identical concurrent reads share one execution; readers never see rows
// that were not committed, and a transaction's reads are never shared.
func TestConsolidation(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) { c.Query.Query.Consolidator.OnPrimary = true })
	ctx := context.Background()
	q.mustExec(t, 0, "create table t (id int primary key)", nil)
	q.mustExec(t, 0, "insert into t values (1)", nil)
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, Query: &querypb.BoundQuery{Sql: "insert into t values (2)"}})
	if err != nil || be.Error != nil {
		t.Fatal(err, be)
	}
	const n = 8
	results := make(chan [][]string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			r, err := q.exec(t, 0, "select sleep(0.3), count(*) from t", nil)
			if err != nil {
				errs <- err
				return
			}
			results <- values(r)
		}()
	}
	// Inside the transaction, its own uncommitted row is visible: it did not share.
	if v := values(q.mustExec(t, be.TransactionId, "select sleep(0.3), count(*) from t", nil)); v[0][1] != "2" {
		t.Fatalf("the transaction's read saw %v, want its own row counted", v)
	}
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case v := <-results:
			if v[0][1] != "1" {
				t.Fatalf("a consolidated reader saw %v: uncommitted rows leaked", v)
			}
		}
	}
	_, body := httpGet(t, "http://"+q.t.HTTPAddr()+"/debug/consolidations")
	if !strings.Contains(body, "select sleep(0.3), count(*) from t") {
		t.Fatalf("/debug/consolidations shows no shared execution:\n%s", body)
	}
	_, cs := q.t.QueryService().ConsolidatorStatus()
	_, page := httpGet(t, "http://"+q.t.HTTPAddr()+"/debug/status")
	if cs.Consolidated == 0 || !strings.Contains(page, fmt.Sprintf("%d callers served another&#39;s result", cs.Consolidated)) &&
		!strings.Contains(page, fmt.Sprintf("%d callers served another's result", cs.Consolidated)) {
		t.Fatalf("/debug/status does not show the consolidator's %d shared results", cs.Consolidated)
	}
	if _, err := q.exec(t, 0, "select /*vt+ CONSOLIDATOR=sometimes */ 1", nil); code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Fatalf("bad CONSOLIDATOR hint: %v", err)
	}
	if _, err := q.qs.Rollback(ctx, &querypb.RollbackRequest{Target: q.target, TransactionId: be.TransactionId}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, q)
}
