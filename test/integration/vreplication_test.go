package integration

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// VReplication between two in-process tabletd PRIMARYs on real MariaDB and etcd: a source
// (commerce/0) and a target (customer/0), driven through the target's TabletManager RPCs as
// vtctld drives them (CreateVReplicationWorkflow, then UpdateVReplicationWorkflow Running).

// vrPair is a source and a target primary.
type vrPair struct {
	e            *env
	src, dst     *member
	srcDB, dstDB *mariadbtest.Server
	dstCfg       tablet.Config
}

const vrTable = "create table items (id bigint not null, name varchar(64), qty int, note text, primary key (id), key idx_name (name))"

func newVRPair(t *testing.T, tweak func(*tablet.Config)) *vrPair {
	t.Helper()
	p := &vrPair{e: newEnv(t)}
	start := func(uid uint32, keyspace string, db *mariadbtest.Server) (*member, tablet.Config) {
		cfg := tabletConfig(p.e, db, tabletOpts{uid: uid, initType: topodatapb.TabletType_PRIMARY})
		cfg.Keyspace = keyspace
		cfg.VReplication.RetryDelay, cfg.VReplication.MaxRetryDelay = 200*time.Millisecond, 2*time.Second
		cfg.VReplication.RowsCopiedInterval = 200 * time.Millisecond
		if tweak != nil {
			tweak(&cfg)
		}
		db.Exec(t, "create database if not exists vt_"+keyspace)
		m := &member{running: startTablet(t, cfg), db: db, root: db.RootDB(t), alias: cfg.Alias}
		eventually(t, 20*time.Second, keyspace+" primary registered, serving, with its sidecar schema", func() bool {
			reg, _, _ := m.t.Manager().TopoStatus()
			var n int
			_ = m.root.QueryRow("select count(*) from information_schema.tables where table_schema = '_vt' and table_name in ('vreplication', 'copy_state', 'post_copy_action', 'vreplication_log', 'resharding_journal')").Scan(&n)
			return reg && m.t.QueryService().Status().Serving && n == 5
		})
		return m, cfg
	}
	p.srcDB = mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}})
	p.dstDB = mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}})
	p.src, _ = start(100, "commerce", p.srcDB)
	p.dst, p.dstCfg = start(200, "customer", p.dstDB)
	p.srcDB.Exec(t, "use vt_commerce", vrTable)
	p.dstDB.Exec(t, "use vt_customer", vrTable)
	return p
}

// load inserts n rows on the source.
func (p *vrPair) load(t *testing.T, from, n int) {
	t.Helper()
	for i := from; i < from+n; i += 500 {
		var vals []string
		for j := i; j < min(i+500, from+n); j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'item %d', %d, repeat('x', %d))", j, j, j%13, j%50))
		}
		p.srcDB.Exec(t, "insert into vt_commerce.items (id, name, qty, note) values "+strings.Join(vals, ","))
	}
}

func vrCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// create makes a workflow with one stream from commerce/0 and starts it, as vtctld does.
func (p *vrPair) create(t *testing.T, workflow string, onDDL binlogdatapb.OnDDLAction, rules ...*binlogdatapb.Rule) {
	t.Helper()
	ctx := vrCtx(t)
	_, err := p.dst.tm.CreateVReplicationWorkflow(ctx, &tmpb.CreateVReplicationWorkflowRequest{Workflow: workflow,
		BinlogSource: []*binlogdatapb.BinlogSource{{Keyspace: "commerce", Shard: "0", OnDdl: onDDL, Filter: &binlogdatapb.Filter{Rules: rules}}},
		TabletTypes:  []topodatapb.TabletType{topodatapb.TabletType_REPLICA, topodatapb.TabletType_PRIMARY}, TabletSelectionPreference: tmpb.TabletSelectionPreference_INORDER,
		WorkflowType: binlogdatapb.VReplicationWorkflowType_MoveTables, DeferSecondaryKeys: true, Options: "{}"})
	if err != nil {
		t.Fatalf("CreateVReplicationWorkflow: %v", err)
	}
	running := binlogdatapb.VReplicationWorkflowState_Running
	if _, err := p.dst.tm.UpdateVReplicationWorkflow(ctx, &tmpb.UpdateVReplicationWorkflowRequest{Workflow: workflow, State: &running,
		Cells: []string{"NULL"}, TabletTypes: []topodatapb.TabletType{-1}}); err != nil {
		t.Fatalf("UpdateVReplicationWorkflow: %v", err)
	}
}

// stream reads the workflow's single stream.
func (p *vrPair) stream(t *testing.T, workflow string) *tmpb.ReadVReplicationWorkflowResponse_Stream {
	t.Helper()
	wf, err := p.dst.tm.ReadVReplicationWorkflow(vrCtx(t), &tmpb.ReadVReplicationWorkflowRequest{Workflow: workflow})
	if err != nil {
		t.Fatalf("ReadVReplicationWorkflow: %v", err)
	}
	if len(wf.Streams) != 1 {
		t.Fatalf("workflow %s has %d streams", workflow, len(wf.Streams))
	}
	return wf.Streams[0]
}

// waitState waits for a stream state; Running also needs the copy done.
func (p *vrPair) waitState(t *testing.T, workflow string, want binlogdatapb.VReplicationWorkflowState, timeout time.Duration) *tmpb.ReadVReplicationWorkflowResponse_Stream {
	t.Helper()
	var s *tmpb.ReadVReplicationWorkflowResponse_Stream
	eventually(t, timeout, fmt.Sprintf("workflow %s in state %v", workflow, want), func() bool {
		s = p.stream(t, workflow)
		if s.State != want {
			return false
		}
		if want != binlogdatapb.VReplicationWorkflowState_Running {
			return true
		}
		var n int
		_ = p.dst.root.QueryRow("select count(*) from _vt.copy_state").Scan(&n)
		return n == 0 && s.Pos != ""
	})
	return s
}

// checksum is a table's row count and checksum.
func checksum(t *testing.T, db *sql.DB, dbName string) string {
	t.Helper()
	var n, sum sql.NullInt64
	if err := db.QueryRow(fmt.Sprintf("select count(*), sum(crc32(concat_ws('#', id, name, qty, note))) from %s.items", dbName)).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, checksum %d", n.Int64, sum.Int64)
}

func (p *vrPair) waitSame(t *testing.T, timeout time.Duration) string {
	t.Helper()
	var a, b string
	eventually(t, timeout, "items identical on source and target", func() bool {
		a, b = checksum(t, p.src.root, "vt_commerce"), checksum(t, p.dst.root, "vt_customer")
		return a == b
	})
	return a
}

// writer changes source rows until stopped: inserts above the loaded range, updates and
// deletes inside it.
func (p *vrPair) writer(t *testing.T, base int) (stop func(), count func() int64) {
	var n atomic.Int64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			stmts := []string{
				fmt.Sprintf("insert into vt_commerce.items (id, name, qty, note) values (%d, 'new', %d, 'w')", base+i, i),
				fmt.Sprintf("update vt_commerce.items set qty = qty + 1, note = 'u%d' where id = %d", i, 1+(i*7)%base),
				fmt.Sprintf("delete from vt_commerce.items where id = %d", 2+(i*13)%base),
			}
			if _, err := p.src.root.Exec(stmts[i%3]); err == nil {
				n.Add(1)
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); <-finished }) }
	t.Cleanup(stop)
	return stop, n.Load
}

// TestVReplicationCopyAndReplicate: a MoveTables-shaped workflow between two tabletd: the copy
// runs while the source takes writes, the stream reaches Running, both sides hold the same
// rows, VReplicationWaitForPos reaches the source's position, and the RPCs, the status page,
// /debug/vreplication and the metrics show the stream.
func TestVReplicationCopyAndReplicate(t *testing.T) {
	p := newVRPair(t, nil)
	p.load(t, 1, 20000)
	stop, writes := p.writer(t, 20000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items", Filter: "select * from `items`"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 2*time.Minute)
	n0 := writes()
	eventually(t, 20*time.Second, "writes in the replication phase", func() bool { return writes() > n0+200 })
	stop()
	t.Logf("source and target: %s", p.waitSame(t, 30*time.Second))

	ctx := vrCtx(t)
	pp, err := p.src.tm.PrimaryPosition(ctx, &tmpb.PrimaryPositionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s := p.stream(t, "wf")
	if _, err := p.dst.tm.VReplicationWaitForPos(ctx, &tmpb.VReplicationWaitForPosRequest{Id: s.Id, Position: pp.Position}); err != nil {
		t.Fatalf("VReplicationWaitForPos(%s): %v", pp.Position, err)
	}
	// rows_copied: the snapshot's rows, 20000 loaded less what the writer deleted first.
	if s.RowsCopied < 18000 || s.TimeUpdated.GetSeconds() == 0 || s.TransactionTimestamp.GetSeconds() == 0 {
		t.Fatalf("stream row: rows_copied %d, time_updated %v, transaction_timestamp %v", s.RowsCopied, s.TimeUpdated, s.TransactionTimestamp)
	}
	var keys int
	if err := p.dst.root.QueryRow("select count(*) from information_schema.statistics where table_schema = 'vt_customer' and table_name = 'items' and index_name = 'idx_name'").Scan(&keys); err != nil || keys != 1 {
		t.Fatalf("the deferred secondary key is not back (%d, %v)", keys, err)
	}
	has, err := p.dst.tm.HasVReplicationWorkflows(ctx, &tmpb.HasVReplicationWorkflowsRequest{})
	if err != nil || !has.Has {
		t.Fatalf("HasVReplicationWorkflows: %v, %v", has, err)
	}
	list, err := p.dst.tm.ReadVReplicationWorkflows(ctx, &tmpb.ReadVReplicationWorkflowsRequest{IncludeWorkflows: []string{"wf"}})
	if err != nil || len(list.Workflows) != 1 || list.Workflows[0].TabletSelectionPreference != tmpb.TabletSelectionPreference_INORDER {
		t.Fatalf("ReadVReplicationWorkflows: %v, %v", list, err)
	}
	qr, err := p.dst.tm.VReplicationExec(ctx, &tmpb.VReplicationExecRequest{Query: "select count(*) from _vt.vreplication_log where vrepl_id = " + fmt.Sprint(s.Id)})
	if err != nil || len(qr.Result.Rows) != 1 {
		t.Fatalf("VReplicationExec select: %v, %v", qr, err)
	}
	perm, err := p.src.tm.ValidateVReplicationPermissions(ctx, &tmpb.ValidateVReplicationPermissionsRequest{})
	if err != nil || !perm.Ok || perm.User != "vt_filtered" {
		t.Fatalf("ValidateVReplicationPermissions: %v, %v", perm, err)
	}
	base := "http://" + p.dst.t.HTTPAddr()
	if code, body := httpGet(t, base+"/debug/vreplication"); code != 200 || !strings.Contains(body, "wf") || !strings.Contains(body, "Running") {
		t.Fatalf("/debug/vreplication: %d\n%s", code, body)
	}
	if code, body := httpGet(t, base+"/debug/status"); code != 200 || !strings.Contains(body, "stream 1 wf from commerce/0") {
		t.Fatalf("/debug/status lacks the stream: %d", code)
	}
	if code, body := httpGet(t, base+"/metrics"); code != 200 || !strings.Contains(body, `tabletd_vreplication_rows_copied_total{keyspace="customer",shard="0",stream="1",workflow="wf"}`) {
		t.Fatalf("/metrics lacks the stream's series: %d", code)
	}
	if _, err := p.dst.tm.DeleteVReplicationWorkflow(ctx, &tmpb.DeleteVReplicationWorkflowRequest{Workflow: "wf"}); err != nil {
		t.Fatal(err)
	}
	if wf, err := p.dst.tm.ReadVReplicationWorkflow(ctx, &tmpb.ReadVReplicationWorkflowRequest{Workflow: "wf"}); err != nil || len(wf.Streams) != 0 {
		t.Fatalf("after delete: %v, %v", wf, err)
	}
}

// TestVReplicationTargetRestartMidCopy: the target tabletd stops in the middle of the copy
// and starts again; the copy resumes from _vt.copy_state and ends with identical tables.
func TestVReplicationTargetRestartMidCopy(t *testing.T) {
	p := newVRPair(t, func(c *tablet.Config) { c.VReplication.CopyWorkers = 2 })
	p.load(t, 1, 60000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	var lastpk string
	eventually(t, 60*time.Second, "the copy made progress", func() bool {
		return p.dst.root.QueryRow("select ifnull(lastpk, '') from _vt.copy_state limit 1").Scan(&lastpk) == nil && lastpk != ""
	})
	p.dst.stop()
	var copied int
	_ = p.dst.root.QueryRow("select count(*) from vt_customer.items").Scan(&copied)
	if copied == 0 || copied >= 60000 {
		t.Fatalf("%d rows copied when the target stopped: want a copy in progress", copied)
	}
	p.dst = &member{running: startTablet(t, p.dstCfg), db: p.dstDB, root: p.dstDB.RootDB(t), alias: p.dstCfg.Alias}
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 2*time.Minute)
	t.Logf("stopped after %d rows; then %s", copied, p.waitSame(t, 30*time.Second))
}

// TestVReplicationSourceRestart: the source's mysqld restarts while the stream replicates;
// the stream fails, retries and goes on from its position.
func TestVReplicationSourceRestart(t *testing.T) {
	p := newVRPair(t, nil)
	p.load(t, 1, 1000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, time.Minute)
	p.srcDB.Restart(t)
	eventually(t, 30*time.Second, "the source serves again", func() bool { return p.src.t.QueryService().Status().Serving })
	p.srcDB.Exec(t, "insert into vt_commerce.items (id, name, qty) values (5000, 'after restart', 1)")
	p.waitSame(t, time.Minute)
	if s := p.stream(t, "wf"); s.State != binlogdatapb.VReplicationWorkflowState_Running {
		t.Fatalf("state %v (%s)", s.State, s.Message)
	}
}

// TestVReplicationOnDDL runs each on_ddl mode against a real DDL on the source.
func TestVReplicationOnDDL(t *testing.T) {
	for _, tc := range []struct {
		mode     binlogdatapb.OnDDLAction
		ddl      string
		want     binlogdatapb.VReplicationWorkflowState
		hasIndex bool
	}{
		{binlogdatapb.OnDDLAction_IGNORE, "alter table items add index idx_qty (qty)", binlogdatapb.VReplicationWorkflowState_Running, false},
		{binlogdatapb.OnDDLAction_STOP, "alter table items add index idx_qty (qty)", binlogdatapb.VReplicationWorkflowState_Stopped, false},
		{binlogdatapb.OnDDLAction_EXEC, "alter table items add index idx_qty (qty)", binlogdatapb.VReplicationWorkflowState_Running, true},
		{binlogdatapb.OnDDLAction_EXEC_IGNORE, "alter table items add index idx_qty (qty)", binlogdatapb.VReplicationWorkflowState_Running, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			p := newVRPair(t, nil)
			p.load(t, 1, 100)
			if tc.mode == binlogdatapb.OnDDLAction_EXEC_IGNORE {
				p.dstDB.Exec(t, "alter table vt_customer.items add index idx_qty (qty)") // the DDL then fails on the target
			}
			p.create(t, "wf", tc.mode, &binlogdatapb.Rule{Match: "items"})
			p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, time.Minute)
			p.srcDB.Exec(t, "use vt_commerce", tc.ddl, "insert into items (id, name, qty) values (9999, 'after', 1)")
			if tc.want == binlogdatapb.VReplicationWorkflowState_Stopped {
				s := p.waitState(t, "wf", tc.want, time.Minute)
				if !strings.HasPrefix(s.Message, "Stopped at DDL ") {
					t.Fatalf("message %q", s.Message)
				}
				return
			}
			p.waitSame(t, time.Minute)
			if s := p.stream(t, "wf"); s.State != tc.want {
				t.Fatalf("state %v (%s)", s.State, s.Message)
			}
			var n int
			_ = p.dst.root.QueryRow("select count(*) from information_schema.statistics where table_schema = 'vt_customer' and index_name = 'idx_qty'").Scan(&n)
			if (n > 0) != tc.hasIndex {
				t.Fatalf("idx_qty on the target: %v, want %v", n > 0, tc.hasIndex)
			}
		})
	}
}

// TestVReplicationBinlogPurged: the source purged its binlog past the stream's position; the
// stream goes to state Error saying so, without skipping anything.
func TestVReplicationBinlogPurged(t *testing.T) {
	p := newVRPair(t, nil)
	p.load(t, 1, 100)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, time.Minute)
	ctx := vrCtx(t)
	stopped := binlogdatapb.VReplicationWorkflowState_Stopped
	if _, err := p.dst.tm.UpdateVReplicationWorkflow(ctx, &tmpb.UpdateVReplicationWorkflowRequest{Workflow: "wf", State: &stopped,
		Cells: []string{"NULL"}, TabletTypes: []topodatapb.TabletType{-1}}); err != nil {
		t.Fatal(err)
	}
	p.srcDB.Exec(t, "insert into vt_commerce.items (id, name, qty) values (7000, 'missed', 1)", "flush binary logs", "flush binary logs")
	// MariaDB keeps a binlog until InnoDB made its transactions durable (the binlog checkpoint):
	// purge until only the newest is left.
	eventually(t, 30*time.Second, "the source purged its older binary logs", func() bool {
		logs := binaryLogs(t, p.src.root)
		if len(logs) == 1 {
			return true
		}
		p.srcDB.Exec(t, "purge binary logs to '"+logs[len(logs)-1]+"'")
		return false
	})
	running := binlogdatapb.VReplicationWorkflowState_Running
	if _, err := p.dst.tm.UpdateVReplicationWorkflow(ctx, &tmpb.UpdateVReplicationWorkflowRequest{Workflow: "wf", State: &running,
		Cells: []string{"NULL"}, TabletTypes: []topodatapb.TabletType{-1}}); err != nil {
		t.Fatal(err)
	}
	s := p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Error, time.Minute)
	if !strings.Contains(s.Message, "purged") {
		t.Fatalf("message %q does not say the binlog was purged", s.Message)
	}
	var n int
	if err := p.dst.root.QueryRow("select count(*) from vt_customer.items where id = 7000").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the row written before the purge: %d (%v)", n, err)
	}
}

// TestVReplicationBadInput: the RPCs refuse what cannot work with INVALID_ARGUMENT.
func TestVReplicationBadInput(t *testing.T) {
	p := newVRPair(t, nil)
	ctx := vrCtx(t)
	for name, call := range map[string]func() error{
		"exec outside the set": func() error {
			_, err := p.dst.tm.VReplicationExec(ctx, &tmpb.VReplicationExecRequest{Query: "delete from vt_customer.items"})
			return err
		},
		"unsafe update": func() error {
			_, err := p.dst.tm.VReplicationExec(ctx, &tmpb.VReplicationExecRequest{Query: "update _vt.vreplication set state = 'Running'"})
			return err
		},
		"no binlog source": func() error {
			_, err := p.dst.tm.CreateVReplicationWorkflow(ctx, &tmpb.CreateVReplicationWorkflowRequest{Workflow: "x"})
			return err
		},
		"bad shard": func() error {
			_, err := p.dst.tm.CreateVReplicationWorkflow(ctx, &tmpb.CreateVReplicationWorkflowRequest{Workflow: "x",
				BinlogSource: []*binlogdatapb.BinlogSource{{Keyspace: "commerce", Shard: "80-40", Filter: &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "items"}}}}}})
			return err
		},
		"wait for another flavor": func() error {
			_, err := p.dst.tm.VReplicationWaitForPos(ctx, &tmpb.VReplicationWaitForPosRequest{Id: 1, Position: "not-a-position"})
			return err
		},
	} {
		if code := rpcerr.Code(call()); code != vtrpcpb.Code_INVALID_ARGUMENT {
			t.Errorf("%s: code %v, want INVALID_ARGUMENT", name, code)
		}
	}
	// A filter naming a missing table puts the stream in Error with the reason.
	p.create(t, "missing", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "nosuchtable"})
	s := p.waitState(t, "missing", binlogdatapb.VReplicationWorkflowState_Error, time.Minute)
	if !strings.Contains(s.Message, "nosuchtable") {
		t.Fatalf("message %q", s.Message)
	}
}

func binaryLogs(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("show binary logs")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var logs []string
	for rows.Next() {
		var name string
		var size any
		if err := rows.Scan(&name, &size); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, name)
	}
	return logs
}
