package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/test/etcdtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// buildTabletd builds this command into a temporary directory: the secrets test needs the
// real process (its own os.Args, its own stderr and log files).
func buildTabletd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tabletd")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// staticCreds sends Vitess's static auth metadata with every call.
type staticCreds struct{ user, password string }

func (s staticCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"username": s.user, "password": s.password}, nil
}
func (staticCreds) RequireTransportSecurity() bool { return false }

// sqlString quotes s for MariaDB.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

// TestNoPasswordExposed starts the real tabletd with a password given every supported way
// — flag (both spellings), environment, YAML config file, credentials file (then rotated
// through SIGHUP), gRPC static auth file — and greps every HTTP page it links or serves,
// its logs (stderr and --log_dir) and its gRPC errors for every password.
func TestNoPasswordExposed(t *testing.T) {
	bin := buildTabletd(t)
	e := etcdtest.Start(t)
	cell, _ := proto.Marshal(&topodatapb.CellInfo{ServerAddress: e.Endpoint(), Root: "/vitess/zone1"})
	if _, err := e.Client(t).Put(context.Background(), "/vitess/global/cells/zone1/CellInfo", string(cell)); err != nil {
		t.Fatal(err)
	}
	db := mariadbtest.Start(t, mariadbtest.Options{})
	pw := map[string]string{ // each role's password, and how it is given
		"app":      "File-App-Pw-1111",        // credentials file; rotated below
		"app2":     "Rotated-App-Pw-2222",     // the rotated one
		"dba":      `Env"Dba<Pw>'3333`,        // $TABLETD_DB_DBA_PASSWORD
		"allprivs": "Yaml-Allprivs-Pw-4444",   // --config
		"filtered": "Flag-Filtered-Pw-5555",   // --db-filtered-password x
		"repl":     `Flag-Repl-"Pw"-6666`,     // --db_repl_password=x
		"replflag": "Overridden-Repl-Pw-7777", // a flag the credentials file overrides
		"grpc":     "Grpc-Static-Pw-8888",     // --grpc-auth-static-password-file
	}
	grants := map[string]string{"app": "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, PROCESS", "dba": "ALL PRIVILEGES",
		"allprivs": "ALL PRIVILEGES", "filtered": "SELECT, INSERT, UPDATE, DELETE, REPLICATION SLAVE, REPLICATION CLIENT", "repl": "REPLICATION SLAVE"}
	stmts := []string{"CREATE DATABASE vt_commerce"}
	for role, g := range grants {
		stmts = append(stmts, fmt.Sprintf("CREATE USER 'sec_%s'@'%%' IDENTIFIED BY %s", role, sqlString(pw[role])),
			fmt.Sprintf("GRANT %s ON *.* TO 'sec_%s'@'%%'", g, role))
	}
	db.Exec(t, stmts...)

	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "creds.json")
	writeCreds := func(app string) {
		t.Helper()
		j := fmt.Sprintf(`{"sec_app": [%q], "sec_repl": [%q]}`, app, pw["repl"])
		if err := os.WriteFile(creds, []byte(j), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCreds(pw["app"])
	yamlFile := filepath.Join(dir, "tabletd.yaml")
	if err := os.WriteFile(yamlFile, []byte(fmt.Sprintf("db-allprivs-password: %q\n", pw["allprivs"])), 0o600); err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(dir, "grpc-auth.json")
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf(`[{"Username": "vtgate", "Password": %q}]`, pw["grpc"])), 0o600); err != nil {
		t.Fatal(err)
	}
	httpPort, grpcPort := freePort(t), freePort(t)
	args := []string{"--topo-global-server-address", e.Endpoint(), "--tablet-path", "zone1-100",
		"--tablet-hostname", "127.0.0.1", "--init-keyspace", "commerce", "--init-shard", "0", "--init-tablet-type", "PRIMARY",
		"--db-host", "127.0.0.1", "--db-port", fmt.Sprint(db.Port), "--port", fmt.Sprint(httpPort), "--grpc-port", fmt.Sprint(grpcPort),
		"--bind-address", "127.0.0.1", "--grpc-bind-address", "127.0.0.1", "--health-check-interval", "1s",
		"--db-app-user", "sec_app", "--db-dba-user", "sec_dba", "--db-allprivs-user", "sec_allprivs",
		"--db-filtered-user", "sec_filtered", "--db-repl-user", "sec_repl",
		"--db-credentials-file", creds, "--config", yamlFile,
		"--db-filtered-password", pw["filtered"], "--db_repl_password=" + pw["replflag"],
		"--grpc-auth-mode", "static", "--grpc-auth-static-password-file", authFile,
		"--pprof-http", "--log_dir", logDir, "--log-level", "debug"}
	var stderr lockedBuffer
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TABLETD_DB_DBA_PASSWORD="+pw["dba"])
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("tabletd stderr:\n%s", tail(stderr.String(), 6000))
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitUntil(t, 60*time.Second, "tabletd serves (/debug/health 200)", exited, func() bool {
		resp, err := http.Get(base + "/debug/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// gRPC: static auth; errors carry no password, not even one the caller put in the SQL.
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(staticCreds{"vtgate", pw["grpc"]}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	qs := queryservicepb.NewQueryClient(conn)
	target := &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}
	execute := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := qs.Execute(ctx, &querypb.ExecuteRequest{Target: target, Query: &querypb.BoundQuery{Sql: sql}})
		return err
	}
	if err := execute("select 1"); err != nil {
		t.Fatalf("Execute with static auth: %v", err)
	}
	var grpcErrors []string
	err = execute("select * from `" + pw["filtered"] + "`")
	// vtgate reads the errno back from vttablet's "(errno N)" in the text.
	if rpcerr.Code(err) != vtrpcpb.Code_NOT_FOUND || !strings.Contains(err.Error(), "(errno 1146)") {
		t.Fatalf("a missing table: %v, want NOT_FOUND with errno 1146", err)
	}
	grpcErrors = append(grpcErrors, err.Error())
	badConn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(staticCreds{"vtgate", pw["grpc"] + "x"}))
	if err != nil {
		t.Fatal(err)
	}
	defer badConn.Close()
	_, err = queryservicepb.NewQueryClient(badConn).Execute(context.Background(), &querypb.ExecuteRequest{Target: target, Query: &querypb.BoundQuery{Sql: "select 1"}})
	if rpcerr.Code(err) != vtrpcpb.Code_PERMISSION_DENIED {
		t.Fatalf("a wrong static password: %v, want PERMISSION_DENIED", err)
	}
	grpcErrors = append(grpcErrors, err.Error())

	// Rotation: the app password changes in MySQL and in the file; after SIGHUP new
	// connections log in with the new one (the old connections are killed to force them).
	db.Exec(t, "ALTER USER 'sec_app'@'%' IDENTIFIED BY "+sqlString(pw["app2"]))
	writeCreds(pw["app2"])
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the reload is logged", exited, func() bool {
		return strings.Contains(stderr.String(), "credentials and certificates reloaded")
	})
	root := db.RootDB(t)
	rows, err := root.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'sec_app'")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		_, _ = root.Exec(fmt.Sprintf("KILL %d", id))
	}
	waitUntil(t, 20*time.Second, "a query logs in with the rotated password", exited, func() bool {
		return execute("select 2") == nil
	})

	// Every page: the fixed list and whatever /debug/status links to.
	pages := map[string]string{}
	fetch := func(path string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body) // a stream ends at the timeout: what came is kept
		return string(b)
	}
	for _, p := range []string{"/debug/status", "/debug/vars", "/metrics", "/debug/health", "/healthz",
		"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", "/livequeryz", "/livequeryz/?format=json",
		"/debug/acl", "/debug/query_rules", "/debug/query_plans", "/debug/query_stats", "/debug/consolidations",
		"/debug/vreplication", "/debug/status_details", "/queryz", "/querylogz?timeout=1", "/txlogz?timeout=1",
		"/debug/querylog", "/debug/txlog", "/debug/tablet_plans"} {
		pages[p] = fetch(p)
	}
	for _, m := range regexp.MustCompile(`href="(/[^"#]*)"`).FindAllStringSubmatch(pages["/debug/status"], -1) {
		if _, done := pages[m[1]]; !done {
			pages[m[1]] = fetch(m[1])
		}
	}
	for p, want := range map[string]string{"/debug/status": "zone1-0000000100", "/metrics": "tabletd_", "/debug/vars": `"REDACTED"`,
		"/debug/pprof/goroutine?debug=2": "goroutine ", "/debug/query_stats": "select"} {
		if !strings.Contains(pages[p], want) {
			t.Errorf("%s lacks %q: the page was not read (%d bytes)", p, want, len(pages[p]))
		}
	}
	if !strings.Contains(pages["/debug/pprof/cmdline"], "--db-filtered-password\x00REDACTED") ||
		!strings.Contains(pages["/debug/pprof/cmdline"], "--db_repl_password=REDACTED") {
		t.Errorf("/debug/pprof/cmdline does not show the password flags redacted: %q", pages["/debug/pprof/cmdline"])
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tabletd did not exit within 30s of SIGTERM")
	}

	outputs := map[string]string{"stderr": stderr.String()}
	for p, body := range pages {
		outputs["GET "+p] = body
	}
	for i, e := range grpcErrors {
		outputs[fmt.Sprintf("gRPC error %d", i)] = e
	}
	logFiles, _ := filepath.Glob(filepath.Join(logDir, "*"))
	for _, f := range logFiles {
		b, _ := os.ReadFile(f)
		outputs[f] = string(b)
	}
	if len(logFiles) == 0 || len(outputs["stderr"]) == 0 {
		t.Fatalf("nothing logged (log files %v)", logFiles)
	}
	names := make([]string, 0, len(outputs))
	for n := range outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for role, secret := range pw {
			for _, form := range dbconfig.MaskForms([]string{secret}) {
				if strings.Contains(outputs[n], string(form)) {
					t.Errorf("%s shows the %s password (as %q)", n, role, form)
				}
			}
		}
	}
	t.Logf("checked %d outputs (%d HTTP pages, %d log files, %d gRPC errors) for %d passwords", len(outputs), len(pages), len(logFiles), len(grpcErrors), len(pw))
	if !strings.Contains(outputs["stderr"], "--db-filtered-password") || !strings.Contains(outputs["stderr"], "--db-repl-password") ||
		!strings.Contains(outputs["stderr"], "readable by every user of this machine") {
		t.Error("no warning at start naming the password flags given on the command line")
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, exited chan error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("tabletd exited (%v) before: %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
