// Package integration runs whole tabletd instances in-process against real mariadbd and etcd servers.
package integration

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/etcdtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
	"github.com/tabletd/tabletd/topo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives as long as a *sql.DB the mariadbtest
		// cleanup closes after goleak's check of a failing test; and glog-free etcd leaves none.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

const (
	globalRoot = "/vitess/global"
	cell       = "zone1"
	cellRoot   = "/vitess/zone1"
)

// env is one etcd with the cell registered, as `vtctldclient AddCellInfo` leaves it.
type env struct {
	etcd *etcdtest.Server
	cli  *clientv3.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{etcd: etcdtest.Start(t)}
	e.cli = e.etcd.Client(t)
	e.put(t, path.Join(globalRoot, "cells", cell, "CellInfo"),
		&topodatapb.CellInfo{ServerAddress: e.etcd.Endpoint(), Root: cellRoot})
	return e
}

func (e *env) put(t *testing.T, key string, m proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Put(context.Background(), key, string(b)); err != nil {
		t.Fatal(err)
	}
}

// get decodes key into m; false when absent.
func (e *env) get(t *testing.T, key string, m proto.Message) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := e.cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) == 0 {
		return false
	}
	if err := proto.Unmarshal(r.Kvs[0].Value, m); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return true
}

// snapshot returns every key and its ModRevision: "nothing written" means equal snapshots.
func (e *env) snapshot(t *testing.T) map[string]int64 {
	t.Helper()
	r, err := e.cli.Get(context.Background(), "/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, kv := range r.Kvs {
		m[string(kv.Key)] = kv.ModRevision
	}
	return m
}

func tabletKey(uid uint32) string {
	return path.Join(cellRoot, "tablets", aliasString(uid), "Tablet")
}

func aliasString(uid uint32) string {
	return topo.AliasString(&topodatapb.TabletAlias{Cell: cell, Uid: uid})
}

// tabletOpts tweak the configuration of a test tablet.
type tabletOpts struct {
	uid      uint32
	initType topodatapb.TabletType
	shard    string
	hostname string
	topoAddr string // default: the env's etcd
}

// running is a tablet started in-process with gRPC clients to it.
type running struct {
	t    *tablet.Tablet
	cfg  tablet.Config
	conn *grpc.ClientConn
	qs   queryservicepb.QueryClient
	tm   tabletmanagerservicepb.TabletManagerClient
	stop func()
}

func tabletConfig(e *env, db *mariadbtest.Server, o tabletOpts) tablet.Config {
	cfg := tablet.DefaultConfig()
	if o.uid == 0 {
		o.uid = 100
	}
	if o.initType == topodatapb.TabletType_UNKNOWN {
		o.initType = topodatapb.TabletType_REPLICA
	}
	if o.shard == "" {
		o.shard = "0"
	}
	if o.hostname == "" {
		o.hostname = "127.0.0.1"
	}
	cfg.Alias = &topodatapb.TabletAlias{Cell: cell, Uid: o.uid}
	cfg.Hostname, cfg.Keyspace, cfg.Shard = o.hostname, "commerce", o.shard
	cfg.InitType = o.initType
	cfg.BindAddress = "127.0.0.1"
	cfg.DB.Host, cfg.DB.Port = db.Host, db.Port
	for _, r := range dbconfig.Roles {
		cfg.DB.Users[r] = dbconfig.Credential{User: "vt_" + string(r), Password: mariadbtest.Password}
	}
	cfg.Topo.GlobalServerAddress, cfg.Topo.GlobalRoot = e.etcd.Endpoint(), globalRoot
	if o.topoAddr != "" {
		cfg.Topo.GlobalServerAddress = o.topoAddr
	}
	cfg.Topo.DialTimeout, cfg.Topo.RequestTimeout = time.Second, 2*time.Second
	cfg.Query.HealthCheckInterval = time.Second
	cfg.Query.ProbeInterval = 100 * time.Millisecond
	cfg.Manager.RetryInterval, cfg.Manager.MaxRetryInterval = 50*time.Millisecond, 500*time.Millisecond
	cfg.Manager.SyncInterval, cfg.Manager.TopoTimeout = 200*time.Millisecond, 3*time.Second
	return cfg
}

func startTablet(t *testing.T, cfg tablet.Config) *running {
	t.Helper()
	tb, err := tablet.New(cfg, tablet.Deps{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("tablet.New: %v", err)
	}
	if err := tb.Open(context.Background()); err != nil {
		t.Fatalf("tablet.Open: %v", err)
	}
	conn, err := grpc.NewClient(tb.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{t: tb, cfg: cfg, conn: conn, qs: queryservicepb.NewQueryClient(conn),
		tm: tabletmanagerservicepb.NewTabletManagerClient(conn)}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		tb.Shutdown(context.Background())
		_ = conn.Close()
	}
	t.Cleanup(r.stop)
	return r
}

// healthStream follows StreamHealth; next returns the next record or fails the test.
type healthStream struct {
	t      *testing.T
	ch     chan *querypb.StreamHealthResponse
	errc   chan error
	cancel context.CancelFunc
}

func (r *running) health(t *testing.T) *healthStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := r.qs.StreamHealth(ctx, &querypb.StreamHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h := &healthStream{t: t, ch: make(chan *querypb.StreamHealthResponse, 1000), errc: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				h.errc <- err
				close(h.ch)
				return
			}
			h.ch <- m
		}
	}()
	t.Cleanup(cancel)
	return h
}

// until returns the first record satisfying ok, failing after timeout.
func (h *healthStream) until(timeout time.Duration, what string, ok func(*querypb.StreamHealthResponse) bool) *querypb.StreamHealthResponse {
	h.t.Helper()
	deadline := time.After(timeout)
	var last *querypb.StreamHealthResponse
	for {
		select {
		case m, open := <-h.ch:
			if !open {
				h.t.Fatalf("health stream ended (%v) before: %s; last record %v", <-h.errc, what, last)
			}
			last = m
			if ok(m) {
				return m
			}
		case <-deadline:
			h.t.Fatalf("no health record within %v: %s; last record %v", timeout, what, last)
		}
	}
}

func readOnly(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var v int
	if err := db.QueryRow("SELECT @@global.read_only").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v == 1
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func itoa(n int) string { return strconv.Itoa(n) }

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	body := readBody(t, resp, err)
	return resp.StatusCode, body
}

// readBody fails the test on a request error, else returns the response's body.
func readBody(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
