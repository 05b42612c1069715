package integration

import (
	"context"
	"errors"
	"net"
	"path"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/tabletmanager"
	"github.com/tabletd/tabletd/test/mariadbtest"
	"github.com/tabletd/tabletd/topo"
)

// TestRegisterServeAndPromote walks a tablet through vttablet's life as vtgate and vtctld
// see it: registration in the etcd2 layout, StreamHealth, promotion by ChangeType, demotion.
func TestRegisterServeAndPromote(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	root := db.RootDB(t)
	db.Exec(t, "CREATE DATABASE vt_commerce")
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 100, initType: topodatapb.TabletType_REPLICA}))
	h := r.health(t)

	// A replica whose lag cannot be measured never claims to serve, and says why.
	first := h.until(5*time.Second, "first record", func(*querypb.StreamHealthResponse) bool { return true })
	if first.Target == nil || first.RealtimeStats == nil || first.TabletAlias.GetUid() != 100 {
		t.Fatalf("first record is not what vtgate requires: %v", first)
	}
	rep := h.until(10*time.Second, "replica record after MySQL was probed", func(m *querypb.StreamHealthResponse) bool {
		return m.Target.TabletType == topodatapb.TabletType_REPLICA && m.RealtimeStats.HealthError != "" &&
			m.RealtimeStats.HealthError != "MySQL has not been checked yet"
	})
	if rep.Serving || rep.RealtimeStats.ReplicationLagSeconds == 0 {
		t.Fatalf("replica without replication reported serving=%v lag=%d; want not serving and lag not 0",
			rep.Serving, rep.RealtimeStats.ReplicationLagSeconds)
	}

	// Registration: the keys and values vtgate and vtctld read.
	var rec topodatapb.Tablet
	eventually(t, 10*time.Second, "tablet record", func() bool { return e.get(t, tabletKey(100), &rec) })
	grpcPort, httpPort := portOf(t, r.t.GRPCAddr()), portOf(t, r.t.HTTPAddr())
	want := &topodatapb.Tablet{
		Alias: &topodatapb.TabletAlias{Cell: cell, Uid: 100}, Hostname: "127.0.0.1",
		PortMap: map[string]int32{"grpc": grpcPort, "vt": httpPort}, Keyspace: "commerce", Shard: "0",
		Type: topodatapb.TabletType_REPLICA, MysqlHostname: "127.0.0.1", MysqlPort: int32(db.Port),
		DefaultConnCollation: 255, Tags: map[string]string{},
	}
	if !proto.Equal(&rec, want) {
		t.Fatalf("tablet record:\n got %v\nwant %v", &rec, want)
	}
	var ks topodatapb.Keyspace
	var shard topodatapb.Shard
	var vs vschemapb.Keyspace
	var srep topodatapb.ShardReplication
	var sk topodatapb.SrvKeyspace
	var svs vschemapb.SrvVSchema
	eventually(t, 10*time.Second, "serving graph", func() bool {
		return e.get(t, path.Join(cellRoot, "keyspaces/commerce/SrvKeyspace"), &sk) && e.get(t, path.Join(cellRoot, "SrvVSchema"), &svs)
	})
	for key, m := range map[string]proto.Message{
		path.Join(globalRoot, "keyspaces/commerce/Keyspace"):                &ks,
		path.Join(globalRoot, "keyspaces/commerce/shards/0/Shard"):          &shard,
		path.Join(globalRoot, "keyspaces/commerce/VSchema"):                 &vs,
		path.Join(cellRoot, "keyspaces/commerce/shards/0/ShardReplication"): &srep,
	} {
		if !e.get(t, key, m) {
			t.Fatalf("%s missing", key)
		}
	}
	if ks.SidecarDbName != "_vt" || !shard.IsPrimaryServing || len(srep.Nodes) != 1 || srep.Nodes[0].TabletAlias.GetUid() != 100 {
		t.Fatalf("keyspace %v shard %v shard replication %v", &ks, &shard, &srep)
	}
	if len(sk.Partitions) != 3 || svs.Keyspaces["commerce"] == nil {
		t.Fatalf("SrvKeyspace %v SrvVSchema %v", &sk, &svs)
	}
	if !readOnly(t, root) {
		t.Fatal("a REPLICA's MySQL must be read-only")
	}

	// vtctldclient TabletExternallyReparented calls ChangeType(PRIMARY).
	if _, err := r.tm.Ping(context.Background(), &tabletmanagerdatapb.PingRequest{Payload: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.tm.ChangeType(context.Background(), &tabletmanagerdatapb.ChangeTypeRequest{TabletType: topodatapb.TabletType_PRIMARY}); err != nil {
		t.Fatal(err)
	}
	p := h.until(5*time.Second, "serving primary", func(m *querypb.StreamHealthResponse) bool {
		return m.Serving && m.Target.TabletType == topodatapb.TabletType_PRIMARY
	})
	if p.PrimaryTermStartTimestamp == 0 || p.RealtimeStats.ReplicationLagSeconds != 0 {
		t.Fatalf("primary record: %v", p)
	}
	if readOnly(t, root) {
		t.Fatal("PRIMARY's MySQL must be read-write")
	}
	eventually(t, 5*time.Second, "shard names the new primary", func() bool {
		e.get(t, path.Join(globalRoot, "keyspaces/commerce/shards/0/Shard"), &shard)
		return shard.PrimaryAlias.GetUid() == 100 && shard.PrimaryTermStartTime.GetSeconds() == p.PrimaryTermStartTimestamp
	})
	e.get(t, tabletKey(100), &rec)
	if rec.Type != topodatapb.TabletType_PRIMARY || rec.PrimaryTermStartTime.GetSeconds() != p.PrimaryTermStartTimestamp {
		t.Fatalf("tablet record after promotion: %v", &rec)
	}

	// RefreshState and RunHealthCheck answer; unknown RPCs answer UNIMPLEMENTED.
	if _, err := r.tm.RefreshState(context.Background(), &tabletmanagerdatapb.RefreshStateRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.tm.RunHealthCheck(context.Background(), &tabletmanagerdatapb.RunHealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}

	// Leaving PRIMARY makes MySQL read-only again.
	if _, err := r.tm.ChangeType(context.Background(), &tabletmanagerdatapb.ChangeTypeRequest{TabletType: topodatapb.TabletType_RDONLY}); err != nil {
		t.Fatal(err)
	}
	h.until(5*time.Second, "rdonly record", func(m *querypb.StreamHealthResponse) bool {
		return m.Target.TabletType == topodatapb.TabletType_RDONLY && m.PrimaryTermStartTimestamp == 0
	})
	if !readOnly(t, root) {
		t.Fatal("leaving PRIMARY must make MySQL read-only")
	}

	// Shutdown: not serving is announced, then the record's addresses are cleared.
	r.stop()
	e.get(t, tabletKey(100), &rec)
	if rec.Hostname != "" || len(rec.PortMap) != 0 || rec.MysqlHostname != "" {
		t.Fatalf("after shutdown the record still advertises addresses: %v", &rec)
	}
	h.until(5*time.Second, "not serving on shutdown", func(m *querypb.StreamHealthResponse) bool { return !m.Serving })
}

// TestMySQLOutage: a dead mysqld makes the tablet NOT_SERVING with the reason, and it comes
// back by itself when mysqld does.
func TestMySQLOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce") // a first GTID, so the position is not empty
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 101, initType: topodatapb.TabletType_PRIMARY}))
	h := r.health(t)
	h.until(10*time.Second, "serving primary", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	base := "http://" + r.t.HTTPAddr()
	if code, _ := httpGet(t, base+"/debug/health"); code != 200 {
		t.Fatalf("/debug/health while serving: %d", code)
	}
	code, page := httpGet(t, base+"/debug/status")
	for _, want := range []string{"zone1-0000000101", "commerce", "PRIMARY", "SERVING", "mariadb", "MariaDB/0-", "Registered"} {
		if code != 200 || !strings.Contains(page, want) {
			t.Fatalf("/debug/status (%d) lacks %q", code, want)
		}
	}
	_, metrics := httpGet(t, base+"/metrics")
	if !strings.Contains(metrics, `tabletd_serving{keyspace="commerce",shard="0",tablet_type="PRIMARY"} 1`) {
		t.Fatalf("/metrics lacks the serving gauge:\n%s", metrics)
	}
	start := time.Now()
	db.Kill(t)
	down := h.until(5*time.Second, "not serving after mysqld died", func(m *querypb.StreamHealthResponse) bool { return !m.Serving })
	t.Logf("NOT_SERVING %v after SIGKILL: %s", time.Since(start).Round(time.Millisecond), down.RealtimeStats.HealthError)
	if down.RealtimeStats.HealthError == "" {
		t.Fatal("not serving without a reason")
	}
	if code, body := httpGet(t, base+"/debug/health"); code != 500 || !strings.Contains(body, "MySQL") {
		t.Fatalf("/debug/health while mysqld is down: %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz (liveness) while mysqld is down: %d; restarting tabletd would not help", code)
	}
	code, page = httpGet(t, base+"/debug/status")
	if code != 200 || !strings.Contains(page, "NOT_CONNECTED") || !strings.Contains(page, "unreachable") {
		t.Fatalf("/debug/status does not say why it is not serving")
	}
	db.Restart(t)
	h.until(30*time.Second, "serving again after mysqld came back", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
}

// TestEtcdDownAtStart: the query path never waits for etcd; registration happens when it returns.
func TestEtcdDownAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	e.etcd.Stop()
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 102, initType: topodatapb.TabletType_PRIMARY}))
	h := r.health(t)
	h.until(10*time.Second, "serving while etcd is down", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	if reg, _, _ := r.t.Manager().TopoStatus(); reg {
		t.Fatal("registered although etcd is down")
	}
	e.etcd.Restart(t)
	eventually(t, 20*time.Second, "registered after etcd came back", func() bool {
		reg, _, _ := r.t.Manager().TopoStatus()
		return reg
	})
	var rec topodatapb.Tablet
	if !e.get(t, tabletKey(102), &rec) || rec.Type != topodatapb.TabletType_PRIMARY {
		t.Fatalf("record after etcd returned: %v", &rec)
	}
}

// TestRefusedRegistrations: configurations the topology refuses stop the tablet with a
// clear error and write nothing.
func TestRefusedRegistrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})

	// Another live tablet holds zone1-103: its gRPC port answers (a record whose holder no
	// longer answers is taken over: TestRestartAfterSIGKILL).
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	e.put(t, tabletKey(103), &topodatapb.Tablet{Alias: &topodatapb.TabletAlias{Cell: cell, Uid: 103},
		Hostname: "127.0.0.1", PortMap: map[string]int32{"grpc": portOf(t, holder.Addr().String()), "vt": 15000}, Keyspace: "commerce", Shard: "0",
		Type: topodatapb.TabletType_REPLICA})
	for _, tc := range []struct {
		name string
		opts tabletOpts
		is   func(error) bool
	}{
		{"alias held by another host", tabletOpts{uid: 103}, func(err error) bool {
			var held *tabletmanager.HeldError
			return errors.As(err, &held)
		}},
		{"cell missing", tabletOpts{uid: 104}, func(err error) bool { return errors.Is(err, topo.ErrCellNotFound) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tabletConfig(e, db, tc.opts)
			if tc.name == "cell missing" {
				cfg.Alias.Cell = "nowhere"
			}
			before := e.snapshot(t)
			tb, err := tablet.New(cfg, tablet.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = tb.Run(ctx)
			if err == nil || !tc.is(err) || !tablet.IsConfigError(err) {
				t.Fatalf("Run = %v; want the refusal", err)
			}
			t.Logf("refused: %v", err)
			after := e.snapshot(t)
			if len(before) != len(after) {
				t.Fatalf("keys written: before %d, after %d", len(before), len(after))
			}
			for k, rev := range before {
				if after[k] != rev {
					t.Fatalf("%s changed", k)
				}
			}
		})
	}
}

// TestReplicaMeasuresLag: a replica with real MariaDB GTID replication serves once its lag
// has been measured, and stops serving (lag unknown) when replication stops.
func TestReplicaMeasuresLag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	primaryDB := mariadbtest.Start(t, mariadbtest.Options{})
	replicaDB := mariadbtest.Start(t, mariadbtest.Options{})
	replicaDB.Exec(t,
		"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT="+itoa(primaryDB.Port)+", MASTER_USER='vt_repl', MASTER_PASSWORD='"+mariadbtest.Password+"', MASTER_USE_GTID=slave_pos",
		"START SLAVE")
	primaryDB.Exec(t, "CREATE DATABASE vt_commerce") // replicated
	p := startTablet(t, tabletConfig(e, primaryDB, tabletOpts{uid: 110, initType: topodatapb.TabletType_PRIMARY}))
	rc := tabletConfig(e, replicaDB, tabletOpts{uid: 111, initType: topodatapb.TabletType_REPLICA})
	rc.Manager.RepairReplication = false // the test stops replication behind tabletd's back
	r := startTablet(t, rc)
	p.health(t).until(10*time.Second, "primary serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	h := r.health(t)
	m := h.until(20*time.Second, "replica serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	if m.RealtimeStats.ReplicationLagSeconds > 5 {
		t.Fatalf("replica lag %d", m.RealtimeStats.ReplicationLagSeconds)
	}
	replicaDB.Exec(t, "STOP SLAVE SQL_THREAD")
	m = h.until(10*time.Second, "replica not serving with replication stopped", func(m *querypb.StreamHealthResponse) bool { return !m.Serving })
	t.Logf("stopped replication: %s (lag field %d)", m.RealtimeStats.HealthError, m.RealtimeStats.ReplicationLagSeconds)
	replicaDB.Exec(t, "START SLAVE SQL_THREAD")
	h.until(10*time.Second, "replica serving again", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
}

// TestNewerPrimaryDemotesOld: when another tablet of the shard becomes PRIMARY (say, by
// TabletExternallyReparented), the old primary sees the newer term in the shard record, steps
// down to REPLICA and makes its MySQL read-only; the shard names the new primary.
func TestNewerPrimaryDemotesOld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dbA := mariadbtest.Start(t, mariadbtest.Options{})
	dbB := mariadbtest.Start(t, mariadbtest.Options{})
	dbA.Exec(t, "CREATE DATABASE vt_commerce")
	dbB.Exec(t, "CREATE DATABASE vt_commerce")
	a := startTablet(t, tabletConfig(e, dbA, tabletOpts{uid: 120, initType: topodatapb.TabletType_PRIMARY}))
	b := startTablet(t, tabletConfig(e, dbB, tabletOpts{uid: 121, initType: topodatapb.TabletType_REPLICA}))
	ha := a.health(t)
	ha.until(10*time.Second, "A serving primary", func(m *querypb.StreamHealthResponse) bool {
		return m.Serving && m.Target.TabletType == topodatapb.TabletType_PRIMARY
	})
	var shard topodatapb.Shard
	shardKey := path.Join(globalRoot, "keyspaces/commerce/shards/0/Shard")
	eventually(t, 10*time.Second, "shard names A", func() bool {
		return e.get(t, shardKey, &shard) && shard.PrimaryAlias.GetUid() == 120
	})
	eventually(t, 10*time.Second, "B registered", func() bool {
		reg, _, _ := b.t.Manager().TopoStatus()
		return reg
	})
	if _, err := b.tm.ChangeType(context.Background(), &tabletmanagerdatapb.ChangeTypeRequest{TabletType: topodatapb.TabletType_PRIMARY}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "shard names B", func() bool {
		return e.get(t, shardKey, &shard) && shard.PrimaryAlias.GetUid() == 121
	})
	ha.until(10*time.Second, "A stepped down", func(m *querypb.StreamHealthResponse) bool {
		return m.Target.TabletType == topodatapb.TabletType_REPLICA && m.PrimaryTermStartTimestamp == 0
	})
	if !readOnly(t, dbA.RootDB(t)) {
		t.Fatal("the demoted primary's MySQL is still writable")
	}
	var rec topodatapb.Tablet
	eventually(t, 10*time.Second, "A's record says REPLICA", func() bool {
		return e.get(t, tabletKey(120), &rec) && rec.Type == topodatapb.TabletType_REPLICA && rec.PrimaryTermStartTime == nil
	})
}
