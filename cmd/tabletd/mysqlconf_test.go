package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/tablet"
)

// mysqlctlMycnf is the part of a my.cnf mysqlctl writes that tabletd reads (as mysqlctl
// writes it: [mysqld] section, "key = value", '-' in keys), for tablet dir dir.
func mysqlctlMycnf(dir string, port int) string {
	return fmt.Sprintf("[mysqld]\nport = %d\nserver-id = 265794599\nsocket = %s/mysql.sock\ndatadir = %s/data\nread-only\n", port, dir, dir)
}

// configFor parses args (after the identity flags) with VTDATAROOT=root and returns the config.
func configFor(t *testing.T, root string, args ...string) (tablet.Config, error) {
	t.Helper()
	var o options
	fs := newFlagSet(&o)
	full := append([]string{"--tablet-path", "zone1-100", "--init-keyspace", "commerce", "--init-shard", "0",
		"--topo-global-server-address", "x:1"}, args...)
	if err := fs.Parse(full); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "VTDATAROOT" {
			return root
		}
		return ""
	}
	return o.toConfig(env)
}

// TestLocalMySQLConventions: with no connection flag, tabletd finds MySQL where mysqlctl
// puts it — my.cnf's socket and port, else the socket path — and a flag always wins.
func TestLocalMySQLConventions(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "vt_0000000100")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	noCnfRoot := t.TempDir()
	noCnfDir := filepath.Join(noCnfRoot, "vt_0000000100")
	if err := os.WriteFile(filepath.Join(dir, "my.cnf"), []byte(mysqlctlMycnf(dir, 17100)), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		root       string
		args       []string
		socket     string
		host       string
		port       int
		errMention string
	}{
		{"my.cnf", root, nil, dir + "/mysql.sock", "", 17100, ""},
		{"my.cnf, --db-port wins", root, []string{"--db-port", "3307"}, dir + "/mysql.sock", "", 3307, ""},
		{"no my.cnf: mysqlctl's socket", noCnfRoot, nil, noCnfDir + "/mysql.sock", "", 3306, ""},
		{"no my.cnf: --mycnf-socket-file", noCnfRoot, []string{"--mycnf-socket-file", "/vt/socket/mysql.sock", "--mycnf-mysql-port", "3310"}, "/vt/socket/mysql.sock", "", 3310, ""},
		{"--db-socket wins", root, []string{"--db-socket", "/run/m.sock"}, "/run/m.sock", "", 3306, ""},
		{"--db-host wins", root, []string{"--db-host", "db1", "--db_port", "3308"}, "", "db1", 3308, ""},
		{"no VTDATAROOT, no flags", "", nil, "", "", 0, "--db-host or --db-socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFor(t, tc.root, tc.args...)
			if err == nil {
				_, err = tablet.New(c, tablet.Deps{})
			}
			if tc.errMention != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMention) {
					t.Fatalf("error %v, want one naming %s", err, tc.errMention)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DB.Socket != tc.socket || c.DB.Host != tc.host || c.DB.Port != tc.port {
				t.Fatalf("socket %q host %q port %d, want %q %q %d", c.DB.Socket, c.DB.Host, c.DB.Port, tc.socket, tc.host, tc.port)
			}
		})
	}
}

// TestVttabletDefaults: vttablet's defaults where flags are absent — the vt_* users with
// empty passwords, database vt_<keyspace> (no override), a replica.
func TestVttabletDefaults(t *testing.T) {
	c, err := configFor(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[dbconfig.Role]string{dbconfig.Dba: "vt_dba", dbconfig.App: "vt_app", dbconfig.AllPrivs: "vt_allprivs",
		dbconfig.Repl: "vt_repl", dbconfig.Filtered: "vt_filtered"}
	for r, u := range want {
		if got := c.DB.Users[r]; got.User != u || got.Password != "" {
			t.Errorf("role %s: user %q password set %v, want %q and no password", r, got.User, got.Password != "", u)
		}
	}
	if c.DBNameOverride != "" || c.InitType != topodatapb.TabletType_REPLICA {
		t.Errorf("db name override %q, type %v: want none (vt_commerce) and REPLICA", c.DBNameOverride, c.InitType)
	}
}

func TestMycnfBad(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "vt_0000000100")
	_ = os.Mkdir(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "my.cnf"), []byte("[mysqld]\nport = lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := configFor(t, root); err == nil || !strings.Contains(err.Error(), "my.cnf") || !strings.Contains(err.Error(), "lots") {
		t.Fatalf("error %v, want one naming my.cnf and the bad port", err)
	}
	// A my.cnf that cannot be read (here: a directory) is an error naming it, not a fallback.
	root2 := t.TempDir()
	dir2 := filepath.Join(root2, "vt_0000000100")
	_ = os.MkdirAll(filepath.Join(dir2, "my.cnf"), 0o755)
	if _, err := configFor(t, root2); err == nil || !strings.Contains(err.Error(), "my.cnf") {
		t.Fatalf("error %v, want one naming my.cnf", err)
	}
}

// TestWaitForMycnf: the start waits for the my.cnf mysqlctl is writing, and stops waiting
// when the daemon is told to stop.
func TestWaitForMycnf(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "vt_0000000100")
	_ = os.Mkdir(dir, 0o755)
	env := func(k string) string {
		if k == "VTDATAROOT" {
			return root
		}
		return ""
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		_ = os.WriteFile(filepath.Join(dir, "my.cnf"), []byte(mysqlctlMycnf(dir, 17100)), 0o644)
	}()
	var o options
	newFlagSet(&o)
	o.waitForMycnf(context.Background(), env, 100)
	<-written
	if m, err := readMycnf(filepath.Join(dir, "my.cnf")); err != nil || m.port != 17100 {
		t.Fatalf("after the wait: %+v, %v", m, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { o.waitForMycnf(ctx, env, 200); close(done) }()
	select {
	case <-done:
	case <-time.After(mycnfWait / 2):
		t.Fatal("waitForMycnf ignored a cancelled context")
	}
}

// TestCredentialsFile: --db-credentials-file gives listed users their password (over the
// password flags, as vttablet); bad files are errors naming the flag.
func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"vt_app": ["app-secret", "older"], "vt_dba": ["dba-secret"], "someone": ["x"]}`)
	c, err := configFor(t, "", "--db-host", "h", "--db-credentials-file", good, "--db-dba-password", "flag")
	if err != nil {
		t.Fatal(err)
	}
	if c.DB.Users[dbconfig.App].Password != "app-secret" || c.DB.Users[dbconfig.Dba].Password != "dba-secret" || c.DB.Users[dbconfig.Repl].Password != "" {
		t.Fatalf("passwords not taken from the file: app %v dba %v repl %v", c.DB.Users[dbconfig.App].Password == "app-secret",
			c.DB.Users[dbconfig.Dba].Password == "dba-secret", c.DB.Users[dbconfig.Repl].Password == "")
	}
	for _, tc := range []struct{ name, path, mention string }{
		{"missing", filepath.Join(dir, "none.json"), "--db-credentials-file"},
		{"not json", write("bad.json", "vt_app: secret"), "--db-credentials-file"},
		{"no password", write("empty.json", `{"vt_app": []}`), "vt_app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configFor(t, "", "--db-host", "h", "--db-credentials-file", tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v, want one naming %s", err, tc.mention)
			}
			if strings.Contains(fmt.Sprint(err), "secret") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}
	if _, err := configFor(t, "", "--db-host", "h", "--db-credentials-server", "vault"); err == nil || !strings.Contains(err.Error(), "--db-credentials-server") {
		t.Fatalf("vault credentials server: %v", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	c, err := configFor(t, "", "--db-host", "h", "--db_connect_timeout_ms", "1500")
	if err != nil || c.DB.DialTimeout != 1500*time.Millisecond {
		t.Fatalf("dial timeout %v, %v; want 1.5s", c.DB.DialTimeout, err)
	}
	if _, err := configFor(t, "", "--db-host", "h", "--db-connect-timeout-ms", "-1"); err == nil || !strings.Contains(err.Error(), "--db-connect-timeout-ms") {
		t.Fatalf("negative timeout: %v", err)
	}
}

// TestBindAddresses: --bind-address binds the HTTP port, --grpc-bind-address the gRPC port,
// each alone, as vttablet does.
func TestBindAddresses(t *testing.T) {
	c, err := configFor(t, "", "--db-host", "h", "--bind-address", "127.0.0.1", "--grpc_bind_address", "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPBindAddress != "127.0.0.1" || c.GRPCBindAddress != "127.0.0.2" || c.BindAddress != "" {
		t.Fatalf("http %q grpc %q both %q", c.HTTPBindAddress, c.GRPCBindAddress, c.BindAddress)
	}
}

// TestManagedMycnf: the tablet's my.cnf is the managed-mode my.cnf restores use, unless a flag
// names another, a mysqlctld, or a remote MySQL.
func TestManagedMycnf(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "vt_0000000100")
	_ = os.Mkdir(dir, 0o755)
	cnf := filepath.Join(dir, "my.cnf")
	if err := os.WriteFile(cnf, []byte(mysqlctlMycnf(dir, 17100)), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		root string
		args []string
		want string
	}{
		{"convention", root, nil, cnf},
		{"--mycnf-file wins", root, []string{"--mycnf-file", "/etc/other.cnf"}, "/etc/other.cnf"},
		{"mysqlctld", root, []string{"--mysqlctl-socket", "/vt/vtdataroot/mysqlctl.sock"}, ""},
		{"remote MySQL", root, []string{"--db-host", "db1"}, ""},
		{"no my.cnf", t.TempDir(), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFor(t, tc.root, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Backup.MyCnfFile != tc.want {
				t.Fatalf("managed my.cnf %q, want %q", c.Backup.MyCnfFile, tc.want)
			}
		})
	}
}
