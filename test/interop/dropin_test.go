//go:build interop

package interop

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The drop-in tests start tabletd as Vitess's own tooling starts vttablet — by the name
// vttablet, through PATH, with their exact argument lists — beside MariaDB servers laid out
// by Vitess's real mysqlctl ($VTDATAROOT/vt_<uid>/ with my.cnf and mysql.sock, the users of
// Vitess's init SQL with empty passwords), then make one primary with
// `PlannedReparentShard --new-primary` and serve through vtgate.

// e2eVersionRegexp is how go/test/endtoend/cluster reads `vttablet --version`.
var e2eVersionRegexp = regexp.MustCompile(`Version: ([0-9]+)\.([0-9]+)\.([0-9]+)`)

// dropin is one cluster whose tablets run from a `vttablet` symlink to tabletd, on
// mysqlctl-made MariaDB servers under one VTDATAROOT.
type dropin struct {
	*cluster
	vtdataroot string
	pathDir    string // holds the vttablet symlink; first in PATH
	initSQL    string
}

func newDropin(t *testing.T) *dropin {
	c := newCluster(t)
	d := &dropin{cluster: c, vtdataroot: filepath.Join(c.dir, "vtdataroot"), pathDir: filepath.Join(c.dir, "bin")}
	for _, dir := range []string{d.vtdataroot, d.pathDir, filepath.Join(d.vtdataroot, "backups"), filepath.Join(c.dir, "tmp")} {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(dir, 0o777)
	}
	if err := os.Symlink(c.tabletd, filepath.Join(d.pathDir, "vttablet")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", d.pathDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// The init SQL Vitess's end-to-end cluster gives mysqlctl for flavors other than MySQL
	// (init_db.sql itself sets super_read_only, which MariaDB lacks).
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(strings.TrimSpace(string(modcache)), "vitess.io/vitess@v0.23.0/go/test/endtoend/vreplication/testdata/config/init_testserver_db.sql")
	sqlText, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("Vitess's init SQL for MariaDB: %v (the vitess.io/vitess v0.23.0 module, fetched by `make vitess`)", err)
	}
	d.initSQL = filepath.Join(c.dir, "init_testserver_db.sql")
	if err := os.WriteFile(d.initSQL, sqlText, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// mysqld is one mysqlctl-made MariaDB.
type mysqld struct {
	uid, port int
	dir       string  // $VTDATAROOT/vt_<uid>
	db        *sql.DB // vt_dba over the socket (no password, as Vitess's init SQL creates it)
}

// mysqlctl runs Vitess's mysqlctl as the vt user, as the e2e cluster does (mysqlctl_process.go).
func (d *dropin) mysqlctl(uid, port int, args ...string) error {
	full := append([]string{"-u", "vt", "--", "env", "VTDATAROOT=" + d.vtdataroot, filepath.Join(d.bin, "mysqlctl"),
		"--log_dir", d.dir, "--tablet_uid", fmt.Sprint(uid), "--mysql_port", fmt.Sprint(port)}, args...)
	out, err := exec.Command("runuser", full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mysqlctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (d *dropin) initMySQL(t *testing.T, uid int) *mysqld {
	t.Helper()
	m := &mysqld{uid: uid, port: freePort(t), dir: filepath.Join(d.vtdataroot, fmt.Sprintf("vt_%010d", uid))}
	if err := d.mysqlctl(uid, m.port, "init", "--init_db_sql_file", d.initSQL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.mysqlctl(uid, m.port, "shutdown"); err != nil {
			t.Logf("%v", err)
		}
	})
	db, err := sql.Open("mysql", "vt_dba@unix("+filepath.Join(m.dir, "mysql.sock")+")/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m.db = db
	return m
}

// vttablet starts `vttablet` found through PATH with args and env added to the test's.
func (d *dropin) vttablet(t *testing.T, name string, args []string, env ...string) *tabletd {
	t.Helper()
	tab := &tabletd{exited: make(chan error, 1)}
	tab.cmd = exec.Command("vttablet", args...)
	tab.cmd.Env = append(append(os.Environ(), "VTDATAROOT="+d.vtdataroot), env...)
	logName := filepath.Join(d.dir, name+".stderr")
	logf, _ := os.Create(logName)
	tab.cmd.Stdout, tab.cmd.Stderr = logf, logf
	tab.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	tab.started = time.Now()
	if err := tab.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tab.exited <- tab.cmd.Wait() }()
	t.Cleanup(func() {
		_ = tab.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-tab.exited:
		case <-time.After(15 * time.Second):
			_ = tab.cmd.Process.Kill()
			<-tab.exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logName)
			t.Logf("%s stderr (tail):\n%s", name, tail(b, 6000))
		}
	})
	return tab
}

// waitVars waits as the e2e cluster does: /debug/vars TabletStateName is one of want.
func waitVars(t *testing.T, tab *tabletd, httpPort int, want ...string) map[string]any {
	t.Helper()
	var vars map[string]any
	eventually(t, 60*time.Second, fmt.Sprintf("/debug/vars on :%d says %v", httpPort, want), func() bool {
		select {
		case err := <-tab.exited:
			tab.exited <- err
			t.Fatalf("vttablet on :%d exited: %v", httpPort, err)
		default:
		}
		vars = nil
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/vars", httpPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&vars) != nil {
			return false
		}
		for _, w := range want {
			if vars["TabletStateName"] == w {
				return true
			}
		}
		return false
	})
	return vars
}

// notImplemented reads the flags /debug/status lists as accepted, not implemented.
func notImplemented(t *testing.T, httpPort int) []string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/status", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	_, section, ok := strings.Cut(b.String(), "<h2>Flags accepted, not implemented</h2>")
	if !ok {
		t.Fatalf("/debug/status has no section for flags accepted, not implemented")
	}
	section, _, _ = strings.Cut(section, "</table>")
	var names []string
	for _, m := range regexp.MustCompile(`<td>(--[a-z0-9-]+)</td>`).FindAllStringSubmatch(section, -1) {
		names = append(names, m[1])
	}
	return names
}

// versionThroughPath runs `vttablet --version` as GetMajorVersion does and returns the major.
func versionThroughPath(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("vttablet", "--version").Output()
	if err != nil {
		t.Fatalf("vttablet --version: %v", err)
	}
	v := e2eVersionRegexp.FindStringSubmatch(string(out))
	if len(v) != 4 {
		t.Fatalf("could not parse server version from: %s", out)
	}
	major, _ := strconv.Atoi(v[1])
	if !strings.Contains(string(out), "tabletd") {
		t.Fatalf("--version does not say it is tabletd: %s", out)
	}
	return major
}

// e2eReplicaArgs is the argument list go/test/endtoend/cluster's VttabletProcess.Setup builds
// for a replica (VttabletProcessInstance's defaults: SupportsBackup, file backups under
// $VTDATAROOT/backups, health every 5s, the four services), in its spellings: underscores
// for most flags, --file-backup-storage-root dashed for a v23 tablet (GetFlagVariantForTestsByVersion).
func (d *dropin) e2eReplicaArgs(uid, port, grpcPort int, hostname string) []string {
	tmpDirectory := filepath.Join(d.dir, "tmp")
	return []string{
		"--topo_implementation", "etcd2",
		"--topo_global_server_address", d.etcd.Endpoint(),
		"--topo_global_root", "/vitess/global",
		"--log_queries_to_file", filepath.Join(tmpDirectory, fmt.Sprintf("/vt_%010d_querylog.txt", uid)),
		"--tablet-path", fmt.Sprintf("zone1-%010d", uid),
		"--port", fmt.Sprint(port),
		"--grpc_port", fmt.Sprint(grpcPort),
		"--init_shard", "0",
		"--log_dir", tmpDirectory,
		"--tablet_hostname", hostname,
		"--init_keyspace", "commerce",
		"--init_tablet_type", "replica",
		"--health_check_interval", "5s",
		"--enable_replication_reporter",
		"--backup_storage_implementation", "file",
		"--file-backup-storage-root", filepath.Join(d.vtdataroot, "backups"),
		"--service_map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream,grpc-throttler",
		"--db_charset", "utf8mb4",
		"--bind-address", "127.0.0.1",
		"--grpc_bind_address", "127.0.0.1",
		"--restore_from_backup",
	}
}

// operatorArgs is vitess-operator's vttablet container command line (pkg/operator/vttablet:
// flags.go base flags, datastore.go localDatastoreFlags for a mysqlctld-managed MySQL, in
// FormatArgs's sorted --key=value form) for a pool of a keyspace without a backup location.
// What a pod fixes is set for one machine: the ports (15000/15999 in every pod), the topology
// root, $(POD_IP); the socket flags point at the mysqlctl layout instead of /vt/socket.
func (d *dropin) operatorArgs(uid, port, grpcPort int) []string {
	flags := map[string]string{
		"logtostderr":                         "true",
		"topo_implementation":                 "etcd2",
		"topo_global_server_address":          d.etcd.Endpoint(),
		"topo_global_root":                    "/vitess/global",
		"grpc_max_message_size":               "67108864",
		"service_map":                         "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
		"port":                                fmt.Sprint(port),
		"grpc_port":                           fmt.Sprint(grpcPort),
		"tablet-path":                         fmt.Sprintf("zone1-%d", uid),
		"tablet_hostname":                     "$(POD_IP)",
		"init_keyspace":                       "commerce",
		"init_shard":                          "-",
		"init_tablet_type":                    "replica",
		"health_check_interval":               "5s",
		"queryserver-config-max-result-size":  "100000",
		"queryserver-config-query-timeout":    "900s",
		"queryserver-config-pool-size":        "96",
		"queryserver-config-stream-pool-size": "96",
		"queryserver-config-transaction-cap":  "300",
		"db-charset":                          "utf8mb4",
		"db-app-user":                         "vt_app",
		"db-dba-user":                         "vt_dba",
		"db-repl-user":                        "vt_repl",
		"db-filtered-user":                    "vt_filtered",
		"init-db-name-override":               "vt_commerce",
		"enforce-strict-trans-tables":         "true",
		"enable-replication-reporter":         "true",
		"mysqlctl-socket":                     filepath.Join(d.vtdataroot, "mysqlctl.sock"),
		"mycnf-socket-file":                   filepath.Join(d.vtdataroot, fmt.Sprintf("vt_%010d", uid), "mysql.sock"),
	}
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]string, 0, len(keys))
	for _, k := range keys {
		// The kubelet expands $(POD_IP) in container args from the pod's environment.
		args = append(args, fmt.Sprintf("--%s=%s", k, strings.ReplaceAll(flags[k], "$(POD_IP)", "127.0.0.1")))
	}
	return args
}

// operatorEnv is what vitess-operator puts in the vttablet container's environment
// (env_vars.go, flags.go), for this machine.
func (d *dropin) operatorEnv() []string {
	return []string{"VTROOT=" + d.dir, "VT_MYSQL_ROOT=/usr", "MYSQL_FLAVOR=MariaDB103", "EXTRA_MY_CNF=", "POD_IP=127.0.0.1", "GOMAXPROCS=2"}
}

// servePRS makes the first tablet primary with PlannedReparentShard --new-primary on the fresh
// shard, then checks both serve through vtgate and a write reaches the replica's MySQL.
func (d *dropin) servePRS(t *testing.T, shard string, ms []*mysqld, aliases []string) {
	t.Helper()
	eventually(t, 60*time.Second, "vtctld lists both tablets", func() bool {
		out, err := d.tryCtl("GetTablets", "--keyspace", "commerce")
		return err == nil && strings.Count(out, "commerce "+shard+" replica") == 2
	})
	d.ctl("PlannedReparentShard", "commerce/"+shard, "--new-primary", aliases[0])
	d.waitState(aliases[0], "PRIMARY SERVING", 60*time.Second)
	if _, err := d.vtgateDB.Exec("CREATE TABLE commerce.dropin (id BIGINT PRIMARY KEY, note VARCHAR(32))"); err != nil {
		t.Fatalf("create table through vtgate: %v", err)
	}
	if _, err := d.vtgateDB.Exec("INSERT INTO commerce.dropin (id, note) VALUES (1, 'through vtgate')"); err != nil {
		t.Fatalf("insert through vtgate: %v", err)
	}
	var note string
	if err := d.vtgateDB.QueryRow("SELECT note FROM commerce.dropin WHERE id = 1").Scan(&note); err != nil || note != "through vtgate" {
		t.Fatalf("read back through vtgate: %q, %v", note, err)
	}
	eventually(t, 30*time.Second, "the write reaches the replica's MariaDB", func() bool {
		var n int
		return ms[1].db.QueryRow("SELECT COUNT(*) FROM vt_commerce.dropin").Scan(&n) == nil && n == 1
	})
	d.waitState(aliases[1], "REPLICA SERVING", 60*time.Second)
	var port int
	if err := ms[0].db.QueryRow("SELECT @@port").Scan(&port); err != nil || port != ms[0].port {
		t.Fatalf("primary MariaDB port %d (%v), want mysqlctl's %d", port, err, ms[0].port)
	}
	if rec := d.ctl("GetTablet", aliases[0]); !strings.Contains(rec, fmt.Sprintf(`"mysql_port": %d`, ms[0].port)) {
		t.Fatalf("the tablet record does not carry my.cnf's MySQL port %d:\n%s", ms[0].port, rec)
	}
}

// TestDropInE2EArgs: the e2e cluster's replica command line, unchanged, through PATH.
func TestDropInE2EArgs(t *testing.T) {
	d := newDropin(t)
	if major := versionThroughPath(t); major != 23 {
		t.Fatalf("vttablet --version major %d, want 23", major)
	}
	var ms []*mysqld
	var aliases []string
	for _, uid := range []int{101, 102} {
		m := d.initMySQL(t, uid)
		port, grpcPort := freePort(t), freePort(t)
		tab := d.vttablet(t, fmt.Sprintf("vttablet-%d", uid), d.e2eReplicaArgs(uid, port, grpcPort, "localhost"), "VTTEST=endtoend")
		vars := waitVars(t, tab, port, "SERVING", "NOT_SERVING")
		if vars["TabletType"] != "replica" {
			t.Fatalf("/debug/vars TabletType %v, want replica", vars["TabletType"])
		}
		t.Logf("zone1-%d: accepted, not implemented: %v", uid, notImplemented(t, port))
		ms, aliases = append(ms, m), append(aliases, fmt.Sprintf("zone1-%010d", uid))
	}
	d.servePRS(t, "0", ms, aliases)
	// --log_queries_to_file: the harness's query log holds what vtgate sent the primary (the
	// statement vtgate normalized, its values as bind variables, never copied into the log).
	ql, err := os.ReadFile(filepath.Join(d.dir, "tmp", "vt_0000000101_querylog.txt"))
	if err != nil || !strings.Contains(strings.ToLower(string(ql)), "insert into dropin") || strings.Contains(string(ql), "through vtgate") {
		t.Fatalf("query log of the primary (%v):\n%s\nwant the insert, without its string value", err, ql)
	}
}

// TestDropInOperatorArgs: vitess-operator's vttablet command line and environment, unchanged
// but for the pod-fixed ports and paths.
func TestDropInOperatorArgs(t *testing.T) {
	d := newDropin(t)
	var ms []*mysqld
	var aliases []string
	for _, uid := range []int{201, 202} {
		m := d.initMySQL(t, uid)
		port, grpcPort := freePort(t), freePort(t)
		tab := d.vttablet(t, fmt.Sprintf("vttablet-%d", uid), d.operatorArgs(uid, port, grpcPort), d.operatorEnv()...)
		waitVars(t, tab, port, "SERVING", "NOT_SERVING")
		t.Logf("zone1-%d: accepted, not implemented: %v", uid, notImplemented(t, port))
		// vitess-operator's probes: readiness /healthz, liveness /debug/status.
		for _, p := range []string{"/healthz", "/debug/status"} {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, p))
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("probe %s: %v %v", p, err, resp)
			}
			resp.Body.Close()
		}
		ms, aliases = append(ms, m), append(aliases, fmt.Sprintf("zone1-%010d", uid))
	}
	d.servePRS(t, "-", ms, aliases)
}
