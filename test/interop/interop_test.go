//go:build interop

// Package interop runs tabletd against real Vitess v23 programs (vtctld, vtgate, vtctldclient)
// built by scripts/build-vitess.sh; `make interop` runs it with VITESS_BIN set. vtctld and
// vtgate are started by scripts/vitess-local.sh, the command lines the README shows.
package interop

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/test/etcdtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

const healthInterval = 2 * time.Second

// cluster is etcd + vtctld + vtgate, with tabletd built from this checkout.
type cluster struct {
	t               *testing.T
	bin             string // VITESS_BIN
	etcd            *etcdtest.Server
	dir             string // writable by the vt user
	vtctld          string // grpc address
	vtgateDB        *sql.DB
	vtgateMySQLPort int
	tabletd         string // binary
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

// newCluster starts etcd, vtctld and vtgate; vtgateFlags are appended to vtgate's command line
// (later flags win).
func newCluster(t *testing.T, vtgateFlags ...string) *cluster {
	t.Helper()
	bin := os.Getenv("VITESS_BIN")
	if bin == "" {
		t.Fatal("VITESS_BIN is not set: run `make interop`, which builds Vitess v23 with scripts/build-vitess.sh")
	}
	for _, p := range []string{"vtctld", "vtgate", "vtctldclient"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			t.Fatalf("%s: %v (build it with `make vitess`)", p, err)
		}
	}
	dir, err := os.MkdirTemp("", "tabletd-interop")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &cluster{t: t, bin: bin, etcd: etcdtest.Start(t), dir: dir}
	c.tabletd = filepath.Join(dir, "tabletd")
	if out, err := exec.Command("go", "build", "-o", c.tabletd, "../../cmd/tabletd").CombinedOutput(); err != nil {
		t.Fatalf("building tabletd: %v\n%s", err, out)
	}
	// The cell, vtctld and vtgate come from scripts/vitess-local.sh, the command lines the
	// README shows (TestReadme keeps the README equal to them); only the ports and folders differ.
	ctldPort, ctldGRPC := freePort(t), freePort(t)
	gatePort, gateGRPC, gateMySQL := freePort(t), freePort(t), freePort(t)
	env := append(os.Environ(), "VITESS_BIN="+bin, "VT_USER=vt", "VT_TOPO_ADDR="+c.etcd.Endpoint(),
		"VT_CELL=zone1", "VT_DIR="+dir,
		fmt.Sprint("VTCTLD_PORT=", ctldPort), fmt.Sprint("VTCTLD_GRPC_PORT=", ctldGRPC),
		fmt.Sprint("VTGATE_PORT=", gatePort), fmt.Sprint("VTGATE_GRPC_PORT=", gateGRPC),
		fmt.Sprint("VTGATE_MYSQL_PORT=", gateMySQL))
	vitessLocal := func(sub string, args ...string) *exec.Cmd {
		cmd := exec.Command("../../scripts/vitess-local.sh", append([]string{sub}, args...)...)
		cmd.Env = env
		return cmd
	}
	if out, err := vitessLocal("cell").CombinedOutput(); err != nil {
		t.Fatalf("scripts/vitess-local.sh cell: %v\n%s", err, out)
	}
	c.vtctld = fmt.Sprintf("127.0.0.1:%d", ctldGRPC)
	c.launch("vtctld", vitessLocal("vtctld"))
	c.launch("vtgate", vitessLocal("vtgate", vtgateFlags...))
	c.vtgateMySQLPort = gateMySQL
	db, err := sql.Open("mysql", fmt.Sprintf("user@tcp(127.0.0.1:%d)/", gateMySQL))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	c.vtgateDB = db
	return c
}

func (c *cluster) topoFlags() []string {
	return []string{"--topo-implementation", "etcd2", "--topo-global-server-address", c.etcd.Endpoint(),
		"--topo-global-root", "/vitess/global"}
}

// start runs a Vitess program as the vt user (Vitess refuses to run as root).
func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	full := append([]string{"-u", "vt", "--", filepath.Join(c.bin, name)}, c.topoFlags()...)
	full = append(full, "--log_dir", c.dir)
	full = append(full, args...)
	c.launch(name, exec.Command("runuser", full...))
}

// launch starts cmd in its own process group, its output in <dir>/<name>.out; the whole
// group is killed when the test ends.
func (c *cluster) launch(name string, cmd *exec.Cmd) {
	c.t.Helper()
	out, _ := os.Create(filepath.Join(c.dir, name+".out"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	c.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		out.Close()
	})
}

// ctl runs vtctldclient and returns its output, failing the test on error.
func (c *cluster) ctl(args ...string) string {
	c.t.Helper()
	out, err := c.tryCtl(args...)
	if err != nil {
		c.t.Fatalf("vtctldclient %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) tryCtl(args ...string) (string, error) {
	full := append([]string{"-u", "vt", "--", filepath.Join(c.bin, "vtctldclient")}, c.topoFlags()...)
	if args[0] != "--server" {
		full = append(full, "--server", c.vtctld)
	}
	full = append(full, args...)
	var out bytes.Buffer
	cmd := exec.Command("runuser", full...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// tabletsState returns vtgate's `SHOW vitess_tablets` state for alias ("" when absent).
func (c *cluster) tabletState(alias string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rows, err := c.vtgateDB.QueryContext(ctx, "SHOW vitess_tablets")
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "error: " + err.Error()
		}
		row := map[string]string{}
		for i, col := range cols {
			row[col] = vals[i].String
		}
		if row["Alias"] == alias {
			return row["TabletType"] + " " + row["State"]
		}
	}
	return ""
}

func (c *cluster) waitState(alias, want string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = c.tabletState(alias); last == want {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("vtgate shows %s as %q, want %q within %v", alias, last, want, timeout)
	return 0
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestVtgateAndVtctldSeeTabletd(t *testing.T) {
	c := newCluster(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	tab := c.startTabletd(db, "REPLICA")
	grpcPort, httpPort, started, exited := tab.grpcPort, tab.httpPort, tab.started, tab.exited

	// vtctldclient GetTablets lists tabletd with the right identity and addresses.
	want := fmt.Sprintf("zone1-0000000100 commerce 0 replica 127.0.0.1:%d 127.0.0.1:%d", httpPort, db.Port)
	eventually(t, 30*time.Second, "GetTablets lists the tablet", func() bool {
		out, err := c.tryCtl("GetTablets")
		return err == nil && strings.Contains(out, want)
	})
	rec := c.ctl("GetTablet", "zone1-100")
	if !strings.Contains(rec, fmt.Sprintf(`"grpc": %d`, grpcPort)) {
		t.Fatalf("tablet record lacks the grpc port %d:\n%s", grpcPort, rec)
	}
	c.ctl("PingTablet", "zone1-100")

	// TabletExternallyReparented makes it PRIMARY; vtgate routes to it.
	c.ctl("TabletExternallyReparented", "zone1-100")
	eventually(t, 10*time.Second, "GetTablets shows primary", func() bool {
		return strings.Contains(c.ctl("GetTablets"), "zone1-0000000100 commerce 0 primary")
	})
	took := c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	t.Logf("start to SERVING in vtgate: %v (after promotion: %v)", time.Since(started).Round(time.Millisecond), took.Round(time.Millisecond))
	c.ctl("RefreshState", "zone1-100")
	if out, err := c.tryCtl("ChangeTabletType", "zone1-100", "rdonly"); err == nil {
		t.Fatalf("vtctld let a PRIMARY be changed to rdonly: %s", out)
	}

	// mysqld dies: NOT_SERVING in vtgate within two health intervals; back by itself.
	db.Kill(t)
	took = c.waitState("zone1-0000000100", "PRIMARY NOT_SERVING", 2*healthInterval)
	t.Logf("mysqld killed: NOT_SERVING in vtgate after %v", took.Round(time.Millisecond))
	db.Restart(t)
	took = c.waitState("zone1-0000000100", "PRIMARY SERVING", 30*time.Second)
	t.Logf("mysqld back: SERVING in vtgate after %v", took.Round(time.Millisecond))

	// SIGTERM: the tablet leaves vtgate's serving set and exits 0.
	if err := tab.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "vtgate stops serving from the tablet", func() bool {
		return c.tabletState("zone1-0000000100") != "PRIMARY SERVING"
	})
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("tabletd exit after SIGTERM: %v", err)
		}
		exited <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("tabletd did not exit within 15s of SIGTERM")
	}
	out := c.ctl("GetTablet", "zone1-100")
	if !strings.Contains(out, `"hostname": ""`) {
		t.Fatalf("after SIGTERM the record still has a hostname:\n%s", out)
	}
}

// tabletd is a tabletd subprocess.
type tabletd struct {
	cmd                *exec.Cmd
	grpcPort, httpPort int
	started            time.Time
	exited             chan error
}

// startTabletd starts tabletd as zone1-100 in keyspace commerce, shard 0, on db.
func (c *cluster) startTabletd(db *mariadbtest.Server, initType string, extra ...string) *tabletd {
	t := c.t
	t.Helper()
	tab := &tabletd{grpcPort: freePort(t), httpPort: freePort(t), exited: make(chan error, 1)}
	args := append(c.topoFlags(), "--tablet-path", "zone1-100", "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", "commerce", "--init-shard", "0", "--init-tablet-type", initType,
		"--db-host", "127.0.0.1", "--db-port", fmt.Sprint(db.Port),
		"--db-dba-user", "vt_dba", "--db-dba-password", mariadbtest.Password,
		"--db-app-user", "vt_app", "--db-app-password", mariadbtest.Password,
		"--port", fmt.Sprint(tab.httpPort), "--grpc-port", fmt.Sprint(tab.grpcPort),
		"--service-map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
		"--health-check-interval", healthInterval.String())
	args = append(args, extra...)
	tab.cmd = exec.Command(c.tabletd, args...)
	logf, _ := os.Create(filepath.Join(c.dir, "tabletd.log"))
	tab.cmd.Stdout, tab.cmd.Stderr = logf, logf
	tab.started = time.Now()
	if err := tab.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tab.exited <- tab.cmd.Wait() }()
	t.Cleanup(func() {
		_ = tab.cmd.Process.Kill()
		<-tab.exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(c.dir, "tabletd.log"))
			t.Logf("tabletd log (tail):\n%s", tail(b, 8000))
		}
	})
	return tab
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
