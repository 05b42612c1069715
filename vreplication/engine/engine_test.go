package engine

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/sidecar"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// These tests run the engine against a real target MariaDB, with the source tablet faked
// in memory (fakeSource); test/integration and test/interop run it against real tabletd
// and vttablet sources.

// env is one target database with an engine, fed by a fake source.
type env struct {
	t      *testing.T
	root   *sql.DB
	dbName string
	src    *fakeSource
	tabs   *fakeTablets
	e      *Engine
}

// server is one MariaDB per test (each test its own database); a test that restarts it
// gets its own.
func server(t *testing.T) *mariadbtest.Server {
	return mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}})
}

var intField = func(name string) *querypb.Field { return &querypb.Field{Name: name, Type: querypb.Type_INT64} }
var textField = func(name string) *querypb.Field { return &querypb.Field{Name: name, Type: querypb.Type_VARCHAR} }

func newEnv(t *testing.T, db *mariadbtest.Server, dbName string, mutate func(*Config), ddl ...string) *env {
	t.Helper()
	root := db.RootDB(t)
	ctx := context.Background()
	conn, err := root.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.Ensure(ctx, conn, "_vt", sidecar.Replicated); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	db.Exec(t, "create database "+dbName)
	for _, s := range ddl {
		db.Exec(t, "use "+dbName, s)
	}
	v := &env{t: t, root: root, dbName: dbName, src: newFakeSource()}
	v.tabs = &fakeTablets{src: v.src, tablet: &topodatapb.Tablet{Alias: &topodatapb.TabletAlias{Cell: "zone1", Uid: 100},
		Keyspace: "commerce", Shard: "0", Type: topodatapb.TabletType_PRIMARY, Hostname: "fake"}}
	cfg := DefaultConfig()
	cfg.DBName, cfg.Keyspace, cfg.Shard, cfg.Cell = dbName, "customer", "0", "zone1"
	user := func(u string) mysqlconn.Config {
		return mysqlconn.Config{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", db.Port), User: u, Password: mariadbtest.Password}
	}
	cfg.Filtered, cfg.Dba = user(mariadbtest.UserFiltered), user(mariadbtest.UserDBA)
	cfg.RetryDelay, cfg.MaxRetryDelay, cfg.RowsCopiedInterval = 100*time.Millisecond, time.Second, 200*time.Millisecond
	cfg.CatchupLag = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	v.e, err = New(cfg, Deps{Registry: prometheus.NewRegistry(), Topo: v.tabs, Dial: v.tabs})
	if err != nil {
		t.Fatal(err)
	}
	v.e.Open()
	t.Cleanup(v.e.Close)
	return v
}

// create inserts a stream with rules (and on_ddl) and starts it, as vtctld's
// CreateVReplicationWorkflow then UpdateVReplicationWorkflow(Running) do.
func (v *env) create(workflow string, onDDL binlogdatapb.OnDDLAction, rules ...*binlogdatapb.Rule) int32 {
	v.t.Helper()
	bls := &binlogdatapb.BinlogSource{Keyspace: "commerce", Shard: "0", Filter: &binlogdatapb.Filter{Rules: rules}, OnDdl: onDDL}
	src, _ := prototext.Marshal(bls)
	qr, err := v.e.Exec(context.Background(), fmt.Sprintf("insert into _vt.vreplication (workflow, source, pos, max_tps, max_replication_lag, cell, "+
		"tablet_types, time_updated, transaction_timestamp, state, db_name, workflow_type, workflow_sub_type, defer_secondary_keys, options) "+
		"values (%s, %s, '', 0, 0, 'zone1', 'in_order:replica,primary', now(), 0, 'Stopped', %s, 1, 0, 1, '{}')",
		QuoteString(workflow), QuoteString(string(src)), QuoteString(v.dbName)), false)
	if err != nil {
		v.t.Fatal(err)
	}
	id := int32(qr.InsertId)
	v.exec(fmt.Sprintf("update _vt.vreplication set state = 'Running' where id = %d", id))
	return id
}

func (v *env) exec(q string) *querypb.QueryResult {
	v.t.Helper()
	qr, err := v.e.Exec(context.Background(), q, true)
	if err != nil {
		v.t.Fatalf("%s: %v", q, err)
	}
	return qr
}

// row reads the stream's row.
func (v *env) row(id int32) (state, message, pos string) {
	v.t.Helper()
	if err := v.root.QueryRow("select state, ifnull(message, ''), pos from _vt.vreplication where id = ?", id).Scan(&state, &message, &pos); err != nil {
		v.t.Fatal(err)
	}
	return state, message, pos
}

// waitRunning waits until the stream copied everything and replicates.
func (v *env) waitRunning(id int32, timeout time.Duration) {
	v.t.Helper()
	eventually(v.t, timeout, fmt.Sprintf("stream %d copied and running", id), func() bool {
		state, _, pos := v.row(id)
		var n int
		_ = v.root.QueryRow("select count(*) from _vt.copy_state where vrepl_id = ?", id).Scan(&n)
		return state == stateRunning && pos != "" && n == 0
	})
}

func (v *env) waitState(id int32, want string, timeout time.Duration) string {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	var state, msg string
	for time.Now().Before(deadline) {
		if state, msg, _ = v.row(id); state == want {
			return msg
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.t.Fatalf("stream %d: state %s (%s), want %s within %v", id, state, msg, want, timeout)
	return ""
}

// target reads a target table by key (first column), values as strings, NULL as nil.
func (v *env) target(table string) map[int64][]*string {
	v.t.Helper()
	rows, err := v.root.Query(fmt.Sprintf("select * from %s.%s", v.dbName, table))
	if err != nil {
		v.t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[int64][]*string{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			v.t.Fatal(err)
		}
		row := make([]*string, len(cols))
		for i, s := range vals {
			if s.Valid {
				row[i] = strp(s.String)
			}
		}
		var k int64
		fmt.Sscan(*row[0], &k)
		out[k] = row
	}
	return out
}

func sameRows(a, b map[int64][]*string) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d rows against %d", len(a), len(b))
	}
	for k, ra := range a {
		rb, ok := b[k]
		if !ok {
			return fmt.Sprintf("key %d missing", k)
		}
		for i := range ra {
			if (ra[i] == nil) != (rb[i] == nil) || ra[i] != nil && *ra[i] != *rb[i] {
				return fmt.Sprintf("key %d column %d differs", k, i)
			}
		}
	}
	return ""
}

// waitSame waits until the target table equals the source's.
func (v *env) waitSame(table string, timeout time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	diff := ""
	for time.Now().Before(deadline) {
		if diff = sameRows(v.src.snapshot(table), v.target(table)); diff == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.t.Fatalf("table %s: target differs from source: %s", table, diff)
}

const itemsDDL = "create table items (id bigint not null, name varchar(64), qty int, primary key (id), key idx_name (name))"

var itemsFields = []*querypb.Field{intField("id"), textField("name"), {Name: "qty", Type: querypb.Type_INT32}}

func (v *env) items(table string, from, to int) {
	v.src.createTable(table, itemsFields...)
	for i := from; i <= to; i++ {
		v.src.load(table, []any{i, fmt.Sprintf("item %d", i), i % 97})
	}
}

// TestCopyThenReplicate: three tables copied (in parallel) while the source keeps writing;
// the stream reaches Running, the tables are identical, the deferred keys are back, the copy
// state is gone and the position is the source's.
func TestCopyThenReplicate(t *testing.T) {
	db := server(t)
	v := newEnv(t, db, "vt_copy", nil, itemsDDL, strings.Replace(itemsDDL, "items", "items2", 1), strings.Replace(itemsDDL, "items", "items3", 1))
	v.items("items", 1, 3000)
	v.items("items2", 1, 1500)
	v.items("items3", 1, 10)
	v.src.rowsDelay = 10 * time.Millisecond
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() { // writes during the copy: inserts, updates, deletes, across the key range
		defer wg.Done()
		for i := 0; ; i++ {
			writes.Add(1)
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			table := []string{"items", "items2", "items3"}[i%3]
			v.src.write(table, map[int64][]any{
				int64(5000 + i):   {5000 + i, "new", i},
				int64(i%1400 + 1): {i%1400 + 1, fmt.Sprintf("updated %d", i), -i},
				int64(i%700 + 2):  nil,
			})
		}
	}()
	id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "/.*"})
	v.waitRunning(id, 60*time.Second)
	n0 := writes.Load()
	eventually(t, 10*time.Second, "writes go on in the replication phase", func() bool { return writes.Load() > n0+100 })
	close(stop)
	wg.Wait()
	for _, table := range []string{"items", "items2", "items3"} {
		v.waitSame(table, 30*time.Second)
	}
	var n int
	if err := v.root.QueryRow("select count(*) from _vt.copy_state where vrepl_id = ?", id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("copy_state rows left: %d, %v", n, err)
	}
	if err := v.root.QueryRow("select count(*) from information_schema.statistics where table_schema = 'vt_copy' and index_name = 'idx_name'").Scan(&n); err != nil || n != 3 {
		t.Fatalf("deferred keys re-added on %d of 3 tables (%v)", n, err)
	}
	eventually(t, 10*time.Second, "the stream's position is the source's", func() bool {
		_, _, pos := v.row(id)
		v.src.mu.Lock()
		defer v.src.mu.Unlock()
		return pos == v.src.pos()
	})
	var copied int64
	if err := v.root.QueryRow("select rows_copied from _vt.vreplication where id = ?", id).Scan(&copied); err != nil || copied < 4510 {
		t.Fatalf("rows_copied %d (%v), want at least the 4510 rows there were at the start", copied, err)
	}
	st := v.e.Streams()
	if len(st) != 1 || st[0].State != stateRunning || st[0].TransactionsApplied == 0 || st[0].SourceTablet != "zone1-0000000100" {
		t.Fatalf("status: %+v", st)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCopyResumesFromLastPK: the source fails mid-copy; the stream records the error,
// retries, and asks for the rows after the last committed batch, never copying a row twice.
func TestCopyResumesFromLastPK(t *testing.T) {
	db := server(t)
	v := newEnv(t, db, "vt_resume", func(c *Config) { c.CopyWorkers = 3 }, itemsDDL)
	v.items("items", 1, 2000)
	v.src.failAfterRows = 700
	id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items", Filter: "select * from items"})
	v.waitRunning(id, 60*time.Second)
	v.waitSame("items", 10*time.Second)
	v.src.mu.Lock()
	reqs := append([]string(nil), v.src.rowsRequests...)
	v.src.mu.Unlock()
	if len(reqs) < 2 || reqs[0] != "items none" || !strings.HasPrefix(reqs[len(reqs)-1], "items ") || reqs[len(reqs)-1] == "items none" {
		t.Fatalf("VStreamRows requests %v: want a first one from the start, then one from a lastpk", reqs)
	}
	var errLogs int
	if err := v.root.QueryRow("select count(*) from _vt.vreplication_log where vrepl_id = ? and type = 'Error'", id).Scan(&errLogs); err != nil || errLogs == 0 {
		t.Fatalf("the failure is not in vreplication_log (%d, %v)", errLogs, err)
	}
}

// TestOnDDL applies each on_ddl mode to a DDL in the replication phase.
func TestOnDDL(t *testing.T) {
	db := server(t)
	for i, tc := range []struct {
		mode     binlogdatapb.OnDDLAction
		ddl      string
		state    string // after the DDL
		hasIndex bool   // the target got the DDL's index
	}{
		{binlogdatapb.OnDDLAction_IGNORE, "alter table items add index idx_qty (qty)", stateRunning, false},
		{binlogdatapb.OnDDLAction_STOP, "alter table items add index idx_qty (qty)", stateStopped, false},
		{binlogdatapb.OnDDLAction_EXEC, "alter table items add index idx_qty (qty)", stateRunning, true},
		{binlogdatapb.OnDDLAction_EXEC_IGNORE, "alter table items drop index no_such_index", stateRunning, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			v := newEnv(t, db, fmt.Sprintf("vt_ddl%d", i), nil, itemsDDL)
			v.items("items", 1, 50)
			id := v.create("wf", tc.mode, &binlogdatapb.Rule{Match: "items"})
			v.waitRunning(id, 30*time.Second)
			v.src.ddl(tc.ddl)
			v.src.write("items", map[int64][]any{1000: {1000, "after ddl", 1}})
			if tc.state == stateStopped {
				msg := v.waitState(id, stateStopped, 30*time.Second)
				if msg != "Stopped at DDL "+tc.ddl {
					t.Fatalf("message %q", msg)
				}
				if _, ok := v.target("items")[1000]; ok {
					t.Fatal("a row after the DDL was applied by a stopped stream")
				}
				return
			}
			v.waitSame("items", 30*time.Second)
			if state, msg, _ := v.row(id); state != tc.state {
				t.Fatalf("state %s (%s), want %s", state, msg, tc.state)
			}
			var n int
			_ = v.root.QueryRow("select count(*) from information_schema.statistics where table_schema = ? and index_name = 'idx_qty'", v.dbName).Scan(&n)
			if (n > 0) != tc.hasIndex {
				t.Fatalf("index idx_qty on the target: %v, want %v", n > 0, tc.hasIndex)
			}
		})
	}
}

// TestStopPosAndWaitForPos: WaitForPos returns once the position is applied; a stop
// position stops the stream with vttablet's message, after saving the position.
func TestStopPosAndWaitForPos(t *testing.T) {
	db := server(t)
	v := newEnv(t, db, "vt_stop", nil, itemsDDL)
	v.items("items", 1, 10)
	id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	v.waitRunning(id, 30*time.Second)
	v.src.write("items", map[int64][]any{20: {20, "x", 1}})
	v.src.mu.Lock()
	pos := v.src.pos()
	v.src.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.e.WaitForPos(ctx, id, pos); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.target("items")[20]; !ok {
		t.Fatal("WaitForPos returned before the row was applied")
	}
	// A position of the other flavor is refused at once.
	if err := v.e.WaitForPos(ctx, id, "MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"); rpcerr.Code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Fatalf("other flavor: %v", err)
	}
	v.src.mu.Lock()
	stopAt := fmt.Sprintf("MariaDB/0-1-%d", v.src.seq+1) // the position of the next write
	v.src.mu.Unlock()
	v.exec(fmt.Sprintf("update _vt.vreplication set stop_pos = %s where id = %d", QuoteString(stopAt), id))
	v.src.write("items", map[int64][]any{21: {21, "y", 1}})
	v.src.write("items", map[int64][]any{22: {22, "z", 1}})
	msg := v.waitState(id, stateStopped, 30*time.Second)
	if msg != "Stopped at position "+stopAt {
		t.Fatalf("message %q", msg)
	}
	if _, _, p := v.row(id); p != stopAt {
		t.Fatalf("pos %s, want the stop position %s", p, stopAt)
	}
	rows := v.target("items")
	if _, ok := rows[21]; !ok {
		t.Fatal("row 21 (at the stop position) missing")
	}
	if _, ok := rows[22]; ok {
		t.Fatal("row 22 (after the stop position) applied")
	}
	// Waiting for a position beyond a stopped stream fails with vttablet's message.
	v.src.mu.Lock()
	beyond := v.src.pos()
	v.src.mu.Unlock()
	if err := v.e.WaitForPos(ctx, id, beyond); err == nil || !strings.Contains(err.Error(), "replication has stopped at") {
		t.Fatalf("WaitForPos on a stopped stream: %v", err)
	}
}

// TestHeartbeats: an idle stream keeps time_heartbeat and time_updated fresh.
func TestHeartbeats(t *testing.T) {
	db := server(t)
	v := newEnv(t, db, "vt_hb", nil, itemsDDL)
	v.items("items", 1, 5)
	id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	v.waitRunning(id, 30*time.Second)
	var first int64
	eventually(t, 10*time.Second, "a heartbeat is recorded", func() bool {
		return v.root.QueryRow("select time_heartbeat from _vt.vreplication where id = ?", id).Scan(&first) == nil && first > 0
	})
	eventually(t, 10*time.Second, "time_heartbeat and time_updated move on while idle", func() bool {
		var hb, upd int64
		return v.root.QueryRow("select time_heartbeat, time_updated from _vt.vreplication where id = ?", id).Scan(&hb, &upd) == nil &&
			hb > first && upd >= hb
	})
}

// TestBadInput: what no retry can fix puts the stream in state Error with the reason.
func TestBadInput(t *testing.T) {
	db := server(t)
	for i, tc := range []struct {
		name  string
		rules []*binlogdatapb.Rule
		setup func(v *env)
		want  string // in the message
	}{
		{"missing table", []*binlogdatapb.Rule{{Match: "nope"}}, nil, "nope"},
		{"missing column", []*binlogdatapb.Rule{{Match: "items", Filter: "select id, nope from items"}}, nil, "nope"},
		{"malformed in_keyrange", []*binlogdatapb.Rule{{Match: "items", Filter: "select * from items where in_keyrange(id, 'hash')"}}, nil, "in_keyrange"},
		{"binlog purged", []*binlogdatapb.Rule{{Match: "items"}}, func(v *env) {
			v.src.vstreamErr = fmt.Errorf("Could not find GTID state requested by slave in any binlog files (errno 1236) (sqlstate HY000)")
		}, "purged past position"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, db, fmt.Sprintf("vt_bad%d", i), nil, itemsDDL)
			v.items("items", 1, 5)
			if tc.setup != nil {
				tc.setup(v)
			}
			id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, tc.rules...)
			msg := v.waitState(id, stateError, 30*time.Second)
			if !strings.HasPrefix(msg, terminalMarker) || !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q, want %q", msg, tc.want)
			}
		})
	}
	t.Run("position of the other flavor", func(t *testing.T) {
		v := newEnv(t, db, "vt_flavor", nil, itemsDDL)
		v.items("items", 1, 5)
		id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
		v.waitRunning(id, 30*time.Second)
		v.exec(fmt.Sprintf("update _vt.vreplication set pos = 'MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5' where id = %d", id))
		if msg := v.waitState(id, stateError, 30*time.Second); !strings.Contains(msg, "MySQL56") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("statement outside the set", func(t *testing.T) {
		v := newEnv(t, db, "vt_stmt", nil)
		if _, err := v.e.Exec(context.Background(), "drop database vt_stmt", true); rpcerr.Code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
			t.Fatalf("got %v", err)
		}
	})
}

// TestDeleteStopsAndCleans: deleting a copying stream stops it and removes its copy state.
func TestDeleteStopsAndCleans(t *testing.T) {
	db := server(t)
	v := newEnv(t, db, "vt_del", nil, itemsDDL)
	v.items("items", 1, 3000)
	v.src.rowsDelay = 20 * time.Millisecond
	id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	v.waitState(id, stateCopying, 30*time.Second)
	qr := v.exec(fmt.Sprintf("delete from _vt.vreplication where id = %d", id))
	if qr.RowsAffected != 1 {
		t.Fatalf("deleted %d rows", qr.RowsAffected)
	}
	var n int
	if err := v.root.QueryRow("select count(*) from _vt.copy_state where vrepl_id = ?", id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("copy_state rows left: %d, %v", n, err)
	}
	if len(v.e.Streams()) != 0 {
		t.Fatalf("streams left: %+v", v.e.Streams())
	}
}

// TestJournalMovesTheStream: a SHARDS journal naming this stream's source as its only
// participant replaces the stream by one stream per new shard, at the journal's positions,
// with the same workflow, rules and settings.
func TestJournalMovesTheStream(t *testing.T) {
	db := server(t)
	v := newEnv(t, db, "vt_journal", nil, itemsDDL)
	v.items("items", 1, 20)
	id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	v.waitRunning(id, 30*time.Second)
	v.src.journal(&binlogdatapb.Journal{Id: 7, MigrationType: binlogdatapb.MigrationType_SHARDS,
		Participants: []*binlogdatapb.KeyspaceShard{{Keyspace: "commerce", Shard: "0"}},
		ShardGtids: []*binlogdatapb.ShardGtid{{Keyspace: "commerce", Shard: "-80", Gtid: "MariaDB/0-2-10"},
			{Keyspace: "commerce", Shard: "80-", Gtid: "MariaDB/0-3-20"}}})
	type stream struct {
		id                   int32
		shard, pos, workflow string
	}
	var got []stream
	eventually(t, 30*time.Second, "the journal's new streams replace the old one", func() bool {
		rows, err := v.root.Query("select id, source, pos, workflow from _vt.vreplication where db_name = 'vt_journal' order by id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got = nil
		for rows.Next() {
			var s stream
			var src []byte
			if err := rows.Scan(&s.id, &src, &s.pos, &s.workflow); err != nil {
				t.Fatal(err)
			}
			bls := &binlogdatapb.BinlogSource{}
			if err := prototext.Unmarshal(src, bls); err != nil {
				t.Fatal(err)
			}
			if bls.GetFilter().GetRules()[0].GetMatch() != "items" {
				t.Fatalf("the new stream lost the rules: %v", bls)
			}
			s.shard = bls.Shard
			got = append(got, s)
		}
		return len(got) == 2 && got[0].id != id && got[1].id != id
	})
	if got[0].shard != "-80" || got[0].pos != "MariaDB/0-2-10" || got[1].shard != "80-" || got[1].pos != "MariaDB/0-3-20" ||
		got[0].workflow != "wf" || got[1].workflow != "wf" {
		t.Fatalf("new streams: %+v", got)
	}
}

// TestCopyWorkersIntoEmptyTables: several workers insert into an empty table without
// waiting on each other's locks (MariaDB locks an empty table for the transaction that
// inserts first; without the first-batch gate a later batch took it and the copy stalled
// until innodb_lock_wait_timeout).
func TestCopyWorkersIntoEmptyTables(t *testing.T) {
	db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir(), "--innodb-lock-wait-timeout=3"}})
	for i := 0; i < 4; i++ {
		v := newEnv(t, db, fmt.Sprintf("vt_empty%d", i), func(c *Config) { c.CopyWorkers = 4 }, itemsDDL, strings.Replace(itemsDDL, "items", "items2", 1))
		v.items("items", 1, 50000)
		v.items("items2", 1, 1000)
		v.src.rowsBatch = 3000
		id := v.create("wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "/.*"})
		v.waitRunning(id, 2*time.Minute)
		var n int
		if err := v.root.QueryRow("select count(*) from _vt.vreplication_log where vrepl_id = ? and type = 'Error'", id).Scan(&n); err != nil || n != 0 {
			var msg string
			_ = v.root.QueryRow("select message from _vt.vreplication_log where vrepl_id = ? and type = 'Error' limit 1", id).Scan(&msg)
			t.Fatalf("round %d: the copy failed %d times: %s", i, n, msg)
		}
		v.waitSame("items", 10*time.Second)
	}
}
