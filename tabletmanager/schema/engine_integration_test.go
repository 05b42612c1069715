package schema

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// These tests run the engine against real mariadbd processes.

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// privateTmp gives a server its own tmpdir: a starting mariadbd deletes every #sql* file in
// its tmpdir, so with a shared /tmp it destroys the internal temporary tables (information_schema
// queries use them) of servers already running, whose statements then fail with errno 6 or
// lose their connection.
func privateTmp(t *testing.T) mariadbtest.Options {
	return mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}}
}

// engineFor returns an engine for database dbName on s, as the test users; mod may adjust
// the configuration. It is closed when t ends.
func engineFor(t *testing.T, s *mariadbtest.Server, dbName string, mod func(*Config), d Deps) *Engine {
	t.Helper()
	conn := func(user, db string) mysqlconn.Config {
		return mysqlconn.Config{Address: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), User: user,
			Password: mariadbtest.Password, DBName: db}
	}
	cfg := DefaultConfig()
	cfg.DBName = dbName
	cfg.Dba, cfg.AllPrivs, cfg.App = conn(mariadbtest.UserDBA, ""), conn(mariadbtest.UserAllPrivs, ""), conn(mariadbtest.UserApp, dbName)
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// schemaDDL is the same schema for every database; auto-increment counters and data differ.
var schemaDDL = []string{
	"CREATE TABLE t_auto (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL, KEY name_idx (name))",
	"CREATE TABLE t_pk2 (a int NOT NULL, b varchar(10) NOT NULL, c text, d decimal(10,2) unsigned, PRIMARY KEY (b, a))",
	"CREATE TABLE t_nopk (x int, j json)",
	"CREATE VIEW v_join AS SELECT t_auto.id, t_pk2.c FROM t_auto JOIN t_pk2 ON t_auto.id = t_pk2.a",
	"CREATE SEQUENCE s1",
	"CREATE TABLE _vt_hld_6ace8bcef73211ea87e9f875a4d24e90_20200915120410_ (id int)",
}

func createSchema(t *testing.T, s *mariadbtest.Server, db string, rows int) {
	t.Helper()
	s.Exec(t, "CREATE DATABASE "+db, "USE "+db)
	s.Exec(t, append([]string{"USE " + db}, schemaDDL...)...)
	for i := 0; i < rows; i++ {
		s.Exec(t, "INSERT INTO "+db+".t_auto (name) VALUES ('n"+strconv.Itoa(i)+"')")
	}
}

// comparable drops what legitimately differs between tablets with the same schema.
func comparable(sd *tabletmanagerdatapb.SchemaDefinition) *tabletmanagerdatapb.SchemaDefinition {
	sd = proto.Clone(sd).(*tabletmanagerdatapb.SchemaDefinition)
	for _, td := range sd.TableDefinitions {
		td.DataLength, td.RowCount = 0, 0
		for _, f := range td.Fields {
			f.Database = ""
		}
	}
	return sd
}

// TestGetSchemaNormalisation: the definitions match a golden file, and two servers whose
// databases differ in name, data and auto-increment counters give byte-identical definitions
// (what CopySchemaShard and ApplySchema's checks compare).
func TestGetSchemaNormalisation(t *testing.T) {
	t.Parallel()
	s1 := mariadbtest.Start(t, privateTmp(t))
	s2 := mariadbtest.Start(t, privateTmp(t))
	createSchema(t, s1, "vt_a", 3)
	createSchema(t, s2, "vt_other", 7)
	ctx := ctxFor(t)
	full := &tabletmanagerdatapb.GetSchemaRequest{IncludeViews: true}
	a, err := engineFor(t, s1, "vt_a", nil, Deps{}).GetSchema(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	b, err := engineFor(t, s2, "vt_other", nil, Deps{}).GetSchema(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	if diffs := diffSchemas("a", a, "b", b); len(diffs) > 0 {
		t.Fatalf("same schema, different definitions: %q", diffs)
	}
	if !proto.Equal(comparable(a), comparable(b)) {
		t.Fatalf("same schema, different definitions:\n%v\n%v", comparable(a), comparable(b))
	}
	if a.TableDefinitions[0].RowCount == 0 && a.TableDefinitions[0].DataLength == 0 {
		t.Errorf("no data length nor row count from information_schema: %v", a.TableDefinitions[0])
	}
	golden(t, "testdata/getschema.json", comparable(a))
}

func golden(t *testing.T, path string, m proto.Message) {
	t.Helper()
	got, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	wantMsg := proto.Clone(m)
	proto.Reset(wantMsg)
	if err := protojson.Unmarshal(want, wantMsg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !proto.Equal(m, wantMsg) {
		t.Fatalf("%s differs (run with -update after checking), got:\n%s", path, got)
	}
}

// TestGetSchemaRequests: table selection, views, table_schema_only, and a missing database.
func TestGetSchemaRequests(t *testing.T) {
	t.Parallel()
	s := mariadbtest.Start(t, privateTmp(t))
	createSchema(t, s, "vt_a", 1)
	e := engineFor(t, s, "vt_a", nil, Deps{})
	ctx := ctxFor(t)
	names := func(req *tabletmanagerdatapb.GetSchemaRequest) []string {
		t.Helper()
		sd, err := e.GetSchema(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, td := range sd.TableDefinitions {
			out = append(out, td.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		req  *tabletmanagerdatapb.GetSchemaRequest
		want string
	}{
		{"base tables only", &tabletmanagerdatapb.GetSchemaRequest{},
			"[_vt_hld_6ace8bcef73211ea87e9f875a4d24e90_20200915120410_ t_auto t_nopk t_pk2]"},
		{"views and sequences too", &tabletmanagerdatapb.GetSchemaRequest{IncludeViews: true},
			"[_vt_hld_6ace8bcef73211ea87e9f875a4d24e90_20200915120410_ s1 t_auto t_nopk t_pk2 v_join]"},
		{"names and regexps", &tabletmanagerdatapb.GetSchemaRequest{Tables: []string{"T_NOPK", "/^v_/"}, IncludeViews: true}, "[t_nopk v_join]"},
		{"exclusions", &tabletmanagerdatapb.GetSchemaRequest{ExcludeTables: []string{"/^_vt/", "t_pk2"}}, "[t_auto t_nopk]"},
	} {
		if got := names(tc.req); fmtList(got) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	sd, err := e.GetSchema(ctx, &tabletmanagerdatapb.GetSchemaRequest{Tables: []string{"t_pk2"}, TableSchemaOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if td := sd.TableDefinitions[0]; td.Schema == "" || td.Fields != nil || td.Columns != nil || td.PrimaryKeyColumns != nil {
		t.Errorf("table_schema_only: %v", td)
	}
	if _, err := e.GetSchema(ctx, &tabletmanagerdatapb.GetSchemaRequest{Tables: []string{"/(/"}}); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT)) {
		t.Errorf("bad regexp: %v, want INVALID_ARGUMENT", err)
	}
	_, err = engineFor(t, s, "vt_missing", nil, Deps{}).GetSchema(ctx, &tabletmanagerdatapb.GetSchemaRequest{})
	if n, _, _ := rpcerr.Errno(err); n != 1049 {
		t.Errorf("missing database: %v, want errno 1049", err)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestHooks: reload_schema calls Reload after a successful fetch only; ReloadSchema waits for
// a valid position through the hook and refuses a bad one without calling it.
func TestHooks(t *testing.T) {
	t.Parallel()
	s := mariadbtest.Start(t, privateTmp(t))
	s.Exec(t, "CREATE DATABASE vt_a")
	var reloads atomic.Int32
	var waited atomic.Value
	errReload := errors.New("reload failed")
	e := engineFor(t, s, "vt_a", nil, Deps{
		Reload:          func(context.Context) error { reloads.Add(1); return errReload },
		WaitForPosition: func(_ context.Context, pos string) error { waited.Store(pos); return nil },
	})
	ctx := ctxFor(t)
	if _, err := e.ExecuteFetchAsDba(ctx, &tabletmanagerdatapb.ExecuteFetchAsDbaRequest{Query: []byte("CREATE TABLE vt_a.t (id int)"), ReloadSchema: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ExecuteFetchAsDba(ctx, &tabletmanagerdatapb.ExecuteFetchAsDbaRequest{Query: []byte("CREATE TABLE vt_a.t (id int)"), ReloadSchema: true}); err == nil {
		t.Fatal("creating the table twice succeeded")
	}
	if n := reloads.Load(); n != 1 {
		t.Errorf("%d reloads, want 1 (after the successful fetch only)", n)
	}
	// A fetch only logs a failed reload; ReloadSchema returns it, after waiting.
	if err := e.ReloadSchema(ctx, "MariaDB/0-1-5"); !errors.Is(err, errReload) || waited.Load() != "MariaDB/0-1-5" {
		t.Errorf("ReloadSchema with a position: %v, waited for %v", err, waited.Load())
	}
	if n := reloads.Load(); n != 2 {
		t.Errorf("%d reloads, want 2", n)
	}
	if err := e.ReloadSchema(ctx, "nonsense"); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT)) {
		t.Errorf("bad position: %v, want INVALID_ARGUMENT", err)
	}
	bare := engineFor(t, s, "vt_a", nil, Deps{})
	if err := bare.ReloadSchema(ctx, "MariaDB/0-1-5"); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_UNIMPLEMENTED)) {
		t.Errorf("no wait hook: %v, want UNIMPLEMENTED", err)
	}
	if err := bare.ReloadSchema(ctx, ""); err != nil {
		t.Errorf("no hooks, no position: %v", err)
	}
	if _, err := bare.ExecuteQuery(ctx, &tabletmanagerdatapb.ExecuteQueryRequest{Query: []byte("select 1")}); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_UNIMPLEMENTED)) {
		t.Errorf("no query service: %v, want UNIMPLEMENTED", err)
	}
}

// insertBlocked tries an insert with a 1s lock wait: errno 1205 means a lock holds it back.
func insertBlocked(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	ctx := ctxFor(t)
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET SESSION lock_wait_timeout = 1"); err != nil {
		t.Fatal(err)
	}
	_, err = c.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1)")
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return false
	case errors.As(err, &me) && me.Number == 1205:
		return true
	}
	t.Fatalf("insert: %v", err)
	return false
}

// TestLockTables: the read lock holds writes back until UnlockTables, the timeout or Close;
// without the RELOAD privilege the engine falls back to LOCK TABLES.
func TestLockTables(t *testing.T) {
	t.Parallel()
	s := mariadbtest.Start(t, privateTmp(t))
	s.Exec(t, "CREATE DATABASE vt_a", "CREATE TABLE vt_a.t (id int)",
		"CREATE USER locker@'%' IDENTIFIED BY '"+mariadbtest.Password+"'", "GRANT SELECT, LOCK TABLES ON vt_a.* TO locker@'%'")
	root := s.RootDB(t)
	ctx := ctxFor(t)
	e := engineFor(t, s, "vt_a", nil, Deps{})
	if err := e.UnlockTables(ctx); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_FAILED_PRECONDITION)) {
		t.Fatalf("unlock without lock: %v, want FAILED_PRECONDITION", err)
	}
	if err := e.LockTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.LockTables(ctx); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_FAILED_PRECONDITION)) {
		t.Fatalf("second lock: %v, want FAILED_PRECONDITION", err)
	}
	if !insertBlocked(t, root, "vt_a.t") {
		t.Fatal("insert went through the global read lock")
	}
	if err := e.UnlockTables(ctx); err != nil {
		t.Fatal(err)
	}
	if insertBlocked(t, root, "vt_a.t") {
		t.Fatal("insert blocked after UnlockTables")
	}

	t.Run("timeout releases", func(t *testing.T) {
		short := engineFor(t, s, "vt_a", func(c *Config) { c.LockTablesTimeout = 200 * time.Millisecond }, Deps{})
		if err := short.LockTables(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for insertBlocked(t, root, "vt_a.t") {
			if time.Now().After(deadline) {
				t.Fatal("the lock outlived its timeout")
			}
		}
		if err := short.UnlockTables(ctx); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_FAILED_PRECONDITION)) {
			t.Fatalf("unlock after the timeout released: %v, want FAILED_PRECONDITION", err)
		}
	})
	t.Run("close releases", func(t *testing.T) {
		closing := engineFor(t, s, "vt_a", nil, Deps{})
		if err := closing.LockTables(ctx); err != nil {
			t.Fatal(err)
		}
		closing.Close()
		if insertBlocked(t, root, "vt_a.t") {
			t.Fatal("insert blocked after Close")
		}
	})
	t.Run("LOCK TABLES without RELOAD", func(t *testing.T) {
		lk := engineFor(t, s, "vt_a", func(c *Config) { c.Dba.User = "locker" }, Deps{})
		if err := lk.LockTables(ctx); err != nil {
			t.Fatal(err)
		}
		if !insertBlocked(t, root, "vt_a.t") {
			t.Fatal("insert went through LOCK TABLES … READ")
		}
		if err := lk.UnlockTables(ctx); err != nil {
			t.Fatal(err)
		}
		if insertBlocked(t, root, "vt_a.t") {
			t.Fatal("insert blocked after UnlockTables")
		}
	})
}
