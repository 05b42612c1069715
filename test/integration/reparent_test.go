package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// member is one tablet of a test shard with its MariaDB.
type member struct {
	*running
	db    *mariadbtest.Server
	root  *sql.DB
	alias *topodatapb.TabletAlias
}

// newShardOf starts n REPLICA tablets and initialises the shard as vtctld's InitShardPrimary
// does (ResetReplication everywhere, InitPrimary, PopulateReparentJournal, InitReplica).
func newShardOf(t *testing.T, e *env, n int, tweak func(*tablet.Config)) []*member {
	t.Helper()
	var ms []*member
	for i := 0; i < n; i++ {
		db := mariadbtest.Start(t, mariadbtest.Options{})
		cfg := tabletConfig(e, db, tabletOpts{uid: uint32(300 + i)})
		if tweak != nil {
			tweak(&cfg)
		}
		m := &member{running: startTablet(t, cfg), db: db, root: db.RootDB(t), alias: cfg.Alias}
		eventually(t, 10*time.Second, "registered", func() bool {
			reg, _, _ := m.t.Manager().TopoStatus()
			return reg
		})
		ms = append(ms, m)
	}
	ctx := tmCtx(t)
	for _, m := range ms {
		if _, err := m.tm.ResetReplication(ctx, &tmpb.ResetReplicationRequest{}); err != nil {
			t.Fatalf("ResetReplication: %v", err)
		}
	}
	ip, err := ms[0].tm.InitPrimary(ctx, &tmpb.InitPrimaryRequest{})
	if err != nil {
		t.Fatalf("InitPrimary: %v", err)
	}
	now := time.Now().UnixNano()
	if _, err := ms[0].tm.PopulateReparentJournal(ctx, &tmpb.PopulateReparentJournalRequest{TimeCreatedNs: now,
		ActionName: "InitShardPrimary", PrimaryAlias: ms[0].alias, ReplicationPosition: ip.Position}); err != nil {
		t.Fatalf("PopulateReparentJournal: %v", err)
	}
	for _, m := range ms[1:] {
		if _, err := m.tm.InitReplica(ctx, &tmpb.InitReplicaRequest{Parent: ms[0].alias, ReplicationPosition: ip.Position,
			TimeCreatedNs: now}); err != nil {
			t.Fatalf("InitReplica: %v", err)
		}
	}
	ms[0].db.Exec(t, "CREATE DATABASE IF NOT EXISTS vt_commerce", "CREATE TABLE vt_commerce.t (id BIGINT PRIMARY KEY)")
	return ms
}

func (m *member) readOnly(t *testing.T) bool { return readOnly(t, m.root) }

func (m *member) typ() topodatapb.TabletType { return m.t.Manager().Tablet().Type }

// sourcePort is the port the server replicates from (0: none) and whether both threads run.
func (m *member) sourcePort(t *testing.T) (int, bool) {
	t.Helper()
	rows, err := m.root.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return 0, false
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	row := map[string]string{}
	for i, c := range cols {
		row[c] = vals[i].String
	}
	port, _ := strconv.Atoi(row["Master_Port"])
	return port, row["Slave_IO_Running"] == "Yes" && row["Slave_SQL_Running"] == "Yes"
}

func (m *member) target() *querypb.Target {
	return &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: m.typ()}
}

// TestDemotePrimaryWindsDown: DemotePrimary stops the primary's writes for good. New
// requests get NOT_SERVING with CLUSTER_EVENT (vtgate buffers on it); a transaction already
// open may still commit within the grace period; one left open past it is rolled back, its
// write gone; MySQL ends read-only. UndoDemotePrimary serves again; DemotePrimary on a replica
// only confirms read-only.
func TestDemotePrimaryWindsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newShardOf(t, e, 2, func(c *tablet.Config) { c.Query.ShutdownGracePeriod = 2 * time.Second })
	p, r := ms[0], ms[1]
	ph := p.health(t)
	ph.until(10*time.Second, "primary serving", func(m *querypb.StreamHealthResponse) bool {
		return m.Serving && m.Target.TabletType == topodatapb.TabletType_PRIMARY
	})
	ctx := tmCtx(t)
	caller := &querypb.VTGateCallerID{Username: "app"}
	begin := func(id int) int64 {
		t.Helper()
		res, err := p.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: p.target(), ImmediateCallerId: caller,
			Query: &querypb.BoundQuery{Sql: fmt.Sprintf("insert into t values (%d)", id)}})
		if err != nil || res.Error != nil {
			t.Fatalf("BeginExecute: %v %v", err, res.GetError())
		}
		return res.TransactionId
	}
	committed, abandoned := begin(1), begin(2)

	demoted := make(chan *tmpb.DemotePrimaryResponse, 1)
	go func() {
		res, err := p.tm.DemotePrimary(ctx, &tmpb.DemotePrimaryRequest{})
		if err != nil {
			t.Errorf("DemotePrimary: %v", err)
		}
		demoted <- res
	}()
	ph.until(10*time.Second, "not serving while demoting", func(m *querypb.StreamHealthResponse) bool { return !m.Serving })
	_, err := p.qs.Execute(ctx, &querypb.ExecuteRequest{Target: p.target(), ImmediateCallerId: caller,
		Query: &querypb.BoundQuery{Sql: "insert into t values (3)"}})
	if code(err) != vtrpcpb.Code_CLUSTER_EVENT {
		t.Fatalf("a new write during the demotion: %v; want CLUSTER_EVENT (vtgate buffers it)", err)
	}
	if _, err := p.qs.Commit(ctx, &querypb.CommitRequest{Target: p.target(), ImmediateCallerId: caller, TransactionId: committed}); err != nil {
		t.Fatalf("commit of a transaction open before the demotion, within the grace period: %v", err)
	}
	res := <-demoted
	if res == nil || !strings.HasPrefix(res.PrimaryStatus.GetPosition(), "MariaDB/") {
		t.Fatalf("DemotePrimary returned %v", res)
	}
	if _, err := p.qs.Commit(ctx, &querypb.CommitRequest{Target: p.target(), ImmediateCallerId: caller, TransactionId: abandoned}); code(err) != vtrpcpb.Code_ABORTED &&
		code(err) != vtrpcpb.Code_CLUSTER_EVENT {
		t.Fatalf("commit after the grace period: %v; want the transaction gone", err)
	}
	var ids []int
	rows, err := p.root.Query("SELECT id FROM vt_commerce.t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if fmt.Sprint(ids) != "[1]" {
		t.Fatalf("rows after the demotion: %v; want only the committed [1]", ids)
	}
	if !p.readOnly(t) || p.typ() != topodatapb.TabletType_PRIMARY {
		t.Fatalf("after DemotePrimary: read_only=%v type=%v; want read-only, still PRIMARY until re-pointed", p.readOnly(t), p.typ())
	}
	// The sync loop must not make the demoted primary serve again.
	if code, body := httpGet(t, "http://"+p.t.HTTPAddr()+"/debug/status"); code != 200 || !strings.Contains(body, "demoted") {
		t.Fatalf("/debug/status does not show the demotion (%d)", code)
	}

	// DemotePrimary on a replica: idempotent, read-only confirmed, nothing else changes.
	if _, err := r.tm.DemotePrimary(ctx, &tmpb.DemotePrimaryRequest{}); err != nil {
		t.Fatalf("DemotePrimary on a replica: %v", err)
	}
	if port, running := r.sourcePort(t); port != p.db.Port || !running || !r.readOnly(t) || r.typ() != topodatapb.TabletType_REPLICA {
		t.Fatalf("replica after DemotePrimary: source %d running %v read_only %v type %v", port, running, r.readOnly(t), r.typ())
	}

	if _, err := p.tm.UndoDemotePrimary(ctx, &tmpb.UndoDemotePrimaryRequest{}); err != nil {
		t.Fatalf("UndoDemotePrimary: %v", err)
	}
	ph.until(10*time.Second, "serving again", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	if p.readOnly(t) {
		t.Fatal("UndoDemotePrimary left MySQL read-only")
	}
	if _, err := p.qs.Execute(ctx, &querypb.ExecuteRequest{Target: p.target(), ImmediateCallerId: caller,
		Query: &querypb.BoundQuery{Sql: "insert into t values (4)"}}); err != nil {
		t.Fatalf("write after UndoDemotePrimary: %v", err)
	}
}

var errantRE = regexp.MustCompile(`Errant GTID detected - (\S+)`)

// TestReparentRPCBadInput: every refusal has a code and a reason, and leaves the tablet as it
// was — type, read-only and replication asserted after each.
func TestReparentRPCBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// No heartbeat: after the errant write below, any write of the primary would stop the
	// replica's SQL thread (gtid_strict_mode), which is not what this test looks at.
	ms := newShardOf(t, e, 2, func(c *tablet.Config) { c.Heartbeat.Enable = false })
	p, r := ms[0], ms[1]
	ctx := tmCtx(t)
	unchanged := func(what string) {
		t.Helper()
		if port, running := r.sourcePort(t); port != p.db.Port || !running || !r.readOnly(t) || r.typ() != topodatapb.TabletType_REPLICA {
			t.Fatalf("%s changed the replica: source %d running %v read_only %v type %v", what, port, running, r.readOnly(t), r.typ())
		}
	}
	eventually(t, 10*time.Second, "replica replicating", func() bool { _, ok := r.sourcePort(t); return ok })

	for _, tc := range []struct {
		name string
		call func() error
		want vtrpcpb.Code
	}{
		{"SetReplicationSource to a tablet without a record", func() error {
			_, err := r.tm.SetReplicationSource(ctx, &tmpb.SetReplicationSourceRequest{Parent: &topodatapb.TabletAlias{Cell: cell, Uid: 999}})
			return err
		}, vtrpcpb.Code_NOT_FOUND},
		{"SetReplicationSource without a parent", func() error {
			_, err := r.tm.SetReplicationSource(ctx, &tmpb.SetReplicationSourceRequest{})
			return err
		}, vtrpcpb.Code_FAILED_PRECONDITION},
		{"SetReplicationSource to itself", func() error {
			_, err := r.tm.SetReplicationSource(ctx, &tmpb.SetReplicationSourceRequest{Parent: r.alias})
			return err
		}, vtrpcpb.Code_INVALID_ARGUMENT},
		{"WaitForPosition with a malformed position", func() error {
			_, err := r.tm.WaitForPosition(ctx, &tmpb.WaitForPositionRequest{Position: "MariaDB/not-a-gtid"})
			return err
		}, vtrpcpb.Code_INVALID_ARGUMENT},
		{"WaitForPosition with a MySQL position on MariaDB", func() error {
			_, err := r.tm.WaitForPosition(ctx, &tmpb.WaitForPositionRequest{Position: "MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"})
			return err
		}, vtrpcpb.Code_INVALID_ARGUMENT},
		{"InitReplica with a malformed position", func() error {
			_, err := r.tm.InitReplica(ctx, &tmpb.InitReplicaRequest{Parent: p.alias, ReplicationPosition: "garbage"})
			return err
		}, vtrpcpb.Code_INVALID_ARGUMENT},
		{"WaitForPosition that is never reached", func() error {
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			_, err := r.tm.WaitForPosition(wctx, &tmpb.WaitForPositionRequest{Position: "MariaDB/0-1-999999"})
			return err
		}, vtrpcpb.Code_DEADLINE_EXCEEDED},
	} {
		if err := tc.call(); code(err) != tc.want {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
		unchanged(tc.name)
	}

	// vtctld recognises a non-replica by errno 100 in the text.
	_, err := p.tm.ReplicationStatus(ctx, &tmpb.ReplicationStatusRequest{})
	if errnoOf(err) != 100 {
		t.Fatalf("ReplicationStatus on the primary: %v; want errno 100 (no replication status)", err)
	}
	if _, err := p.tm.StopReplicationAndGetStatus(ctx, &tmpb.StopReplicationAndGetStatusRequest{}); errnoOf(err) != 100 {
		t.Fatalf("StopReplicationAndGetStatus on the primary: %v; want errno 100", err)
	}

	// A replica that wrote a transaction of its own (errant GTID) is refused as a replica of
	// the primary, with the GTID named; its replication is left as it was.
	r.db.Exec(t, "STOP SLAVE", "SET GLOBAL read_only = OFF", "INSERT INTO vt_commerce.t VALUES (42)",
		"SET GLOBAL read_only = ON", "START SLAVE")
	var own string
	if err := r.root.QueryRow("SELECT @@global.gtid_binlog_pos").Scan(&own); err != nil {
		t.Fatal(err)
	}
	_, err = r.tm.SetReplicationSource(ctx, &tmpb.SetReplicationSourceRequest{Parent: p.alias, ForceStartReplication: true})
	m := errantRE.FindStringSubmatch(fmt.Sprint(err))
	if code(err) != vtrpcpb.Code_FAILED_PRECONDITION || m == nil || !strings.Contains(m[1], fmt.Sprintf("-%d-", r.db.ServerID)) {
		t.Fatalf("SetReplicationSource with an errant GTID: %v; want FAILED_PRECONDITION naming a GTID of server %d (binlog pos %s)", err, r.db.ServerID, own)
	}
	unchanged("the errant GTID refusal")

	// mysqld down: every RPC fails with UNAVAILABLE and nothing changes; back up, the tablet
	// is as it was (REPLICA, read-only, replicating from the primary).
	r.db.Kill(t)
	for name, call := range map[string]func() error{
		"PromoteReplica": func() error { _, err := r.tm.PromoteReplica(ctx, &tmpb.PromoteReplicaRequest{}); return err },
		"SetReplicationSource": func() error {
			_, err := r.tm.SetReplicationSource(ctx, &tmpb.SetReplicationSourceRequest{Parent: p.alias})
			return err
		},
		"DemotePrimary":   func() error { _, err := r.tm.DemotePrimary(ctx, &tmpb.DemotePrimaryRequest{}); return err },
		"InitPrimary":     func() error { _, err := r.tm.InitPrimary(ctx, &tmpb.InitPrimaryRequest{}); return err },
		"StopReplication": func() error { _, err := r.tm.StopReplication(ctx, &tmpb.StopReplicationRequest{}); return err },
	} {
		if err := call(); code(err) != vtrpcpb.Code_UNAVAILABLE {
			t.Errorf("%s with mysqld down: %v; want UNAVAILABLE", name, err)
		}
		if r.typ() != topodatapb.TabletType_REPLICA {
			t.Fatalf("%s with mysqld down changed the type to %v", name, r.typ())
		}
	}
	r.db.Restart(t)
	// skip_slave_start: replication is stopped after the restart; the replication reporter
	// restarts it (it was not stopped by an RPC).
	eventually(t, 20*time.Second, "replication repaired after mysqld restart", func() bool {
		port, running := r.sourcePort(t)
		return port == p.db.Port && running
	})
	unchanged("mysqld down and back")
}

// TestReplicationReporter: replication that stops by itself is restarted; replication stopped
// by StopReplication is left stopped until StartReplication.
func TestReplicationReporter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newShardOf(t, e, 2, nil)
	r := ms[1]
	ctx := tmCtx(t)
	eventually(t, 10*time.Second, "replicating", func() bool { _, ok := r.sourcePort(t); return ok })

	r.db.Exec(t, "STOP SLAVE IO_THREAD") // behind tabletd's back: a broken connection looks like this
	eventually(t, 20*time.Second, "the reporter restarted replication", func() bool { _, ok := r.sourcePort(t); return ok })

	if _, err := r.tm.StopReplication(ctx, &tmpb.StopReplicationRequest{}); err != nil {
		t.Fatal(err)
	}
	checks := metric(t, r, "tabletd_replication_repair_checks_total")
	eventually(t, 20*time.Second, "two more reporter checks", func() bool {
		return metric(t, r, "tabletd_replication_repair_checks_total") >= checks+2
	})
	if _, running := r.sourcePort(t); running {
		t.Fatal("the reporter restarted replication stopped by StopReplication")
	}
	if _, err := r.tm.StartReplication(ctx, &tmpb.StartReplicationRequest{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "running after StartReplication", func() bool { _, ok := r.sourcePort(t); return ok })
}

// metric reads one unlabelled-by-method sample of name from the tablet's /metrics.
func metric(t *testing.T, r *member, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.t.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return 0
}
