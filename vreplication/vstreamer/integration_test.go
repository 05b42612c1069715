package vstreamer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabletd/tabletd/acl"
	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// The integration tests stream from a real mariadbd through a real query service.

const (
	testKS = "customer"
	testDB = "vt_customer"
)

var testTarget = &querypb.Target{Keyspace: testKS, Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}

// upProber reports MySQL up: the tests drive admission by type, not by probing.
type upProber struct{}

func (upProber) Probe(context.Context, bool) tabletserver.MySQLHealth {
	return tabletserver.MySQLHealth{CheckedAt: time.Now(), ReplicationConfigured: true, LagKnown: true}
}

type env struct {
	db  *mariadbtest.Server
	qs  *tabletserver.Server
	eng *Engine
}

func connCfg(db *mariadbtest.Server, user, dbName string) mysqlconn.Config {
	return mysqlconn.Config{Network: "unix", Address: db.Socket, User: user, Password: mariadbtest.Password,
		DBName: dbName, Charset: "utf8mb4", ConnectTimeout: 5 * time.Second}
}

// newEnv starts mariadbd with the test database, a query service as PRIMARY and a streamer.
func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "create database "+testDB, "create database _vt",
		"create table _vt.resharding_journal (id bigint primary key, db_name varbinary(255), val longblob)")
	cfg := tabletserver.DefaultConfig()
	cfg.Keyspace, cfg.Shard, cfg.DBName = testKS, "0", testDB
	cfg.Alias = &topodatapb.TabletAlias{Cell: "zone1", Uid: 100}
	cfg.Connectors = tabletserver.Connectors{App: connCfg(db, mariadbtest.UserApp, testDB),
		Dba: connCfg(db, mariadbtest.UserDBA, testDB), Filtered: connCfg(db, mariadbtest.UserFiltered, testDB)}
	qs, err := tabletserver.New(cfg, tabletserver.Deps{Prober: upProber{}})
	if err != nil {
		t.Fatal(err)
	}
	qs.Open()
	t.Cleanup(qs.Close)
	qs.SetServingType(topodatapb.TabletType_PRIMARY, time.Now(), true, "")
	vc := DefaultConfig()
	vc.Keyspace, vc.Shard, vc.DBName = testKS, "0", testDB
	vc.DB = connCfg(db, mariadbtest.UserFiltered, "")
	vc.HeartbeatInterval = 200 * time.Millisecond
	if mutate != nil {
		mutate(&vc)
	}
	eng, err := New(vc, Deps{Source: qs, VSchema: func(context.Context) (*vschemapb.SrvVSchema, error) { return testVSchema().srv, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	return &env{db: db, qs: qs, eng: eng}
}

func (e *env) exec(t *testing.T, stmts ...string) {
	t.Helper()
	full := make([]string, 0, len(stmts)+1)
	full = append(full, "use "+testDB)
	e.db.Exec(t, append(full, stmts...)...)
}

func (e *env) position(t *testing.T) string {
	t.Helper()
	pos, err := e.qs.BinlogPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// collector runs a VStream and keeps its events.
type collector struct {
	mu     sync.Mutex
	events []*binlogdatapb.VEvent
	done   chan error
	cancel context.CancelFunc
}

func (e *env) stream(t *testing.T, pos string, rules ...*binlogdatapb.Rule) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{done: make(chan error, 1), cancel: cancel}
	go func() {
		c.done <- e.eng.Stream(ctx, &binlogdatapb.VStreamRequest{Target: testTarget, Position: pos,
			Filter: &binlogdatapb.Filter{Rules: rules}}, func(evs []*binlogdatapb.VEvent) error {
			c.mu.Lock()
			c.events = append(c.events, evs...)
			c.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// waitFor waits until pred holds over the events received so far; the stream failing or a
// minute passing fails the test.
func (c *collector) waitFor(t *testing.T, what string, pred func([]*binlogdatapb.VEvent) bool) []*binlogdatapb.VEvent {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		evs := append([]*binlogdatapb.VEvent(nil), c.events...)
		c.mu.Unlock()
		if pred(evs) {
			return evs
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("waiting for %s: the stream ended: %v (events: %s)", what, err, describe(evs))
		case <-deadline:
			t.Fatalf("waiting for %s: not there after a minute (events: %s)", what, describe(evs))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// content keeps what tests compare: row events as "ins|upd|del table (before) -> (after)",
// fields as "fields table a,b", DDL statements, and other types by name.
func describe(evs []*binlogdatapb.VEvent) string {
	var parts []string
	for _, ev := range content(evs) {
		parts = append(parts, ev)
	}
	return strings.Join(parts, "; ")
}

func content(evs []*binlogdatapb.VEvent) []string {
	var out []string
	for _, ev := range evs {
		switch ev.Type {
		case binlogdatapb.VEventType_ROW:
			for _, rc := range ev.RowEvent.RowChanges {
				b, a := "", ""
				if rc.Before != nil {
					b = rowText(rc.Before)
				}
				if rc.After != nil {
					a = rowText(rc.After)
				}
				out = append(out, fmt.Sprintf("row %s (%s) -> (%s)", ev.RowEvent.TableName, b, a))
			}
		case binlogdatapb.VEventType_FIELD:
			var names []string
			for _, f := range ev.FieldEvent.Fields {
				names = append(names, f.Name)
			}
			out = append(out, fmt.Sprintf("fields %s %s", ev.FieldEvent.TableName, strings.Join(names, ",")))
		case binlogdatapb.VEventType_DDL:
			out = append(out, "ddl "+ev.Statement)
		case binlogdatapb.VEventType_HEARTBEAT, binlogdatapb.VEventType_GTID:
		default:
			out = append(out, strings.ToLower(ev.Type.String()))
		}
	}
	return out
}

func hasAll(want ...string) func([]*binlogdatapb.VEvent) bool {
	return func(evs []*binlogdatapb.VEvent) bool {
		got := strings.Join(content(evs), "\n") + "\n"
		for _, w := range want {
			if !strings.Contains(got, w+"\n") {
				return false
			}
		}
		return true
	}
}

// TestStreamChanges streams inserts, updates, deletes and a DDL across a position: row
// images by kind, values as a SELECT shows them, a new FIELD event after the column change.
func TestStreamChanges(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table customer (customer_id bigint primary key, email varchar(64), kind enum('a','b'), "+
		"amount decimal(10,2), u int unsigned, ts timestamp(3) null)")
	pos := e.position(t)
	c := e.stream(t, pos, &binlogdatapb.Rule{Match: "/.*"})
	e.exec(t,
		"insert into customer values (1, 'x@y', 'b', 12.50, 4294967295, '2024-01-02 03:04:05.678')",
		"update customer set email = 'z@y', kind = 'a' where customer_id = 1",
		"delete from customer where customer_id = 1",
		"alter table customer add column note varchar(10)",
		"insert into customer (customer_id, note) values (2, 'n')")
	evs := c.waitFor(t, "the changes", hasAll(
		"fields customer customer_id,email,kind,amount,u,ts",
		"row customer () -> (1|x@y|b|12.50|4294967295|2024-01-02 03:04:05.678)",
		"row customer (1|x@y|b|12.50|4294967295|2024-01-02 03:04:05.678) -> (1|z@y|a|12.50|4294967295|2024-01-02 03:04:05.678)",
		"row customer (1|z@y|a|12.50|4294967295|2024-01-02 03:04:05.678) -> ()",
		"ddl alter table customer add column note varchar(10)",
		"fields customer customer_id,email,kind,amount,u,ts,note",
		"row customer () -> (2|NULL|NULL|NULL|NULL|NULL|n)"))
	// Every transaction is BEGIN … GTID COMMIT, the GTID carrying the position after it.
	var gtids []string
	for _, ev := range evs {
		if ev.Keyspace != testKS || ev.Shard != "0" {
			t.Fatalf("event without keyspace/shard: %v", ev)
		}
		if ev.Type == binlogdatapb.VEventType_GTID {
			gtids = append(gtids, ev.Gtid)
		}
	}
	if len(gtids) < 5 || !strings.HasPrefix(gtids[0], "MariaDB/") {
		t.Fatalf("GTID events %v", gtids)
	}
	if got := e.position(t); gtids[len(gtids)-1] != got {
		t.Errorf("last GTID %s, server position %s", gtids[len(gtids)-1], got)
	}
	for _, ev := range evs {
		if ev.Type == binlogdatapb.VEventType_FIELD && ev.FieldEvent.EnumSetStringValues != true {
			t.Errorf("FIELD of a table with an ENUM: enum_set_string_values not set")
		}
	}
}

// TestStreamResume: a stream resumed from the position of a GTID event continues with the
// next transaction — nothing repeated, nothing skipped.
func TestStreamResume(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table t (id int primary key)")
	pos := e.position(t)
	c := e.stream(t, pos, &binlogdatapb.Rule{Match: "t"})
	e.exec(t, "insert into t values (1)", "insert into t values (2)")
	evs := c.waitFor(t, "two inserts", hasAll("row t () -> (1)", "row t () -> (2)"))
	var after1 string
	for _, ev := range evs {
		if ev.Type == binlogdatapb.VEventType_GTID {
			after1 = ev.Gtid
			break
		}
	}
	c.cancel()
	e.exec(t, "insert into t values (3)")
	r := e.stream(t, after1, &binlogdatapb.Rule{Match: "t"})
	got := r.waitFor(t, "rows 2 and 3", hasAll("row t () -> (2)", "row t () -> (3)"))
	if strings.Contains(describe(got), "row t () -> (1)") {
		t.Errorf("resumed stream repeated row 1: %s", describe(got))
	}
}

// TestStreamFiltered: only the rule's tables and key range; DDL of other tables is OTHER.
func TestStreamFiltered(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table customer (customer_id bigint primary key, email varchar(64))", "create table other (id int primary key)")
	c := e.stream(t, e.position(t), &binlogdatapb.Rule{Match: "customer",
		Filter: "select customer_id, email from customer where in_keyrange(customer_id, 'customer.hash', '-80')"})
	e.exec(t, "insert into other values (1)", "alter table other add column x int",
		"insert into customer values (0, 'zero'), (1, 'one'), (4, 'four'), (5, 'five')",
		// 1 (-80) moves to 4 (80-): a delete in this shard; 4 moves to 2 (-80): an insert.
		"update customer set customer_id = 40 where customer_id = 1",
		"update customer set customer_id = 2 where customer_id = 4")
	evs := c.waitFor(t, "the filtered rows", hasAll("row customer () -> (1|one)", "row customer () -> (5|five)",
		"row customer (1|one) -> ()", "row customer () -> (2|four)", "other"))
	d := describe(evs)
	for _, bad := range []string{"row other", "(0|zero)", "(4|four)", "ddl alter table other"} {
		if strings.Contains(d, bad) {
			t.Errorf("filtered stream has %q: %s", bad, d)
		}
	}
}

// TestStreamJournal: a _vt.resharding_journal row of this database becomes a JOURNAL event.
func TestStreamJournal(t *testing.T) {
	e := newEnv(t, nil)
	c := e.stream(t, e.position(t), &binlogdatapb.Rule{Match: "/.*"})
	e.db.Exec(t, `insert into _vt.resharding_journal values (7, 'other_db', 'id:8'), (9, '`+testDB+`',
		'id:9 migration_type:SHARDS tables:"t" local_position:"MariaDB/0-1-5" shard_gtids:{keyspace:"ks" shard:"-80" gtid:"MariaDB/0-2-3"}')`)
	evs := c.waitFor(t, "the journal", hasAll("journal"))
	n := 0
	for _, ev := range evs {
		if ev.Type == binlogdatapb.VEventType_JOURNAL {
			n++
			j := ev.Journal
			if j.Id != 9 || j.MigrationType != binlogdatapb.MigrationType_SHARDS || j.LocalPosition != "MariaDB/0-1-5" ||
				len(j.ShardGtids) != 1 || j.ShardGtids[0].Gtid != "MariaDB/0-2-3" {
				t.Errorf("journal %v", j)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d JOURNAL events, want 1 (the other database's row is not ours)", n)
	}
}

// TestStreamHeartbeat: an idle stream sends heartbeats with the source's clock.
func TestStreamHeartbeat(t *testing.T) {
	e := newEnv(t, nil)
	c := e.stream(t, "current", &binlogdatapb.Rule{Match: "/.*"})
	evs := c.waitFor(t, "two heartbeats", func(evs []*binlogdatapb.VEvent) bool {
		n := 0
		for _, ev := range evs {
			if ev.Type == binlogdatapb.VEventType_HEARTBEAT {
				n++
			}
		}
		return n >= 2
	})
	for _, ev := range evs {
		if ev.Type == binlogdatapb.VEventType_HEARTBEAT && ev.CurrentTime == 0 {
			t.Errorf("heartbeat without the source's clock: %v", ev)
		}
	}
}

// TestStreamPurged: a position whose binlogs were purged is a clear error with MySQL's
// errno 1236, never a stream that skips events.
func TestStreamPurged(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table t (id int primary key)")
	old := e.position(t)
	e.exec(t, "insert into t values (1)", "flush binary logs", "insert into t values (2)", "flush binary logs")
	purgeBinlogs(t, e)
	err := e.eng.Stream(context.Background(), &binlogdatapb.VStreamRequest{Target: testTarget, Position: old,
		Filter: &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "/.*"}}}}, func([]*binlogdatapb.VEvent) error { return nil })
	if num, _, ok := rpcerrErrno(err); !ok || num != 1236 || codeOf(err) != "FAILED_PRECONDITION" {
		t.Fatalf("stream from a purged position: %v (code %s)", err, codeOf(err))
	}
	if !strings.Contains(err.Error(), old) {
		t.Errorf("error does not name the position %s: %v", old, err)
	}
}

// TestStreamBadInput: positions of the other flavor, malformed filters, a missing table.
func TestStreamBadInput(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	run := func(pos string, rules ...*binlogdatapb.Rule) error {
		return e.eng.Stream(ctx, &binlogdatapb.VStreamRequest{Target: testTarget, Position: pos,
			Filter: &binlogdatapb.Filter{Rules: rules}}, func([]*binlogdatapb.VEvent) error { return nil })
	}
	all := &binlogdatapb.Rule{Match: "/.*"}
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"MySQL position on MariaDB", run("MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", all), "INVALID_ARGUMENT"},
		{"garbage position", run("MariaDB/x-y", all), "INVALID_ARGUMENT"},
		{"no position", run("", all), "INVALID_ARGUMENT"},
		{"no rules", run("current"), "INVALID_ARGUMENT"},
		{"malformed in_keyrange", run("current", &binlogdatapb.Rule{Match: "t", Filter: "select * from t where in_keyrange(id, 'hash', '80-4')"}), "INVALID_ARGUMENT"},
		{"wrong target", e.eng.Stream(ctx, &binlogdatapb.VStreamRequest{Target: &querypb.Target{Keyspace: "other", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY},
			Position: "current", Filter: &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{all}}}, nil), "INVALID_ARGUMENT"},
	} {
		if codeOf(tc.err) != tc.code {
			t.Errorf("%s: %v (code %s), want %s", tc.name, tc.err, codeOf(tc.err), tc.code)
		}
	}
	err := e.eng.StreamRows(ctx, &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: "select * from nosuch"},
		func(*binlogdatapb.VStreamRowsResponse) error { return nil })
	if num, _, ok := rpcerrErrno(err); !ok || num != 1146 {
		t.Errorf("VStreamRows of a missing table: %v", err)
	}
}

// TestStreamACL: a caller the table ACL does not let read a table gets PERMISSION_DENIED on
// VStream and VStreamRows; a stream without caller is checked as the filtered user.
func TestStreamACL(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table secret (id int primary key)", "insert into secret values (1)")
	strict := newStrictEnv(t, e)
	ctx := context.Background()
	mallory := &querypb.VTGateCallerID{Username: "mallory"}
	err := strict.eng.StreamRows(ctx, &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: "select * from secret",
		ImmediateCallerId: mallory}, func(*binlogdatapb.VStreamRowsResponse) error { return nil })
	if codeOf(err) != "PERMISSION_DENIED" {
		t.Errorf("VStreamRows by mallory: %v", err)
	}
	c := &collector{done: make(chan error, 1)}
	cctx, cancel := context.WithCancel(ctx)
	from := e.position(t)
	go func() {
		c.done <- strict.eng.Stream(cctx, &binlogdatapb.VStreamRequest{Target: testTarget, Position: from, ImmediateCallerId: mallory,
			Filter: &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "/.*"}}}}, func([]*binlogdatapb.VEvent) error { return nil })
	}()
	e.exec(t, "insert into secret values (2)")
	select {
	case err := <-c.done:
		if codeOf(err) != "PERMISSION_DENIED" {
			t.Errorf("VStream by mallory: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("VStream by mallory still streams a minute after a row of secret")
	}
	cancel()
	var rows int
	err = strict.eng.StreamRows(ctx, &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: "select * from secret",
		ImmediateCallerId: &querypb.VTGateCallerID{Username: "reader"}}, func(r *binlogdatapb.VStreamRowsResponse) error {
		rows += len(r.Rows)
		return nil
	})
	if err != nil || rows != 2 {
		t.Errorf("VStreamRows by reader: %d rows, %v", rows, err)
	}
	err = strict.eng.StreamRows(ctx, &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: "select * from secret"},
		func(*binlogdatapb.VStreamRowsResponse) error { return nil })
	if err != nil {
		t.Errorf("VStreamRows without caller (the filtered user, a reader): %v", err)
	}
}

// newStrictEnv is a second query service and streamer on e's server with a strict ACL.
func newStrictEnv(t *testing.T, e *env) *env {
	t.Helper()
	cfg := tabletserver.DefaultConfig()
	cfg.Keyspace, cfg.Shard, cfg.DBName = testKS, "0", testDB
	cfg.Alias = &topodatapb.TabletAlias{Cell: "zone1", Uid: 101}
	cfg.ACL = tabletserver.ACLConfig{Strict: true}
	cfg.Connectors = tabletserver.Connectors{App: connCfg(e.db, mariadbtest.UserApp, testDB),
		Dba: connCfg(e.db, mariadbtest.UserDBA, testDB), Filtered: connCfg(e.db, mariadbtest.UserFiltered, testDB)}
	qs, err := tabletserver.New(cfg, tabletserver.Deps{Prober: upProber{}})
	if err != nil {
		t.Fatal(err)
	}
	qs.Open()
	t.Cleanup(qs.Close)
	qs.SetServingType(topodatapb.TabletType_PRIMARY, time.Now(), true, "")
	acfg, err := acl.ParseConfig([]byte(`{"table_groups": [{"name": "g", "table_names_or_prefixes": ["%"], "readers": ["reader", "` + mariadbtest.UserFiltered + `"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := acl.Compile(acfg)
	if err != nil {
		t.Fatal(err)
	}
	qs.SetTableACL(a)
	vc := e.eng.cfg
	eng, err := New(vc, Deps{Source: qs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	return &env{db: e.db, qs: qs, eng: eng}
}

// errPage ends one VStreamRows call after its first batch of rows.
var errPage = errors.New("one page read")

// scanAll runs VStreamRows to the end one batch per call, each call resuming from the
// previous call's lastpk.
func scanAll(t *testing.T, e *env, query string) (rows []string, gtid string, calls int) {
	t.Helper()
	var lastpk *querypb.QueryResult
	for {
		calls++
		var pkfields []*querypb.Field
		var last *querypb.Row
		err := e.eng.StreamRows(context.Background(), &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: query, Lastpk: lastpk},
			func(r *binlogdatapb.VStreamRowsResponse) error {
				switch {
				case r.Gtid != "":
					pkfields = r.Pkfields
					if gtid == "" {
						gtid = r.Gtid
					}
				case r.Heartbeat:
				default:
					for _, row := range r.Rows {
						rows = append(rows, rowText(row))
					}
					last = r.Lastpk
					return errPage
				}
				return nil
			})
		switch {
		case err == nil && last == nil:
			return rows, gtid, calls
		case err != nil && !errors.Is(err, errPage):
			t.Fatal(err)
		case calls > 1000:
			t.Fatalf("no end after %d calls", calls)
		}
		lastpk = &querypb.QueryResult{Fields: pkfields, Rows: []*querypb.Row{last}}
	}
}

// TestStreamRowsPagesAndKeyRanges: a scan resumed from lastpk page by page returns every row
// once, in key order; two key ranges split the rows with none lost or duplicated, each row in
// the shard Vitess's hash puts it.
func TestStreamRowsPagesAndKeyRanges(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PacketSize = 64 })
	e.exec(t, "create table customer (customer_id bigint primary key, email varchar(64))")
	var values []string
	for i := 0; i < 300; i++ {
		values = append(values, fmt.Sprintf("(%d, 'c%d@x')", i, i))
	}
	e.exec(t, "insert into customer values "+strings.Join(values, ", "))
	rows, gtid, calls := scanAll(t, e, "select * from customer")
	if len(rows) != 300 || calls < 3 || !strings.HasPrefix(gtid, "MariaDB/") {
		t.Fatalf("%d rows in %d calls, gtid %q", len(rows), calls, gtid)
	}
	for i, r := range rows {
		if r != fmt.Sprintf("%d|c%d@x", i, i) {
			t.Fatalf("row %d is %q", i, r)
		}
	}
	low, _, _ := scanAll(t, e, "select customer_id from customer where in_keyrange(customer_id, 'customer.hash', '-80')")
	high, _, _ := scanAll(t, e, "select customer_id from customer where in_keyrange('80-')")
	seen := map[string]int{}
	for _, r := range append(low, high...) {
		seen[r]++
	}
	if len(seen) != 300 || len(low)+len(high) != 300 {
		t.Fatalf("key ranges: %d + %d rows, %d distinct", len(low), len(high), len(seen))
	}
	h, _ := newVindex("hash")
	lowRange, _ := parseKeyRange("-80")
	for _, r := range low {
		id, _ := h.keyspaceID(querypb.Type_INT64, []byte(r))
		if !lowRange.contains(id) {
			t.Errorf("row %s sent for -80 maps to %x", r, id)
		}
	}
}

// TestStreamRowsSnapshotConsistency: rows copied from the snapshot while writers change the
// table, followed by the binlog from the snapshot's position, give exactly the table —
// the MariaDB snapshot position is the snapshot's, not the server's current one.
func TestStreamRowsSnapshotConsistency(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table acct (id int primary key, bal int)")
	var values []string
	for i := 0; i < 2000; i++ {
		values = append(values, fmt.Sprintf("(%d, 100)", i))
	}
	e.exec(t, "insert into acct values "+strings.Join(values, ", "))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := mysqlconn.Connect(ctx, connCfg(e.db, mariadbtest.UserApp, testDB))
			if err != nil {
				return
			}
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				stmts := []string{fmt.Sprintf("update acct set bal = bal + 1 where id = %d", (i*7+w)%2000),
					fmt.Sprintf("insert into acct values (%d, %d) on duplicate key update bal = bal - 1", 2000+w*100000+i, i),
					fmt.Sprintf("delete from acct where id = %d", (i*13+w*5)%2000)}
				_, _ = c.Execute(ctx, stmts[i%3], 0, mysqlconn.FieldsNone)
			}
		}(w)
	}
	copied := map[string]string{}
	var snapshot string
	err := e.eng.StreamRows(ctx, &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: "select * from acct"},
		func(r *binlogdatapb.VStreamRowsResponse) error {
			if r.Gtid != "" {
				snapshot = r.Gtid
			}
			for _, row := range r.Rows {
				k, v, _ := strings.Cut(rowText(row), "|")
				copied[k] = v
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// Let the writers run past the snapshot, then stop them.
	e.exec(t, "insert into acct values (-1, 0)")
	stop()
	wg.Wait()
	final := e.position(t)
	c := e.stream(t, snapshot, &binlogdatapb.Rule{Match: "acct"})
	evs := c.waitFor(t, "the binlog up to the end", func(evs []*binlogdatapb.VEvent) bool {
		return len(evs) > 0 && lastGTID(evs) == final
	})
	for _, ev := range evs {
		if ev.Type != binlogdatapb.VEventType_ROW {
			continue
		}
		for _, rc := range ev.RowEvent.RowChanges {
			if rc.Before != nil {
				k, _, _ := strings.Cut(rowText(rc.Before), "|")
				delete(copied, k)
			}
			if rc.After != nil {
				k, v, _ := strings.Cut(rowText(rc.After), "|")
				copied[k] = v
			}
		}
	}
	res, err := e.qs.Execute(context.Background(), &tabletserver.Call{Target: testTarget, SQL: "select id, bal from acct order by id",
		Options: &querypb.ExecuteOptions{Workload: querypb.ExecuteOptions_OLAP}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, row := range res.Rows {
		k, v, _ := strings.Cut(rowText(row), "|")
		want[k] = v
	}
	if len(want) < 2000 {
		t.Fatalf("table has only %d rows", len(want))
	}
	var diffs []string
	for k, v := range want {
		if copied[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: copy+binlog %q, table %q", k, copied[k], v))
		}
	}
	for k := range copied {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in copy+binlog, not in the table", k))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d differences, e.g. %v", len(diffs), diffs[:min(5, len(diffs))])
	}
}

func lastGTID(evs []*binlogdatapb.VEvent) string {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == binlogdatapb.VEventType_GTID {
			return evs[i].Gtid
		}
	}
	return ""
}

// TestStreamTablesAndResults: VStreamTables sends every base table from one snapshot;
// VStreamResults a select's result with the snapshot's position.
func TestStreamTablesAndResults(t *testing.T) {
	e := newEnv(t, nil)
	e.exec(t, "create table a (id int primary key)", "create table b (id int primary key, v varchar(4))",
		"create view vw as select * from a", "insert into a values (1), (2)", "insert into b values (7, 'x')")
	got := map[string][]string{}
	gtids := map[string]bool{}
	err := e.eng.StreamTables(context.Background(), &binlogdatapb.VStreamTablesRequest{Target: testTarget},
		func(r *binlogdatapb.VStreamTablesResponse) error {
			gtids[r.Gtid] = true
			for _, row := range r.Rows {
				got[r.TableName] = append(got[r.TableName], rowText(row))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got["a"], ",") != "1,2" || strings.Join(got["b"], ",") != "7|x" || len(got) != 2 || len(gtids) != 1 {
		t.Errorf("tables %v, gtids %v", got, gtids)
	}
	var fields int
	var rows []string
	var gtid string
	err = e.eng.StreamResults(context.Background(), &binlogdatapb.VStreamResultsRequest{Target: testTarget, Query: "select id from a where id > 1"},
		func(r *binlogdatapb.VStreamResultsResponse) error {
			fields += len(r.Fields)
			if r.Gtid != "" {
				gtid = r.Gtid
			}
			for _, row := range r.Rows {
				rows = append(rows, rowText(row))
			}
			return nil
		})
	if err != nil || fields != 1 || strings.Join(rows, ",") != "2" || gtid != e.position(t) {
		t.Errorf("results: %d fields, rows %v, gtid %q, err %v", fields, rows, gtid, err)
	}
}

// TestCloseEndsStreams: Close ends the streams in progress with UNAVAILABLE and refuses new ones.
func TestCloseEndsStreams(t *testing.T) {
	e := newEnv(t, nil)
	c := e.stream(t, "current", &binlogdatapb.Rule{Match: "/.*"})
	c.waitFor(t, "a heartbeat", func(evs []*binlogdatapb.VEvent) bool { return len(evs) > 0 })
	e.eng.Close()
	select {
	case err := <-c.done:
		c.done <- err
		if codeOf(err) != "UNAVAILABLE" {
			t.Errorf("stream ended with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("stream still running a minute after Close")
	}
	err := e.eng.Stream(context.Background(), &binlogdatapb.VStreamRequest{Target: testTarget, Position: "current",
		Filter: &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "/.*"}}}}, nil)
	if codeOf(err) != "UNAVAILABLE" {
		t.Errorf("after Close: %v", err)
	}
}

func rpcerrErrno(err error) (uint16, string, bool) { return rpcerr.Errno(err) }

func codeOf(err error) string {
	if err == nil {
		return "OK"
	}
	return rpcerr.Code(err).String()
}

// purgeBinlogs purges every binlog but the current one. MariaDB keeps a file until its
// binlog checkpoint passed (InnoDB flushed its transactions): purge until only one is left.
func purgeBinlogs(t *testing.T, e *env) {
	t.Helper()
	db := e.db.RootDB(t)
	deadline := time.Now().Add(time.Minute)
	for {
		var name, size string
		var files []string
		rows, err := db.Query("show binary logs")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			cols, _ := rows.Columns()
			dest := []any{&name, &size}
			for len(dest) < len(cols) {
				dest = append(dest, new(any))
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
		}
		rows.Close()
		if len(files) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("binlogs %v not purged after a minute", files)
		}
		if _, err := db.Exec("flush engine logs"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("purge binary logs to '" + files[len(files)-1] + "'"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // polling the server's checkpoint, not a timing assumption
	}
}

// TestStreamRowsSurvivesTransition: a state transition (here PRIMARY → REPLICA) kills the old
// state's statements but not a snapshot reader's scan, which only reads.
func TestStreamRowsSurvivesTransition(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PacketSize = 256 })
	e.exec(t, "create table t (id int primary key, v varchar(32))")
	var values []string
	for i := 0; i < 3000; i++ {
		values = append(values, fmt.Sprintf("(%d, 'value-%d')", i, i))
	}
	e.exec(t, "insert into t values "+strings.Join(values, ", "))
	scanning, transitioned := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	rows := 0
	go func() {
		first := true
		done <- e.eng.StreamRows(context.Background(), &binlogdatapb.VStreamRowsRequest{Target: testTarget, Query: "select * from t"},
			func(r *binlogdatapb.VStreamRowsResponse) error {
				if len(r.Rows) > 0 && first {
					first = false
					close(scanning)
					<-transitioned // the scan's statement is still running in MySQL meanwhile
				}
				rows += len(r.Rows)
				return nil
			})
	}()
	<-scanning
	e.qs.SetServingType(topodatapb.TabletType_REPLICA, time.Time{}, true, "")
	close(transitioned)
	if err := <-done; err != nil || rows != 3000 {
		t.Fatalf("scan across a transition: %d rows, %v", rows, err)
	}
}
