//go:build interop

package interop

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// VDiff of a MoveTables workflow driven by an unmodified vtctld through vtctldclient, with
// tabletd on every tablet: the diffs run on the target primary and vtctldclient builds its
// summaries from what tabletd answers.

// vdiffSummary is the part of `vtctldclient VDiff show <uuid> --format json` the test reads.
type vdiffSummary struct {
	Workflow, Keyspace, State, UUID string
	RowsCompared                    int64
	HasMismatch                     bool
	Shards                          string
	// Keyed by table, then by shard.
	Reports map[string]map[string]vdiffShardReport
	Errors  map[string]string
}

type vdiffRow struct{ Row map[string]string }

// vdiffShardReport is one table's report on one shard.
type vdiffShardReport struct {
	TableName                                                                     string
	ProcessedRows, MatchingRows, MismatchedRows, ExtraRowsSource, ExtraRowsTarget int64
	ExtraRowsSourceSample, ExtraRowsTargetSample                                  []vdiffRow
	MismatchedRowsSample                                                          []struct{ Source, Target vdiffRow }
}

// newVDiffUUID returns a random (version 4) UUID, which vtctldclient accepts for create.
func newVDiffUUID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func TestVDiffThroughVtctld(t *testing.T) {
	const wf = "commerce2customer"
	c := newCluster(t)
	src := c.vrPrimary(100, "commerce", "0", false)
	c.loadCommerce(t, 3000)
	// Progress saved after every row compared: a diff slow enough to be stopped in the middle.
	dst := c.vrPrimary(200, "customer", "0", false, "--vdiff-progress-rows", "1")

	c.ctl("MoveTables", "--workflow", wf, "--target-keyspace", "customer", "create", "--source-keyspace", "commerce",
		"--tables", "customer,corder")
	c.waitWorkflowState(t, "customer", wf, "Running", 3*time.Minute)
	rows := map[string]int64{}
	var total int64
	for _, table := range []string{"customer", "corder"} {
		rows[table] = waitSame(t, table, []*vrTablet{src}, []*vrTablet{dst})
		total += rows[table]
	}
	t.Logf("copied: customer %d rows, corder %d rows", rows["customer"], rows["corder"])

	vd := func(args ...string) string {
		return c.ctl(append([]string{"VDiff", "--target-keyspace", "customer", "--workflow", wf}, args...)...)
	}
	tryVD := func(args ...string) (string, error) {
		return c.tryCtl(append([]string{"VDiff", "--target-keyspace", "customer", "--workflow", wf}, args...)...)
	}
	show := func(which string) vdiffSummary {
		t.Helper()
		out := vd("show", which, "--verbose", "--format", "json")
		var s vdiffSummary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("show %s: %v\n%s", which, err, out)
		}
		return s
	}
	// waitDiff polls show until the diff is in state want; a diff in state error fails.
	waitDiff := func(uuid, want string, timeout time.Duration) vdiffSummary {
		t.Helper()
		var s vdiffSummary
		eventually(t, timeout, "vdiff "+uuid+" "+want, func() bool {
			s = show(uuid)
			if s.State == "error" && want != "error" {
				t.Fatalf("vdiff %s failed: %+v", uuid, s)
			}
			if s.State == "completed" && want != "completed" {
				t.Fatalf("vdiff %s completed, want %s: %+v", uuid, want, s)
			}
			return s.State == want
		})
		return s
	}
	// running checks that the workflow runs again after a diff: vtctld sees every stream
	// Running, and the target's streams have no stop position or message left by the diff.
	running := func(after string) {
		t.Helper()
		c.waitWorkflowState(t, "customer", wf, "Running", 30*time.Second)
		eventually(t, 30*time.Second, "the workflow runs again after "+after, func() bool {
			var n, all int
			_ = dst.root.QueryRow("select count(*), sum(state != 'Running' or ifnull(stop_pos, '') != '' or message != '') from _vt.vreplication where workflow = ?", wf).Scan(&all, &n)
			return all > 0 && n == 0
		})
	}
	report := func(s vdiffSummary, table string) vdiffShardReport {
		t.Helper()
		r, ok := s.Reports[table]["0"]
		if !ok {
			t.Fatalf("no report for %s/0 in %+v", table, s)
		}
		return r
	}

	// A clean diff: every row of both tables compared, none different. vtctldclient waits
	// for it to finish.
	start := time.Now()
	clean := newVDiffUUID(t)
	vd("create", clean, "--wait", "--wait-update-interval", "1s")
	s := waitDiff(clean, "completed", 3*time.Minute)
	if s.UUID != clean || s.HasMismatch || s.RowsCompared != total || s.Shards != "0" {
		t.Fatalf("clean diff: %+v, want %d rows compared and no mismatch", s, total)
	}
	for table, n := range rows {
		if r := report(s, table); r.ProcessedRows != n || r.MatchingRows != n || r.MismatchedRows+r.ExtraRowsSource+r.ExtraRowsTarget != 0 {
			t.Fatalf("clean diff, %s: %+v, want %d matching rows", table, r, n)
		}
	}
	t.Logf("clean diff: %d rows compared, no mismatch (%v)", s.RowsCompared, time.Since(start).Round(time.Millisecond))
	running("the clean diff")

	// Changes only the target's MariaDB has: one row updated, one deleted, one inserted.
	mustExec(t, dst.root, "update vt_customer.customer set email = 'changed@example.com' where customer_id = 10")
	mustExec(t, dst.root, "delete from vt_customer.customer where customer_id = 20")
	mustExec(t, dst.root, "insert into vt_customer.customer (customer_id, email) values (999999, 'only-on-target@example.com')")
	bad := newVDiffUUID(t)
	vd("create", bad)
	s = waitDiff(bad, "completed", 3*time.Minute)
	if !s.HasMismatch || s.RowsCompared != total+1 {
		t.Fatalf("diff after the changes: %+v, want a mismatch and %d rows compared", s, total+1)
	}
	r := report(s, "customer")
	if r.ProcessedRows != rows["customer"]+1 || r.MatchingRows != rows["customer"]-2 || r.MismatchedRows != 1 || r.ExtraRowsSource != 1 || r.ExtraRowsTarget != 1 {
		t.Fatalf("customer report after the changes: %+v", r)
	}
	if len(r.MismatchedRowsSample) != 1 || r.MismatchedRowsSample[0].Source.Row["customer_id"] != "10" || r.MismatchedRowsSample[0].Target.Row["customer_id"] != "10" ||
		r.MismatchedRowsSample[0].Source.Row["email"] != "user10@example.com" || r.MismatchedRowsSample[0].Target.Row["email"] != "changed@example.com" {
		t.Fatalf("mismatched sample: %+v", r.MismatchedRowsSample)
	}
	if len(r.ExtraRowsSourceSample) != 1 || r.ExtraRowsSourceSample[0].Row["customer_id"] != "20" {
		t.Fatalf("extra source rows sample: %+v", r.ExtraRowsSourceSample)
	}
	if len(r.ExtraRowsTargetSample) != 1 || r.ExtraRowsTargetSample[0].Row["customer_id"] != "999999" {
		t.Fatalf("extra target rows sample: %+v", r.ExtraRowsTargetSample)
	}
	if o := report(s, "corder"); o.MatchingRows != rows["corder"] || o.MismatchedRows+o.ExtraRowsSource+o.ExtraRowsTarget != 0 {
		t.Fatalf("corder report after the changes to customer: %+v", o)
	}
	if last := show("last"); last.UUID != bad {
		t.Fatalf("show last: %s, want %s", last.UUID, bad)
	}
	t.Logf("diff after the changes: %d rows compared, %d matching, 1 mismatched, 1 extra on each side", s.RowsCompared, r.MatchingRows)
	running("the diff with differences")

	// The target as the source again, then a diff stopped in the middle and resumed.
	mustExec(t, dst.root, "update vt_customer.customer set email = 'user10@example.com' where customer_id = 10")
	mustExec(t, dst.root, "insert into vt_customer.customer (customer_id, email) values (20, 'user20@example.com')")
	mustExec(t, dst.root, "delete from vt_customer.customer where customer_id = 999999")
	long := newVDiffUUID(t)
	vd("create", long)
	eventually(t, time.Minute, "the diff under way", func() bool {
		var state string
		var n int64
		_ = dst.root.QueryRow("select vd.state, ifnull(sum(vdt.rows_compared), 0) from _vt.vdiff vd left join _vt.vdiff_table vdt on vd.id = vdt.vdiff_id where vd.vdiff_uuid = ? group by vd.id", long).Scan(&state, &n)
		return state == "started" && n > 0
	})
	vd("stop", long)
	s = waitDiff(long, "stopped", time.Minute)
	stoppedAt := s.RowsCompared
	if stoppedAt == 0 || stoppedAt >= total {
		t.Fatalf("stopped diff: %+v, want between 0 and %d rows compared", s, total)
	}
	running("the stopped diff")
	vd("resume", long)
	s = waitDiff(long, "completed", 3*time.Minute)
	if s.HasMismatch || s.RowsCompared != total {
		t.Fatalf("resumed diff: %+v, want %d rows compared and no mismatch", s, total)
	}
	for table, n := range rows {
		if r := report(s, table); r.ProcessedRows != n || r.MatchingRows != n {
			t.Fatalf("resumed diff, %s: %+v, want %d matching rows", table, r, n)
		}
	}
	t.Logf("stopped after %d of %d rows; resumed to %d rows compared", stoppedAt, total, s.RowsCompared)
	running("the resumed diff")

	// delete all empties the target's vdiff tables.
	vd("delete", "all")
	for _, table := range []string{"vdiff", "vdiff_table", "vdiff_log"} {
		var n int
		if err := dst.root.QueryRow("select count(*) from _vt." + table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("after delete all: %d rows in _vt.%s (%v)", n, table, err)
		}
	}
	running("delete all")

	// show of a UUID the target does not know fails.
	for _, uuid := range []string{newVDiffUUID(t), clean} {
		out, err := tryVD("show", uuid, "--format", "json")
		if err == nil {
			t.Fatalf("show of unknown vdiff %s succeeded:\n%s", uuid, out)
		}
		t.Logf("show of unknown vdiff %s: %v: %s", uuid, err, lastLine(out))
	}
	c.waitWorkflowState(t, "customer", wf, "Running", 30*time.Second)
}
