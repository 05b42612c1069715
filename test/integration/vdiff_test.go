package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// VDiff between in-process tabletd on real MariaDB and etcd, driven through the target's
// TabletManager VDiff RPC with the requests vtctld sends.

// vdiffTweak makes diffs quick to observe: progress saved often, retries soon, no pause
// before a --max-diff-duration restart.
func vdiffTweak(progressRows int64) func(*tablet.Config) {
	return func(c *tablet.Config) {
		c.VDiff.ProgressRows = progressRows
		c.VDiff.RetryInterval = 500 * time.Millisecond
		c.VDiff.RestartDelay = 0
	}
}

// vdiffReq calls VDiff on the target as vtctld does.
func vdiffReq(t *testing.T, r *running, action, arg, uuid string, opts *tmpb.VDiffOptions) (*tmpb.VDiffResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.tm.VDiff(ctx, &tmpb.VDiffRequest{Keyspace: r.cfg.Keyspace, Workflow: "wf", Action: action, ActionArg: arg, VdiffUuid: uuid, Options: opts})
}

// createOptions are vtctldclient VDiff create's defaults (vtctld's VDiffCreate).
func createOptions(mod func(*tmpb.VDiffOptions)) *tmpb.VDiffOptions {
	autoStart := true
	o := &tmpb.VDiffOptions{
		PickerOptions: &tmpb.VDiffPickerOptions{TabletTypes: "in_order:RDONLY,REPLICA,PRIMARY"},
		CoreOptions: &tmpb.VDiffCoreOptions{AutoRetry: true, MaxRows: 1<<63 - 1, TimeoutSeconds: 30,
			MaxExtraRowsToCompare: 1000, AutoStart: &autoStart},
		ReportOptions: &tmpb.VDiffReportOptions{MaxSampleRows: 10, RowDiffColumnTruncateAt: 128},
	}
	if mod != nil {
		mod(o)
	}
	return o
}

var uuidSeq int

// newUUID returns a fresh UUID for a diff.
func newUUID() string {
	uuidSeq++
	return fmt.Sprintf("6d1d7c1e-5a6b-11ee-8c99-%012x", uuidSeq)
}

// summaryRow is a row of "show <uuid>", by the column names vtctldclient reads.
type summaryRow map[string]string

func resultRows(qr *querypb.QueryResult) []summaryRow {
	var out []summaryRow
	for _, r := range qr.GetRows() {
		m := summaryRow{}
		off := int64(0)
		for i, l := range r.Lengths {
			if l >= 0 {
				m[qr.Fields[i].Name] = string(r.Values[off : off+l])
				off += l
			}
		}
		out = append(out, m)
	}
	return out
}

// diffReport is the report JSON as vtctldclient's BuildSummary parses it.
type diffReport struct {
	TableName                                                                     string
	ProcessedRows, MatchingRows, MismatchedRows, ExtraRowsSource, ExtraRowsTarget int64
	ExtraRowsSourceSample, ExtraRowsTargetSample                                  []struct{ Row map[string]string }
	MismatchedRowsSample                                                          []struct {
		Source, Target struct{ Row map[string]string }
	}
}

// waitDiff waits until the diff is in state want (on the _vt.vdiff row) and returns its
// summary rows.
func waitDiff(t *testing.T, r *running, uuid, want string, timeout time.Duration) []summaryRow {
	t.Helper()
	return waitDiffState(t, r, uuid, want, timeout, want == "error")
}

// waitDiffState is waitDiff; a diff in state error fails the test unless allowError.
func waitDiffState(t *testing.T, r *running, uuid, want string, timeout time.Duration, allowError bool) []summaryRow {
	t.Helper()
	var rows []summaryRow
	eventually(t, timeout, "vdiff "+uuid+" "+want, func() bool {
		resp, err := vdiffReq(t, r, "show", uuid, "", nil)
		if err != nil {
			t.Fatalf("show %s: %v", uuid, err)
		}
		rows = resultRows(resp.Output)
		if len(rows) == 0 {
			t.Fatalf("show %s: no rows", uuid)
		}
		if rows[0]["vdiff_state"] == "error" && !allowError {
			t.Fatalf("vdiff %s failed: %s", uuid, rows[0]["last_error"])
		}
		return rows[0]["vdiff_state"] == want
	})
	return rows
}

func reportOf(t *testing.T, row summaryRow) diffReport {
	t.Helper()
	var dr diffReport
	if err := json.Unmarshal([]byte(row["report"]), &dr); err != nil {
		t.Fatalf("report %q: %v", row["report"], err)
	}
	return dr
}

// assertRunning checks that the workflow runs again: every stream Running, message and
// stop_pos cleared.
func assertRunning(t *testing.T, p *vrPair) {
	t.Helper()
	eventually(t, 20*time.Second, "the workflow runs again", func() bool {
		var n int
		_ = p.dst.root.QueryRow("select count(*) from _vt.vreplication where workflow = 'wf' and (state != 'Running' or message != '' or stop_pos != '')").Scan(&n)
		return n == 0
	})
}

// TestVDiffMoveTables: a clean diff reports every row matching; rows changed directly on the
// target (one updated, one deleted, one inserted) are reported exactly, with their keys;
// show last and show all list the diffs; delete all removes every vdiff row. The workflow
// runs again after each diff.
func TestVDiffMoveTables(t *testing.T) {
	p := newVRPair(t, vdiffTweak(1000))
	p.load(t, 1, 5000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items", Filter: "select * from `items`"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 2*time.Minute)
	p.waitSame(t, 30*time.Second)

	clean := newUUID()
	resp, err := vdiffReq(t, p.dst.running, "create", "", clean, createOptions(nil))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if resp.VdiffUuid != clean || resp.Id == 0 {
		t.Fatalf("create answered %v", resp)
	}
	rows := waitDiff(t, p.dst.running, clean, "completed", time.Minute)
	if len(rows) != 1 || rows[0]["table_name"] != "items" || rows[0]["table_state"] != "completed" || rows[0]["has_mismatch"] != "0" ||
		rows[0]["rows_compared"] != "5000" || rows[0]["started_at"] == "" || rows[0]["completed_at"] == "" {
		t.Fatalf("clean diff summary: %v", rows)
	}
	if dr := reportOf(t, rows[0]); dr.MatchingRows != 5000 || dr.ProcessedRows != 5000 || dr.MismatchedRows+dr.ExtraRowsSource+dr.ExtraRowsTarget != 0 {
		t.Fatalf("clean diff report: %+v", dr)
	}
	assertRunning(t, p)

	// Changes the workflow does not carry: only the target's MariaDB has them.
	p.dstDB.Exec(t, "use vt_customer", "update items set qty = qty + 100 where id = 1234", "delete from items where id = 2345",
		"insert into items (id, name, qty, note) values (999999, 'only on target', 1, 'x')")
	bad := newUUID()
	if _, err := vdiffReq(t, p.dst.running, "create", "", bad, createOptions(nil)); err != nil {
		t.Fatalf("create: %v", err)
	}
	rows = waitDiff(t, p.dst.running, bad, "completed", time.Minute)
	dr := reportOf(t, rows[0])
	if rows[0]["has_mismatch"] != "1" || dr.MismatchedRows != 1 || dr.ExtraRowsSource != 1 || dr.ExtraRowsTarget != 1 || dr.MatchingRows != 4998 {
		t.Fatalf("diff after the changes: %v\n%+v", rows, dr)
	}
	if len(dr.MismatchedRowsSample) != 1 || dr.MismatchedRowsSample[0].Source.Row["id"] != "1234" || dr.MismatchedRowsSample[0].Target.Row["id"] != "1234" ||
		dr.MismatchedRowsSample[0].Source.Row["qty"] == dr.MismatchedRowsSample[0].Target.Row["qty"] {
		t.Fatalf("mismatch sample: %+v", dr.MismatchedRowsSample)
	}
	if len(dr.ExtraRowsSourceSample) != 1 || dr.ExtraRowsSourceSample[0].Row["id"] != "2345" {
		t.Fatalf("extra source sample: %+v", dr.ExtraRowsSourceSample)
	}
	if len(dr.ExtraRowsTargetSample) != 1 || dr.ExtraRowsTargetSample[0].Row["id"] != "999999" || dr.ExtraRowsTargetSample[0].Row["name"] != "only on target" {
		t.Fatalf("extra target sample: %+v", dr.ExtraRowsTargetSample)
	}
	assertRunning(t, p)

	// show last is the newest; show all lists both, newest first, with the columns
	// vtctldclient reads.
	last, err := vdiffReq(t, p.dst.running, "show", "last", "", nil)
	if err != nil || last.VdiffUuid != bad {
		t.Fatalf("show last: %v, %v", last, err)
	}
	all, err := vdiffReq(t, p.dst.running, "show", "all", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	list := resultRows(all.Output)
	if len(list) != 2 || list[0]["vdiff_uuid"] != bad || list[1]["vdiff_uuid"] != clean || list[0]["workflow"] != "wf" ||
		list[0]["keyspace"] != "customer" || list[0]["shard"] != "0" || list[0]["state"] != "completed" {
		t.Fatalf("show all: %v", list)
	}
	var opts tmpb.VDiffOptions
	if err := json.Unmarshal([]byte(list[0]["options"]), &opts); err != nil || opts.PickerOptions.SourceCell != cell || !opts.CoreOptions.AutoRetry {
		t.Fatalf("options column %q: %v", list[0]["options"], err)
	}

	// Visibility: the variables vttablet publishes, and the status page.
	base := "http://" + p.dst.t.HTTPAddr()
	_, vars := httpGet(t, base+"/debug/vars")
	var v map[string]any
	if err := json.Unmarshal([]byte(vars), &v); err != nil {
		t.Fatal(err)
	}
	// 5000 rows, then 4998 matching, 1 mismatched and 2 extra.
	if n, _ := v["VDiffRowsComparedTotal"].(float64); n != 10001 {
		t.Fatalf("VDiffRowsComparedTotal %v, want 10001", v["VDiffRowsComparedTotal"])
	}
	for _, name := range []string{"VDiffCount", "VDiffErrorCountTotal", "VDiffRowsCompared", "VDiffRestartedTableDiffsCount", "VDiffErrors", "VDiffPhaseTimings"} {
		if _, ok := v[name]; !ok {
			t.Errorf("/debug/vars lacks %s", name)
		}
	}
	if code, body := httpGet(t, base+"/debug/status"); code != 200 || !strings.Contains(body, "<h2>VDiff</h2>") {
		t.Fatalf("/debug/status: %d, no VDiff section", code)
	}
	if _, body := httpGet(t, base+"/metrics"); !strings.Contains(body, "vttablet_v_diff_rows_compared_total 10001") {
		t.Fatalf("/metrics lacks vttablet_v_diff_rows_compared_total 10001")
	}

	if _, err := vdiffReq(t, p.dst.running, "delete", "all", "", nil); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"vdiff", "vdiff_table", "vdiff_log"} {
		var n int
		if err := p.dst.root.QueryRow("select count(*) from _vt." + table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("after delete all: %d rows in _vt.%s (%v)", n, table, err)
		}
	}
	if resp, err := vdiffReq(t, p.dst.running, "show", "last", "", nil); err != nil || resp.VdiffUuid != "" || len(resp.GetOutput().GetRows()) != 0 {
		t.Fatalf("show last after delete: %v, %v", resp, err)
	}
}

// rowsCompared reads a diff's rows_compared and state from the target's vdiff tables.
func rowsCompared(t *testing.T, p *vrPair, uuid string) (int64, string) {
	t.Helper()
	var n int64
	var state string
	_ = p.dst.root.QueryRow("select ifnull(sum(vdt.rows_compared), 0), vd.state from _vt.vdiff vd left join _vt.vdiff_table vdt on vd.id = vdt.vdiff_id where vd.vdiff_uuid = ? group by vd.id", uuid).Scan(&n, &state)
	return n, state
}

// TestVDiffUnderWrites: the source takes inserts, updates and deletes all through the diff;
// the synchronisation makes both sides one point in time, so the diff is clean.
func TestVDiffUnderWrites(t *testing.T) {
	p := newVRPair(t, vdiffTweak(500))
	p.load(t, 1, 20000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items", Filter: "select * from `items`"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 2*time.Minute)
	stop, writes := p.writer(t, 20000)
	eventually(t, 20*time.Second, "writes flowing", func() bool { return writes() > 100 })
	for i := 0; i < 2; i++ {
		uuid := newUUID()
		if _, err := vdiffReq(t, p.dst.running, "create", "", uuid, createOptions(nil)); err != nil {
			t.Fatalf("create: %v", err)
		}
		rows := waitDiff(t, p.dst.running, uuid, "completed", time.Minute)
		dr := reportOf(t, rows[0])
		if rows[0]["has_mismatch"] != "0" || dr.MismatchedRows+dr.ExtraRowsSource+dr.ExtraRowsTarget != 0 || dr.MatchingRows < 15000 {
			t.Fatalf("diff %d under writes: %v\n%+v", i, rows, dr)
		}
		t.Logf("diff %d under writes: %d rows matching, %d writes so far", i, dr.MatchingRows, writes())
		assertRunning(t, p)
	}
	stop()
	t.Logf("after the writes: %s", p.waitSame(t, 30*time.Second))
}

// TestVDiffStopResumeRestart: a diff stopped mid-table keeps its progress and resume
// finishes it with the right total; a diff longer than --max-diff-duration restarts from
// its last key with new snapshots and still counts every row once.
func TestVDiffStopResumeRestart(t *testing.T) {
	p := newVRPair(t, vdiffTweak(1)) // progress saved after every row: a slow diff
	p.load(t, 1, 6000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 2*time.Minute)

	uuid := newUUID()
	if _, err := vdiffReq(t, p.dst.running, "create", "", uuid, createOptions(nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the diff under way", func() bool {
		n, st := rowsCompared(t, p, uuid)
		return st == "started" && n >= 200
	})
	if _, err := vdiffReq(t, p.dst.running, "stop", "", uuid, nil); err != nil {
		t.Fatalf("stop: %v", err)
	}
	rows := waitDiff(t, p.dst.running, uuid, "stopped", 10*time.Second)
	stoppedAt, _ := strconv.ParseInt(rows[0]["rows_compared"], 10, 64)
	if rows[0]["table_state"] != "stopped" || stoppedAt == 0 || stoppedAt >= 6000 {
		t.Fatalf("after stop: %v", rows)
	}
	assertRunning(t, p)
	if _, err := vdiffReq(t, p.dst.running, "resume", "", uuid, nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	rows = waitDiff(t, p.dst.running, uuid, "completed", 2*time.Minute)
	if dr := reportOf(t, rows[0]); rows[0]["rows_compared"] != "6000" || dr.MatchingRows != 6000 || dr.ProcessedRows != 6000 {
		t.Fatalf("stopped at %d, resumed: %v\n%+v", stoppedAt, rows, dr)
	}
	t.Logf("stopped after %d rows, resumed to 6000", stoppedAt)
	assertRunning(t, p)

	// --max-diff-duration 1s: the table diff restarts (no pause in this test) until done.
	long := newUUID()
	if _, err := vdiffReq(t, p.dst.running, "create", "", long, createOptions(func(o *tmpb.VDiffOptions) { o.CoreOptions.MaxDiffSeconds = 1 })); err != nil {
		t.Fatal(err)
	}
	rows = waitDiff(t, p.dst.running, long, "completed", 2*time.Minute)
	if dr := reportOf(t, rows[0]); dr.MatchingRows != 6000 || dr.ProcessedRows != 6000 {
		t.Fatalf("restarted diff: %+v", dr)
	}
	_, vars := httpGet(t, "http://"+p.dst.t.HTTPAddr()+"/debug/vars")
	var v struct{ VDiffRestartedTableDiffsCount map[string]int64 }
	if err := json.Unmarshal([]byte(vars), &v); err != nil || v.VDiffRestartedTableDiffsCount["items"] == 0 {
		t.Fatalf("VDiffRestartedTableDiffsCount: %v (%v)", v.VDiffRestartedTableDiffsCount, err)
	}
	var restarts int
	_ = p.dst.root.QueryRow("select count(*) from _vt.vdiff_log where message like '%max-diff-duration%'").Scan(&restarts)
	t.Logf("the 1s diff restarted %d times (%v)", restarts, v.VDiffRestartedTableDiffsCount)
	assertRunning(t, p)
}

// TestVDiffSourceDies: the source tablet goes away mid-diff: the diff goes to error with
// the reason, the workflow runs again, and auto-retry finishes the diff once the source is
// back, from where it stopped.
func TestVDiffSourceDies(t *testing.T) {
	// Enough rows that the source still streams (flow control holds it) when it goes away.
	p := newVRPair(t, vdiffTweak(5))
	p.load(t, 1, 100000)
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "items"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 3*time.Minute)
	uuid := newUUID()
	if _, err := vdiffReq(t, p.dst.running, "create", "", uuid, createOptions(nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the diff under way", func() bool {
		n, st := rowsCompared(t, p, uuid)
		return st == "started" && n >= 1000
	})
	srcCfg := p.src.cfg
	p.src.stop()
	rows := waitDiff(t, p.dst.running, uuid, "error", 30*time.Second)
	if rows[0]["last_error"] == "" || rows[0]["table_state"] != "error" {
		t.Fatalf("after the source died: %v", rows)
	}
	t.Logf("the diff failed with: %s", rows[0]["last_error"])
	var n int
	_ = p.dst.root.QueryRow("select count(*) from _vt.vreplication where workflow = 'wf' and state = 'Running' and stop_pos = '' and message not like '%vdiff%'").Scan(&n)
	if n != 1 {
		t.Fatal("the workflow was not restarted after the failed diff")
	}
	p.src = &member{running: startTablet(t, srcCfg), db: p.srcDB, root: p.srcDB.RootDB(t), alias: srcCfg.Alias}
	rows = waitDiffState(t, p.dst.running, uuid, "completed", 3*time.Minute, true)
	if dr := reportOf(t, rows[0]); dr.MatchingRows != 100000 || dr.ProcessedRows != 100000 || rows[0]["last_error"] != "" {
		t.Fatalf("after auto-retry: %v\n%+v", rows, dr)
	}
	var retries int
	_ = p.dst.root.QueryRow("select count(*) from _vt.vdiff_log where message like 'Retrying after error%'").Scan(&retries)
	if retries == 0 {
		t.Fatal("no retry logged")
	}
	assertRunning(t, p)
}

// TestVDiffBadInput: requests that cannot work are refused with a code and nothing is
// written; tables without a primary key are compared by their unique NOT NULL key, or the
// diff fails saying why when they have none.
func TestVDiffBadInput(t *testing.T) {
	p := newVRPair(t, vdiffTweak(100))
	for _, db := range []*mariadbtest.Server{p.srcDB, p.dstDB} {
		ks := "vt_commerce"
		if db == p.dstDB {
			ks = "vt_customer"
		}
		db.Exec(t, "use "+ks, "create table uk (a int not null, b varchar(20), unique key ua (a))", "create table nokey (a int, b varchar(20))")
	}
	p.load(t, 1, 300)
	p.srcDB.Exec(t, "use vt_commerce", "insert into uk values (1, 'one'), (2, 'two'), (3, 'three')", "insert into nokey values (1, 'x'), (2, 'y')")
	p.create(t, "wf", binlogdatapb.OnDDLAction_IGNORE, &binlogdatapb.Rule{Match: "/.*"})
	p.waitState(t, "wf", binlogdatapb.VReplicationWorkflowState_Running, 2*time.Minute)
	eventually(t, 30*time.Second, "uk and nokey copied", func() bool {
		var n int
		_ = p.dst.root.QueryRow("select (select count(*) from vt_customer.uk) + (select count(*) from vt_customer.nokey)").Scan(&n)
		return n == 5
	})
	r := p.dst.running
	missing := newUUID()
	for name, tc := range map[string]struct {
		action, arg, uuid string
		opts              *tmpb.VDiffOptions
		want              vtrpcpb.Code
	}{
		"show unknown uuid":     {"show", missing, "", nil, vtrpcpb.Code_NOT_FOUND},
		"stop unknown uuid":     {"stop", "", missing, nil, vtrpcpb.Code_NOT_FOUND},
		"resume unknown uuid":   {"resume", "", missing, nil, vtrpcpb.Code_NOT_FOUND},
		"delete unknown uuid":   {"delete", missing, "", nil, vtrpcpb.Code_NOT_FOUND},
		"show not a uuid":       {"show", "yesterday", "", nil, vtrpcpb.Code_INVALID_ARGUMENT},
		"create not a uuid":     {"create", "", "123", createOptions(nil), vtrpcpb.Code_INVALID_ARGUMENT},
		"unknown action":        {"rewind", "", missing, nil, vtrpcpb.Code_INVALID_ARGUMENT},
		"table not in workflow": {"create", "", newUUID(), createOptions(func(o *tmpb.VDiffOptions) { o.CoreOptions.Tables = "items,nosuchtable" }), vtrpcpb.Code_INVALID_ARGUMENT},
	} {
		_, err := vdiffReq(t, r, tc.action, tc.arg, tc.uuid, tc.opts)
		if code := rpcerr.Code(err); code != tc.want {
			t.Errorf("%s: %v (code %v), want %v", name, err, code, tc.want)
		}
	}
	var n int
	if err := p.dst.root.QueryRow("select count(*) from _vt.vdiff").Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused requests left %d vdiff rows (%v)", n, err)
	}

	// A table with neither a primary key nor a unique NOT NULL key: the diff fails saying so,
	// and the workflow still runs.
	nokey := newUUID()
	if _, err := vdiffReq(t, r, "create", "", nokey, createOptions(func(o *tmpb.VDiffOptions) { o.CoreOptions.Tables = "nokey" })); err != nil {
		t.Fatal(err)
	}
	rows := waitDiff(t, r, nokey, "error", 30*time.Second)
	if !strings.Contains(rows[0]["last_error"], "no primary key") {
		t.Fatalf("diff of a table without a key: %v", rows)
	}
	assertRunning(t, p)

	// A table with a unique NOT NULL key: a changed row is a mismatch found by that key.
	p.dstDB.Exec(t, "update vt_customer.uk set b = 'TWO' where a = 2")
	ukd := newUUID()
	if _, err := vdiffReq(t, r, "create", "", ukd, createOptions(func(o *tmpb.VDiffOptions) { o.CoreOptions.Tables = "uk,items" })); err != nil {
		t.Fatal(err)
	}
	rows = waitDiff(t, r, ukd, "completed", 30*time.Second)
	byTable := map[string]summaryRow{}
	for _, row := range rows {
		byTable[row["table_name"]] = row
	}
	uk, items := reportOf(t, byTable["uk"]), reportOf(t, byTable["items"])
	if uk.MismatchedRows != 1 || uk.MatchingRows != 2 || uk.ExtraRowsSource+uk.ExtraRowsTarget != 0 || len(uk.MismatchedRowsSample) != 1 ||
		uk.MismatchedRowsSample[0].Target.Row["b"] != "TWO" || items.MatchingRows != 300 || len(rows) != 2 {
		t.Fatalf("uk: %+v\nitems: %+v", uk, items)
	}

	// A workflow that is not running, or whose traffic was switched (frozen), is refused.
	stopped := binlogdatapb.VReplicationWorkflowState_Stopped
	ctx := vrCtx(t)
	if _, err := r.tm.UpdateVReplicationWorkflow(ctx, &tmpb.UpdateVReplicationWorkflowRequest{Workflow: "wf", State: &stopped,
		Cells: []string{"NULL"}, TabletTypes: []topodatapb.TabletType{-1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := vdiffReq(t, r, "create", "", newUUID(), createOptions(nil)); rpcerr.Code(err) != vtrpcpb.Code_FAILED_PRECONDITION {
		t.Fatalf("create on a stopped workflow: %v", err)
	}
	if _, err := r.tm.VReplicationExec(ctx, &tmpb.VReplicationExecRequest{Query: "update _vt.vreplication set message = 'FROZEN' where workflow = 'wf'"}); err != nil {
		t.Fatal(err)
	}
	if _, err := vdiffReq(t, r, "create", "", newUUID(), createOptions(nil)); rpcerr.Code(err) != vtrpcpb.Code_FAILED_PRECONDITION {
		t.Fatalf("create on a frozen workflow: %v", err)
	}
	if _, err := vdiffReq(t, p.dst.running, "delete", "all", "", nil); err != nil {
		t.Fatal(err)
	}
}

// TestVDiffMergeSources: a target fed by two source shards (a Reshard merge) is compared
// against both at once, each synchronised at its own snapshot, under writes on both; a row
// changed on the target is found.
func TestVDiffMergeSources(t *testing.T) {
	e := newEnv(t)
	start := func(uid uint32, keyspace, shard string) *member {
		db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}})
		cfg := tabletConfig(e, db, tabletOpts{uid: uid, initType: topodatapb.TabletType_PRIMARY, shard: shard})
		cfg.Keyspace = keyspace
		cfg.VReplication.RetryDelay, cfg.VReplication.MaxRetryDelay = 200*time.Millisecond, 2*time.Second
		vdiffTweak(500)(&cfg)
		db.Exec(t, "create database if not exists vt_"+keyspace, "use vt_"+keyspace, vrTable)
		m := &member{running: startTablet(t, cfg), db: db, root: db.RootDB(t), alias: cfg.Alias}
		eventually(t, 20*time.Second, keyspace+"/"+shard+" serving", func() bool {
			reg, _, _ := m.t.Manager().TopoStatus()
			return reg && m.t.QueryService().Status().Serving
		})
		return m
	}
	left, right := start(100, "commerce", "-80"), start(101, "commerce", "80-")
	dst := start(200, "customer", "0")
	for i, m := range []*member{left, right} {
		var vals []string
		for id := 1 + i; id <= 10000; id += 2 {
			vals = append(vals, fmt.Sprintf("(%d, 'item %d', %d, 'n')", id, id, id%7))
		}
		m.db.Exec(t, "insert into vt_commerce.items (id, name, qty, note) values "+strings.Join(vals, ","))
	}
	ctx := vrCtx(t)
	rule := &binlogdatapb.Filter{Rules: []*binlogdatapb.Rule{{Match: "items", Filter: "select * from `items`"}}}
	if _, err := dst.tm.CreateVReplicationWorkflow(ctx, &tmpb.CreateVReplicationWorkflowRequest{Workflow: "wf",
		BinlogSource: []*binlogdatapb.BinlogSource{{Keyspace: "commerce", Shard: "-80", Filter: rule}, {Keyspace: "commerce", Shard: "80-", Filter: rule}},
		TabletTypes:  []topodatapb.TabletType{topodatapb.TabletType_PRIMARY}, WorkflowType: binlogdatapb.VReplicationWorkflowType_Reshard, Options: "{}"}); err != nil {
		t.Fatal(err)
	}
	running := binlogdatapb.VReplicationWorkflowState_Running
	if _, err := dst.tm.UpdateVReplicationWorkflow(ctx, &tmpb.UpdateVReplicationWorkflowRequest{Workflow: "wf", State: &running,
		Cells: []string{"NULL"}, TabletTypes: []topodatapb.TabletType{-1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "both streams running, copy done", func() bool {
		var n, c int
		_ = dst.root.QueryRow("select count(*) from _vt.vreplication where workflow = 'wf' and state = 'Running' and pos != ''").Scan(&n)
		_ = dst.root.QueryRow("select count(*) from _vt.copy_state").Scan(&c)
		return n == 2 && c == 0
	})
	// Writes on both sources all through the diff.
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			m := []*member{left, right}[i%2]
			id := 20000 + i
			_, _ = m.root.Exec(fmt.Sprintf("insert into vt_commerce.items (id, name, qty) values (%d, 'w', 1)", id))
			_, _ = m.root.Exec(fmt.Sprintf("update vt_commerce.items set qty = qty + 1 where id = %d", 1+i%2+2*(i%4000)))
		}
	}()
	defer func() { close(done); <-finished }()
	r := dst.running
	uuid := newUUID()
	if _, err := vdiffReq(t, r, "create", "", uuid, createOptions(nil)); err != nil {
		t.Fatal(err)
	}
	rows := waitDiff(t, r, uuid, "completed", time.Minute)
	if dr := reportOf(t, rows[0]); dr.MismatchedRows+dr.ExtraRowsSource+dr.ExtraRowsTarget != 0 || dr.MatchingRows < 10000 {
		t.Fatalf("merge diff under writes: %+v", dr)
	}
	dst.db.Exec(t, "update vt_customer.items set name = 'changed' where id = 4321", "delete from vt_customer.items where id = 4322")
	uuid2 := newUUID()
	if _, err := vdiffReq(t, r, "create", "", uuid2, createOptions(func(o *tmpb.VDiffOptions) { o.ReportOptions.OnlyPks = true })); err != nil {
		t.Fatal(err)
	}
	rows = waitDiff(t, r, uuid2, "completed", time.Minute)
	dr := reportOf(t, rows[0])
	if dr.MismatchedRows != 1 || dr.ExtraRowsSource != 1 || dr.ExtraRowsTarget != 0 || dr.MismatchedRowsSample[0].Target.Row["id"] != "4321" ||
		len(dr.MismatchedRowsSample[0].Target.Row) != 1 || dr.ExtraRowsSourceSample[0].Row["id"] != "4322" {
		t.Fatalf("merge diff after the changes: %+v", dr)
	}
	var n int
	_ = dst.root.QueryRow("select count(*) from _vt.vreplication where workflow = 'wf' and state = 'Running' and stop_pos = '' and message not like '%vdiff%'").Scan(&n)
	if n != 2 {
		t.Fatalf("%d of 2 streams running after the diffs", n)
	}
}
