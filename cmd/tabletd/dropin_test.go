package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/test/etcdtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// lockedBuffer is stderr shared by the daemon's goroutines and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestDropInConventions runs the daemon as vttablet on a real MariaDB and etcd, with a
// command line in the e2e cluster's spelling and none of the connection flags: it finds
// MySQL through $VTDATAROOT/vt_<uid>/my.cnf, logs in with --db-credentials-file, binds both
// ports to 127.0.0.1, serves /debug/vars for Vitess's tooling, reports the flags it does not
// implement once at start and on /debug/status, writes its log to --log_dir and every query
// to --log-queries-to-file.
func TestDropInConventions(t *testing.T) {
	e := etcdtest.Start(t)
	cell, _ := proto.Marshal(&topodatapb.CellInfo{ServerAddress: e.Endpoint(), Root: "/vitess/zone1"})
	if _, err := e.Client(t).Put(context.Background(), "/vitess/global/cells/zone1/CellInfo", string(cell)); err != nil {
		t.Fatal(err)
	}
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")

	root := t.TempDir()
	dir := filepath.Join(root, "vt_0000000100")
	logDir := filepath.Join(root, "logs")
	for _, d := range []string{dir, logDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mycnf := fmt.Sprintf("[mysqld]\nport = %d\nsocket = %s\n", db.Port, db.Socket)
	if err := os.WriteFile(filepath.Join(dir, "my.cnf"), []byte(mycnf), 0o640); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(root, "creds.json")
	credsJSON := fmt.Sprintf(`{"vt_dba": [%q], "vt_app": [%q], "vt_allprivs": [%q], "vt_repl": [%q], "vt_filtered": [%q]}`,
		mariadbtest.Password, mariadbtest.Password, mariadbtest.Password, mariadbtest.Password, mariadbtest.Password)
	if err := os.WriteFile(creds, []byte(credsJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	queryLog := filepath.Join(root, "vt_0000000100_querylog.txt")
	httpPort, grpcPort := freePort(t), freePort(t)
	argv := []string{"/usr/local/bin/vttablet",
		"--topo_implementation", "etcd2", "--topo_global_server_address", e.Endpoint(), "--topo_global_root", "/vitess/global",
		"--log_queries_to_file", queryLog, "--tablet-path", "zone1-0000000100",
		"--port", fmt.Sprint(httpPort), "--grpc_port", fmt.Sprint(grpcPort), "--init_shard", "0", "--log_dir", logDir,
		"--tablet_hostname", "127.0.0.1", "--init_keyspace", "commerce", "--init_tablet_type", "primary",
		"--health_check_interval", "1s", "--enable_replication_reporter",
		"--service_map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream,grpc-throttler",
		"--db_charset", "utf8mb4", "--bind-address", "127.0.0.1", "--grpc_bind_address", "127.0.0.1",
		"--db-credentials-file", creds, "--datadog-trace-debug-mode", "--vmodule", "x=1", "--log-format", "console"}
	env := func(k string) string {
		if k == "VTDATAROOT" {
			return root
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, argv, io.Discard, &stderr, env) }()
	defer func() {
		if t.Failed() {
			t.Logf("tabletd stderr:\n%s", stderr.String())
		}
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	var vars map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		vars = nil
		if err := getJSON(base+"/debug/vars", &vars); err == nil && vars["TabletStateName"] == "SERVING" {
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("tabletd exited %d before serving", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/debug/vars never said SERVING: %v", vars)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if vars["TabletType"] != "primary" || vars["TabletAlias"] != "zone1-0000000100" || vars["TabletKeyspace"] != "commerce" {
		t.Fatalf("/debug/vars: %v", vars)
	}

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	target := &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}
	res, err := queryservicepb.NewQueryClient(conn).Execute(ctx, &querypb.ExecuteRequest{Target: target,
		ImmediateCallerId: &querypb.VTGateCallerID{Username: "dropin"},
		Query:             &querypb.BoundQuery{Sql: "select @@port, database() /* dropin-test */"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.GetResult().GetRows()[0].GetValues()); !strings.HasPrefix(got, fmt.Sprint(db.Port)) || !strings.Contains(got, "vt_commerce") {
		t.Fatalf("served by the wrong server or database: %q", got)
	}

	// Both ports listen on 127.0.0.1 only (--bind-address, --grpc_bind_address): the
	// machine's other addresses do not answer.
	for _, ip := range otherAddrs(t) {
		for _, p := range []int{httpPort, grpcPort} {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(p)), time.Second); err == nil {
				c.Close()
				t.Errorf("port %d answers on %s: not bound to 127.0.0.1 only", p, ip)
			}
		}
	}

	status := httpGet(t, base+"/debug/status")
	for _, f := range []string{"--datadog-trace-debug-mode", "--vmodule"} {
		if !strings.Contains(status, f) {
			t.Errorf("/debug/status does not list %s as accepted, not implemented", f)
		}
	}
	for _, f := range []string{"--log-queries-to-file", "--db-credentials-file", "--bind-address"} {
		if strings.Contains(status, "<td>"+f+"</td>") {
			t.Errorf("/debug/status lists %s, which acts, as not implemented", f)
		}
	}

	cancel()
	if code := <-exited; code != exitOK {
		t.Fatalf("exit %d after the context ended", code)
	}
	out := stderr.String()
	if n := strings.Count(out, "accepted but not implemented"); n != 1 {
		t.Errorf("the not-implemented flags are reported %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, mariadbtest.Password) {
		t.Error("a password from the credentials file is in the log")
	}
	ql, err := os.ReadFile(queryLog)
	if err != nil || !strings.Contains(string(ql), "Execute\t") || !strings.Contains(string(ql), "dropin-test") || !strings.Contains(string(ql), "'dropin'") {
		t.Fatalf("query log %q, %v: want the Execute line with its caller", ql, err)
	}
	logged, err := os.ReadFile(filepath.Join(logDir, "vttablet.INFO"))
	if err != nil || !strings.Contains(string(logged), "accepted but not implemented") {
		t.Fatalf("--log_dir file through vttablet.INFO: %v; holds the start report: %v", err, strings.Contains(string(logged), "accepted"))
	}
}

// otherAddrs are the machine's addresses other than 127.0.0.1 (::1 and the interfaces').
func otherAddrs(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			out = append(out, ipn.IP.String())
		}
	}
	t.Logf("checking that %v do not answer", out)
	return out
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
