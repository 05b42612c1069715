//go:build interop

package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/test/certtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// sharedDir is a directory the vt user can read (Vitess runs as vt): certificates and
// credentials files for vtgate and vtctld.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tabletd-interop-sec")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startVtctld starts another vtctld with extra flags and returns its gRPC address.
func (c *cluster) startVtctld(name string, extra ...string) string {
	c.t.Helper()
	port, grpcPort := freePort(c.t), freePort(c.t)
	full := append([]string{"-u", "vt", "--", filepath.Join(c.bin, "vtctld")}, c.topoFlags()...)
	full = append(full, "--log_dir", c.dir, "--cell", "zone1", "--service-map", "grpc-vtctl,grpc-vtctld",
		"--port", fmt.Sprint(port), "--grpc-port", fmt.Sprint(grpcPort))
	c.launch(name, exec.Command("runuser", append(full, extra...)...))
	addr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	eventually(c.t, 30*time.Second, name+" answers", func() bool {
		_, err := c.tryCtl("--server", addr, "--action-timeout", "5s", "GetCellInfoNames")
		return err == nil
	})
	return addr
}

// refused runs a vtctldclient command that must fail, bounded (a refused connection is
// retried until the action timeout).
func (c *cluster) refused(args ...string) {
	c.t.Helper()
	if out, err := c.tryCtl(append([]string{"--server", c.vtctld, "--action-timeout", "20s"}, args...)...); err == nil {
		c.t.Fatalf("vtctld without credentials ran %v: %s", args, out)
	}
}

// vtgateExec runs statements through vtgate in keyspace commerce, in one session.
func (c *cluster) vtgateExec(stmts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := c.vtgateDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, sql := range append([]string{"use commerce"}, stmts...) {
		if _, err := conn.ExecContext(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// TestMutualTLSWithVitess: tabletd with --grpc-cert/key/ca and --grpc-auth-mode mtls; a real
// vtgate (--tablet-grpc-cert/key/ca) routes queries to it and a real vtctld
// (--tablet-manager-grpc-*) runs tablet commands on it; vtctld without a client certificate,
// and a client with a certificate from another CA or not allowed, are refused.
func TestMutualTLSWithVitess(t *testing.T) {
	dir := sharedDir(t)
	ca := certtest.NewCA(t, dir, "vitess")
	rogue := certtest.NewCA(t, dir, "rogue")
	tabletPair := ca.Server(t, "tablet")
	gate, ctld := ca.Client(t, "vtgate"), ca.Client(t, "vtctld")
	c := newCluster(t, "--tablet-grpc-cert", gate.CertFile, "--tablet-grpc-key", gate.KeyFile, "--tablet-grpc-ca", ca.CertFile)
	tlsCtld := c.startVtctld("vtctld-tls", "--tablet-manager-grpc-cert", ctld.CertFile, "--tablet-manager-grpc-key", ctld.KeyFile,
		"--tablet-manager-grpc-ca", ca.CertFile, "--tablet-grpc-cert", ctld.CertFile, "--tablet-grpc-key", ctld.KeyFile, "--tablet-grpc-ca", ca.CertFile)

	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	tab := c.startTabletd(db, "PRIMARY", "--grpc-cert", tabletPair.CertFile, "--grpc-key", tabletPair.KeyFile,
		"--grpc-ca", ca.CertFile, "--grpc-auth-mode", "mtls", "--grpc-auth-mtls-allowed-substrings", "CN=vtgate:CN=vtctld")

	took := c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	t.Logf("vtgate sees the tablet SERVING over mutual TLS after %v", took.Round(time.Millisecond))
	if err := c.vtgateExec("create table tls_t (id int primary key, msg varchar(64))", "insert into tls_t values (1, 'over tls')"); err != nil {
		t.Fatalf("through vtgate: %v", err)
	}
	var msg string
	if err := c.vtgateDB.QueryRow("select msg from tls_t where id = 1").Scan(&msg); err != nil {
		// vtgate's pool has no keyspace selected: read through the keyspace-qualified name
		if err := c.vtgateDB.QueryRow("select msg from commerce.tls_t where id = 1").Scan(&msg); err != nil {
			t.Fatalf("select through vtgate: %v", err)
		}
	}
	if msg != "over tls" {
		t.Fatalf("read back %q through vtgate", msg)
	}

	// vtctld with the client certificate runs TabletManager RPCs; the plain one cannot.
	c.ctl("--server", tlsCtld, "PingTablet", "zone1-100")
	out := c.ctl("--server", tlsCtld, "GetTablet", "zone1-100")
	if !strings.Contains(out, fmt.Sprintf(`"grpc": %d`, tab.grpcPort)) {
		t.Fatalf("GetTablet through vtctld: %s", out)
	}
	if _, err := c.tryCtl("--server", tlsCtld, "RefreshState", "zone1-100"); err != nil {
		t.Fatalf("RefreshState over mutual TLS: %v", err)
	}
	c.refused("PingTablet", "zone1-100")

	// Direct clients: only an allowed certificate from the CA gets through.
	addr := fmt.Sprintf("127.0.0.1:%d", tab.grpcPort)
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		want  codes.Code
	}{
		{"plain text", insecure.NewCredentials(), codes.Unavailable},
		{"TLS without a certificate", credentials.NewTLS(ca.ClientTLS(t, certtest.Pair{})), codes.Unavailable},
		{"certificate from another CA", credentials.NewTLS(ca.ClientTLS(t, rogue.Client(t, "vtgate"))), codes.Unavailable},
		{"certificate not allowed", credentials.NewTLS(ca.ClientTLS(t, ca.Client(t, "intruder"))), codes.Unauthenticated},
		{"vtgate's certificate", credentials.NewTLS(ca.ClientTLS(t, gate)), codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(tc.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = queryservicepb.NewQueryClient(conn).Execute(ctx, &querypb.ExecuteRequest{
				Target: &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: 1}, Query: &querypb.BoundQuery{Sql: "select 1"}})
			if got := status.Code(err); got != tc.want {
				t.Fatalf("%v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

// TestStaticAuthWithVitess: tabletd with --grpc-auth-mode static; vtgate and vtctld with
// --grpc-auth-static-client-creds reach it, vtctld without is refused.
func TestStaticAuthWithVitess(t *testing.T) {
	dir := sharedDir(t)
	server := filepath.Join(dir, "grpc-auth.json")
	client := filepath.Join(dir, "grpc-client.json")
	for f, content := range map[string]string{
		server: `[{"Username": "vitess", "Password": "interop-static-pw"}]`,
		client: `{"Username": "vitess", "Password": "interop-static-pw"}`,
	} {
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newCluster(t, "--grpc-auth-static-client-creds", client)
	authCtld := c.startVtctld("vtctld-auth", "--grpc-auth-static-client-creds", client)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	c.startTabletd(db, "PRIMARY", "--grpc-auth-mode", "static", "--grpc-auth-static-password-file", server)
	c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	if err := c.vtgateExec("create table auth_t (id int primary key)"); err != nil {
		t.Fatalf("through vtgate with static auth: %v", err)
	}
	c.ctl("--server", authCtld, "PingTablet", "zone1-100")
	c.refused("PingTablet", "zone1-100")
}
