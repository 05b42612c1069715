package integration

import (
	"context"
	"database/sql"
	"errors"
	"hash/crc64"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/querypb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/tabletmanager/schema"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// The TabletManager schema and fetch RPCs, called over gRPC on a real tabletd PRIMARY with a
// real MariaDB, as vtctld calls them.

// errnoRE is how vtctld recovers a MySQL error number from a TabletManager error.
var errnoRE = regexp.MustCompile(`\(errno ([0-9]+)\) \(sqlstate ([0-9a-zA-Z]{5})\)`)

// errnoOf returns the MySQL errno in err's text as vtctld reads it (0: none).
func errnoOf(err error) int {
	m := errnoRE.FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func tmCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// privateTmp gives a server its own tmpdir: a starting mariadbd deletes every #sql* file in
// its tmpdir, so with a shared /tmp it destroys the internal temporary tables (information_schema
// queries use them) of servers already running, whose statements then fail with errno 6 or
// lose their connection.
func privateTmp(t *testing.T) mariadbtest.Options {
	return mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}}
}

// newSchemaQT is newQT on a server with its own tmpdir (these tests read information_schema
// all the time).
func newSchemaQT(t *testing.T, tweak func(*tablet.Config)) *qt {
	t.Helper()
	e := newEnv(t)
	db := mariadbtest.Start(t, privateTmp(t))
	db.Exec(t, "CREATE DATABASE vt_commerce")
	cfg := tabletConfig(e, db, tabletOpts{uid: 200, initType: topodatapb.TabletType_PRIMARY})
	if tweak != nil {
		tweak(&cfg)
	}
	r := startTablet(t, cfg)
	r.health(t).until(10*time.Second, "serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	return &qt{running: r, e: e, db: db, caller: &querypb.VTGateCallerID{Username: "alice"},
		target: &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}}
}

// dba runs ExecuteFetchAsDba in vt_commerce, as vtctld's client does (db_name always set).
func (q *qt) dba(t *testing.T, sql string, maxRows uint64) (*querypb.QueryResult, error) {
	t.Helper()
	r, err := q.tm.ExecuteFetchAsDba(tmCtx(t), &tmpb.ExecuteFetchAsDbaRequest{Query: []byte(sql), DbName: "vt_commerce", MaxRows: maxRows})
	return r.GetResult(), err
}

func (q *qt) mustDBA(t *testing.T, sql string) *querypb.QueryResult {
	t.Helper()
	r, err := q.dba(t, sql, 10000)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return r
}

// scalar reads one value as root.
func scalar(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	var v sql.NullString
	if err := db.QueryRow(query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v.String
}

func tableExists(t *testing.T, db *sql.DB, schemaName, table string) bool {
	t.Helper()
	return scalar(t, db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '"+schemaName+"' AND table_name = '"+table+"'") == "1"
}

// binlogged reports whether an event in the server's binary logs mentions text: a row event's
// table map names "(db.table)", a DDL is logged as its statement.
func binlogged(t *testing.T, root *sql.DB, text string) bool {
	t.Helper()
	var logs []string
	rows, err := root.Query("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var size any
		if err := rows.Scan(&name, &size); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		ev, err := root.Query("SHOW BINLOG EVENTS IN '" + l + "'")
		if err != nil {
			t.Fatal(err)
		}
		for ev.Next() {
			var name, typ, info string
			var pos, server, end any
			if err := ev.Scan(&name, &pos, &typ, &server, &end, &info); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(info, text) {
				ev.Close()
				return true
			}
		}
		if err := ev.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return false
}

func wantCode(t *testing.T, what string, err error, c vtrpcpb.Code, errno int) {
	t.Helper()
	if code(err) != c || errnoOf(err) != errno {
		t.Errorf("%s: %v; want %v with errno %d", what, err, c, errno)
	}
}

// TestTMExecuteFetchAsDba: one statement as the dba user, with vttablet's semantics for
// everything vtctld relies on.
func TestTMExecuteFetchAsDba(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	root := q.db.RootDB(t)
	q.mustDBA(t, "create table t (id bigint primary key, name varchar(64))")

	// InitShardPrimary's CREATE DATABASE: db_name names the database that does not exist yet.
	if _, err := q.tm.ExecuteFetchAsDba(tmCtx(t), &tmpb.ExecuteFetchAsDbaRequest{
		Query: []byte("CREATE DATABASE IF NOT EXISTS `vt_newks`"), DbName: "vt_newks", MaxRows: 1}); err != nil {
		t.Fatalf("CREATE DATABASE in a missing db_name: %v", err)
	}
	if scalar(t, root, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'vt_newks'") != "1" {
		t.Fatal("vt_newks was not created")
	}

	// More than one statement: refused with vttablet's exact text, nothing run.
	_, err := q.dba(t, "create table a (id int); create table b (id int)", 10)
	if code(err) != vtrpcpb.Code_INVALID_ARGUMENT || status.Convert(err).Message() != schema.MultiStatementRefusal {
		t.Fatalf("two statements: %v; want INVALID_ARGUMENT %q", err, schema.MultiStatementRefusal)
	}
	// The same with MariaDB syntax the parser does not know: the server refuses the text.
	_, err = q.dba(t, "create table u1 (id uuid); create table u2 (id uuid)", 10)
	wantCode(t, "two unparseable statements", err, vtrpcpb.Code_INVALID_ARGUMENT, 1064)
	for _, tb := range []string{"a", "b", "u1", "u2"} {
		if tableExists(t, root, "vt_commerce", tb) {
			t.Errorf("refused multi-statement text created table %s", tb)
		}
	}
	// One statement the parser does not know runs.
	q.mustDBA(t, "create table u1 (id uuid primary key, addr inet6)")

	// Results: affected rows, info, full field metadata, rows.
	ins := q.mustDBA(t, "insert into t values (1, 'one'), (2, 'two'), (3, 'three')")
	upd := q.mustDBA(t, "update t set name = upper(name) where id < 3")
	if ins.RowsAffected != 3 || upd.RowsAffected != 2 || upd.Info == "" {
		t.Errorf("insert affected %d, update affected %d info %q", ins.RowsAffected, upd.RowsAffected, upd.Info)
	}
	sel := q.mustDBA(t, "select id, name from t order by id")
	if got := values(sel); len(got) != 3 || got[0][1] != "ONE" || got[2][1] != "three" {
		t.Errorf("rows %q", got)
	}
	if f := sel.Fields[0]; f.Name != "id" || f.Type != querypb.Type_INT64 || f.Database != "vt_commerce" || f.OrgTable != "t" ||
		f.Flags&uint32(querypb.MySqlFlag_PRI_KEY_FLAG) == 0 {
		t.Errorf("field metadata %v", f)
	}

	// Row limits: more than max_rows is ABORTED; max_rows 0 allows no row but any DDL.
	_, err = q.dba(t, "select id from t", 2)
	wantCode(t, "3 rows, max_rows 2", err, vtrpcpb.Code_ABORTED, 0)
	_, err = q.dba(t, "select id from t", 0)
	wantCode(t, "3 rows, max_rows 0", err, vtrpcpb.Code_ABORTED, 0)
	if _, err := q.dba(t, "select id from t", 3); err != nil {
		t.Errorf("3 rows, max_rows 3: %v", err)
	}
	if _, err := q.dba(t, "create table z (id int)", 0); err != nil {
		t.Errorf("DDL with max_rows 0: %v", err)
	}

	// MySQL errors keep errno and sqlstate where vtctld looks for them.
	_, err = q.tm.ExecuteFetchAsDba(tmCtx(t), &tmpb.ExecuteFetchAsDbaRequest{Query: []byte("select * from t"), MaxRows: 10})
	wantCode(t, "no db_name", err, vtrpcpb.Code_FAILED_PRECONDITION, 1046)
	_, err = q.dba(t, "select * from nosuch", 10)
	wantCode(t, "missing table", err, vtrpcpb.Code_NOT_FOUND, 1146)
	_, err = q.dba(t, "drop table nosuch", 10)
	wantCode(t, "drop missing table", err, vtrpcpb.Code_INVALID_ARGUMENT, 1051)
	_, err = q.dba(t, "  ;  ", 10)
	wantCode(t, "no statement", err, vtrpcpb.Code_INVALID_ARGUMENT, 0)

	t.Run("disable_binlogs", func(t *testing.T) {
		q.mustDBA(t, "create table nobinlog (id int)")
		q.mustDBA(t, "create table withbinlog (id int)")
		if _, err := q.tm.ExecuteFetchAsDba(tmCtx(t), &tmpb.ExecuteFetchAsDbaRequest{Query: []byte("insert into nobinlog values (10)"),
			DbName: "vt_commerce", MaxRows: 1, DisableBinlogs: true}); err != nil {
			t.Fatal(err)
		}
		if scalar(t, root, "SELECT COUNT(*) FROM vt_commerce.nobinlog") != "1" {
			t.Error("the row was not inserted")
		}
		q.mustDBA(t, "insert into withbinlog values (11)")
		if binlogged(t, root, "(vt_commerce.nobinlog)") || !binlogged(t, root, "(vt_commerce.withbinlog)") {
			t.Errorf("rows of nobinlog in the binlog: %v (want false), of withbinlog: %v (want true)",
				binlogged(t, root, "(vt_commerce.nobinlog)"), binlogged(t, root, "(vt_commerce.withbinlog)"))
		}
	})

	t.Run("disable_foreign_key_checks", func(t *testing.T) {
		q.mustDBA(t, "create table parent (id int primary key)")
		q.mustDBA(t, "create table child (id int primary key, p int, foreign key (p) references parent (id))")
		_, err := q.dba(t, "insert into child values (1, 42)", 1)
		wantCode(t, "orphan with checks", err, vtrpcpb.Code_FAILED_PRECONDITION, 1452)
		if _, err := q.tm.ExecuteFetchAsDba(tmCtx(t), &tmpb.ExecuteFetchAsDbaRequest{Query: []byte("insert into child values (1, 42)"),
			DbName: "vt_commerce", MaxRows: 1, DisableForeignKeyChecks: true}); err != nil {
			t.Fatalf("orphan without checks: %v", err)
		}
	})

	t.Run("allowZeroInDate directive", func(t *testing.T) {
		if _, err := root.Exec("SET GLOBAL sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE'"); err != nil {
			t.Fatal(err)
		}
		defer root.Exec("SET GLOBAL sql_mode = DEFAULT") //nolint:errcheck
		plain := values(q.mustDBA(t, "select @@session.sql_mode"))[0][0]
		allowed := values(q.mustDBA(t, "select /*vt+ allowZeroInDate=true */ @@session.sql_mode"))[0][0]
		if plain != "STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE" || allowed != "STRICT_TRANS_TABLES" {
			t.Errorf("sql_mode %q without the directive, %q with it", plain, allowed)
		}
	})
}

// TestTMExecuteMultiFetchAsDba: one result per statement; a failing statement in the middle
// is named, what ran before it stays, what follows does not run.
func TestTMExecuteMultiFetchAsDba(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	root := q.db.RootDB(t)
	multi := func(sql string, maxRows uint64) ([]*querypb.QueryResult, error) {
		r, err := q.tm.ExecuteMultiFetchAsDba(tmCtx(t), &tmpb.ExecuteMultiFetchAsDbaRequest{Sql: []byte(sql), DbName: "vt_commerce", MaxRows: maxRows})
		return r.GetResults(), err
	}
	res, err := multi("create table m (id int primary key); insert into m values (1), (2);\nselect id from m order by id", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[1].RowsAffected != 2 || len(res[2].Rows) != 2 || res[2].Fields[0].Name != "id" {
		t.Fatalf("results %v", res)
	}

	_, err = multi("insert into m values (3); insert into nosuch values (1); insert into m values (4)", 10)
	want := "ExecuteMultiFetchAsDba: statement 2 of 3 failed (statement 1 ran and is not undone): " +
		"Table 'vt_commerce.nosuch' doesn't exist (errno 1146) (sqlstate 42S02) during query: insert into nosuch values (1)"
	if code(err) != vtrpcpb.Code_NOT_FOUND || errnoOf(err) != 1146 || status.Convert(err).Message() != want {
		t.Fatalf("failing middle statement: %v\nwant NOT_FOUND %q", err, want)
	}
	if got := scalar(t, root, "SELECT GROUP_CONCAT(id ORDER BY id) FROM vt_commerce.m"); got != "1,2,3" {
		t.Fatalf("after the failure m holds %s; want 1,2,3 (statement 1 applied, statement 3 not run)", got)
	}

	_, err = multi("select 1; select id from m", 2)
	wantCode(t, "second result over max_rows", err, vtrpcpb.Code_ABORTED, 0)

	// Syntax the parser does not know: one statement runs, several are refused whole.
	if _, err := multi("create table mu (id uuid)", 10); err != nil {
		t.Fatalf("one unparseable statement: %v", err)
	}
	_, err = multi("create table mu2 (id uuid); create table mu3 (id uuid)", 10)
	wantCode(t, "unparseable statements", err, vtrpcpb.Code_INVALID_ARGUMENT, 1064)
	if tableExists(t, root, "vt_commerce", "mu2") {
		t.Error("a refused text created mu2")
	}
}

// TestTMApplySchema: vttablet's before/after checks, session settings and failure reports.
func TestTMApplySchema(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	root := q.db.RootDB(t)
	getSchema := func() *tmpb.SchemaDefinition {
		t.Helper()
		r, err := q.tm.GetSchema(tmCtx(t), &tmpb.GetSchemaRequest{IncludeViews: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.SchemaDefinition
	}
	apply := func(req *tmpb.ApplySchemaRequest) (*tmpb.ApplySchemaResponse, error) {
		return q.tm.ApplySchema(tmCtx(t), req)
	}
	empty := getSchema()
	r, err := apply(&tmpb.ApplySchemaRequest{Sql: "create table t1 (id int primary key)", BeforeSchema: empty})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.BeforeSchema.TableDefinitions) != len(empty.TableDefinitions) || !hasTable(r.AfterSchema, "t1") {
		t.Fatalf("before %v, after %v", r.BeforeSchema, r.AfterSchema)
	}
	withT1 := r.AfterSchema

	// A stale before_schema stops the change before it runs...
	_, err = apply(&tmpb.ApplySchemaRequest{Sql: "create table t2 (id int)", BeforeSchema: empty})
	wantCode(t, "stale before_schema", err, vtrpcpb.Code_FAILED_PRECONDITION, 0)
	if tableExists(t, root, "vt_commerce", "t2") {
		t.Fatal("ApplySchema ran despite the before_schema mismatch")
	}
	// ... unless the after_schema is already in place (nothing runs: t1 exists, this would fail).
	r, err = apply(&tmpb.ApplySchemaRequest{Sql: "create table t1 (id int primary key)", BeforeSchema: empty, AfterSchema: withT1})
	if err != nil || !hasTable(r.BeforeSchema, "t1") || !hasTable(r.AfterSchema, "t1") {
		t.Fatalf("already applied: %v %v", r, err)
	}
	// ... or force is set.
	if _, err := apply(&tmpb.ApplySchemaRequest{Sql: "create table t2 (id int)", BeforeSchema: empty, Force: true}); err != nil {
		t.Fatalf("forced: %v", err)
	}
	// A result other than after_schema fails (after running).
	_, err = apply(&tmpb.ApplySchemaRequest{Sql: "create table t3 (id int)", AfterSchema: withT1})
	wantCode(t, "after_schema mismatch", err, vtrpcpb.Code_FAILED_PRECONDITION, 0)

	// A bad statement in the middle is named; the one before stays, the one after never ran.
	_, err = apply(&tmpb.ApplySchemaRequest{Sql: "create table a1 (id int);\ninsert into nosuch values (1);\ncreate table a3 (id int)"})
	want := "ApplySchema: statement 2 of 3 failed (statement 1 ran and is not undone): " +
		"Table 'vt_commerce.nosuch' doesn't exist (errno 1146) (sqlstate 42S02) during query: insert into nosuch values (1)"
	if code(err) != vtrpcpb.Code_NOT_FOUND || status.Convert(err).Message() != want {
		t.Fatalf("failing middle statement: %v\nwant NOT_FOUND %q", err, want)
	}
	if !tableExists(t, root, "vt_commerce", "a1") || tableExists(t, root, "vt_commerce", "a3") {
		t.Fatal("want a1 created and a3 not")
	}

	t.Run("session settings", func(t *testing.T) {
		_, err := apply(&tmpb.ApplySchemaRequest{SqlMode: "NO_AUTO_VALUE_ON_ZERO", DisableForeignKeyChecks: true,
			Sql: "create table z (id int auto_increment primary key, p int, foreign key (p) references t1 (id)); insert into z values (0, 99)"})
		if err != nil {
			t.Fatal(err)
		}
		if got := scalar(t, root, "SELECT CONCAT(id, '/', p) FROM vt_commerce.z"); got != "0/99" {
			t.Errorf("row %q: want 0/99 (NO_AUTO_VALUE_ON_ZERO kept the 0, foreign key checks were off)", got)
		}
		if _, err := apply(&tmpb.ApplySchemaRequest{Sql: "create table replicated_r (id int)", AllowReplication: true}); err != nil {
			t.Fatal(err)
		}
		if binlogged(t, root, "table z") || !binlogged(t, root, "table replicated_r") {
			t.Errorf("DDL in the binlog without allow_replication: %v (want false), with it: %v (want true)",
				binlogged(t, root, "table z"), binlogged(t, root, "table replicated_r"))
		}
	})

	t.Run("MariaDB syntax the parser does not know", func(t *testing.T) {
		if _, err := apply(&tmpb.ApplySchemaRequest{Sql: "create table u1 (id uuid primary key);\ncreate or replace table u2 (a inet6)"}); err != nil {
			t.Fatal(err)
		}
		if !tableExists(t, root, "vt_commerce", "u1") || !tableExists(t, root, "vt_commerce", "u2") {
			t.Fatal("the script did not create u1 and u2")
		}
		_, err := apply(&tmpb.ApplySchemaRequest{Sql: "create table u3 (id uuid); insert into nosuch values (1); create table u4 (id uuid)"})
		wantCode(t, "failing unparseable script", err, vtrpcpb.Code_NOT_FOUND, 1146)
		if !tableExists(t, root, "vt_commerce", "u3") || tableExists(t, root, "vt_commerce", "u4") {
			t.Fatal("want u3 created and u4 not")
		}
	})

	_, err = apply(&tmpb.ApplySchemaRequest{Sql: " ; "})
	wantCode(t, "no statement", err, vtrpcpb.Code_INVALID_ARGUMENT, 0)
}

func hasTable(sd *tmpb.SchemaDefinition, name string) bool {
	return slices.ContainsFunc(sd.GetTableDefinitions(), func(td *tmpb.TableDefinition) bool { return td.Name == name })
}

// TestTMPreflightSchema: changes run on a scratch copy; the real database is untouched and
// the copy is gone afterwards, also after a failing change.
func TestTMPreflightSchema(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	root := q.db.RootDB(t)
	q.mustDBA(t, "create table base (id int primary key, v varchar(10))")
	q.mustDBA(t, "create view base_v as select id from base")
	r, err := q.tm.PreflightSchema(tmCtx(t), &tmpb.PreflightSchemaRequest{Changes: []string{
		"create table p1 (id int)", "alter table p1 add column c int; alter table base drop column v"}})
	if err != nil {
		t.Fatal(err)
	}
	res := r.ChangeResults
	if len(res) != 2 || hasTable(res[0].BeforeSchema, "p1") || !hasTable(res[0].AfterSchema, "p1") ||
		!hasTable(res[0].BeforeSchema, "base_v") || !slices.Contains(tableDef(res[1].AfterSchema, "p1").GetColumns(), "c") ||
		slices.Contains(tableDef(res[1].AfterSchema, "base").GetColumns(), "v") {
		t.Fatalf("preflight results %v", res)
	}
	if tableExists(t, root, "vt_commerce", "p1") || scalar(t, root, "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = 'vt_commerce' AND table_name = 'base'") != "2" {
		t.Fatal("preflight changed the real database")
	}
	_, err = q.tm.PreflightSchema(tmCtx(t), &tmpb.PreflightSchemaRequest{Changes: []string{"alter table nosuch add column c int"}})
	wantCode(t, "failing change", err, vtrpcpb.Code_NOT_FOUND, 1146)
	if scalar(t, root, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '_vt_preflight'") != "0" {
		t.Fatal("_vt_preflight left behind")
	}
}

func tableDef(sd *tmpb.SchemaDefinition, name string) *tmpb.TableDefinition {
	for _, td := range sd.GetTableDefinitions() {
		if td.Name == name {
			return td
		}
	}
	return nil
}

// TestTMGetSchema: the definitions vtctld compares, as mysqlctl normalises them.
func TestTMGetSchema(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	q.mustDBA(t, "create table t (id bigint not null auto_increment, b int not null, primary key (b, id), key (id))")
	q.mustDBA(t, "insert into t (b) values (1), (2)")
	q.mustDBA(t, "create view v as select id from t")
	r, err := q.tm.GetSchema(tmCtx(t), &tmpb.GetSchemaRequest{IncludeViews: true, ExcludeTables: []string{"/^_/"}})
	if err != nil {
		t.Fatal(err)
	}
	sd := r.SchemaDefinition
	if want := "CREATE DATABASE /*!32312 IF NOT EXISTS*/ {{.DatabaseName}} /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */"; sd.DatabaseSchema != want {
		t.Errorf("database schema %q, want %q", sd.DatabaseSchema, want)
	}
	if len(sd.TableDefinitions) != 2 {
		t.Fatalf("tables %v", sd.TableDefinitions)
	}
	tt, v := sd.TableDefinitions[0], sd.TableDefinitions[1]
	wantT := "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `b` int(11) NOT NULL,\n  PRIMARY KEY (`b`,`id`),\n  KEY `id` (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	if tt.Name != "t" || tt.Schema != wantT || tt.Type != "BASE TABLE" || !slices.Equal(tt.PrimaryKeyColumns, []string{"b", "id"}) ||
		!slices.Equal(tt.Columns, []string{"id", "b"}) || len(tt.Fields) != 2 || tt.Fields[0].Type != querypb.Type_INT64 || tt.RowCount == 0 {
		t.Errorf("table t: %v\nwant schema %q", tt, wantT)
	}
	wantV := "CREATE ALGORITHM=UNDEFINED DEFINER=`vt_dba`@`%` SQL SECURITY DEFINER VIEW {{.DatabaseName}}.`v` AS select {{.DatabaseName}}.`t`.`id` AS `id` from {{.DatabaseName}}.`t`"
	if v.Name != "v" || v.Type != "VIEW" || v.Schema != wantV {
		t.Errorf("view v: %v\nwant schema %q", v, wantV)
	}
	_, err = q.tm.GetSchema(tmCtx(t), &tmpb.GetSchemaRequest{Tables: []string{"/[/"}})
	wantCode(t, "bad regexp", err, vtrpcpb.Code_INVALID_ARGUMENT, 0)
}

// TestTMFetchAsAppAllPrivsAndQuery: the app and allprivs fetches, and ExecuteQuery through the
// query service with the request's caller (the table ACL sees it).
func TestTMFetchAsAppAllPrivsAndQuery(t *testing.T) {
	t.Parallel()
	acl := filepath.Join(t.TempDir(), "acl.json")
	if err := os.WriteFile(acl, []byte(`{"table_groups":[{"name":"all","table_names_or_prefixes":["%"],"readers":["alice"],"writers":["alice"],"admins":["alice"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	q := newSchemaQT(t, func(c *tablet.Config) { c.TableACLFile, c.Query.ACL.Strict = acl, true })
	q.mustDBA(t, "create table t (id int primary key)")
	q.mustDBA(t, "insert into t values (1), (2)")
	ctx := tmCtx(t)

	app, err := q.tm.ExecuteFetchAsApp(ctx, &tmpb.ExecuteFetchAsAppRequest{Query: []byte("select id from t order by id"), MaxRows: 10})
	if err != nil || len(app.Result.Rows) != 2 || app.Result.Fields[0].Database != "vt_commerce" {
		t.Fatalf("ExecuteFetchAsApp: %v %v", app, err)
	}
	_, err = q.tm.ExecuteFetchAsApp(ctx, &tmpb.ExecuteFetchAsAppRequest{Query: []byte("select id from t"), MaxRows: 1})
	wantCode(t, "app over max_rows", err, vtrpcpb.Code_ABORTED, 0)
	_, err = q.tm.ExecuteFetchAsApp(ctx, &tmpb.ExecuteFetchAsAppRequest{Query: []byte("select 1; select 2"), MaxRows: 1})
	wantCode(t, "app two statements", err, vtrpcpb.Code_INVALID_ARGUMENT, 0)

	// allprivs: without db_name, the tablet's database.
	ap, err := q.tm.ExecuteFetchAsAllPrivs(ctx, &tmpb.ExecuteFetchAsAllPrivsRequest{Query: []byte("select current_user(), count(*) from t"), MaxRows: 1})
	if err != nil || values(ap.Result)[0][0] != "vt_allprivs@%" || values(ap.Result)[0][1] != "2" {
		t.Fatalf("ExecuteFetchAsAllPrivs: %v %v", ap, err)
	}
	_, err = q.tm.ExecuteFetchAsAllPrivs(ctx, &tmpb.ExecuteFetchAsAllPrivsRequest{Query: []byte("select * from nosuch"), DbName: "vt_commerce"})
	wantCode(t, "allprivs missing table", err, vtrpcpb.Code_NOT_FOUND, 1146)

	asCaller := func(who, sql string) (*tmpb.ExecuteQueryResponse, error) {
		return q.tm.ExecuteQuery(ctx, &tmpb.ExecuteQueryRequest{Query: []byte(sql), DbName: "vt_commerce", MaxRows: 10,
			CallerId: &vtrpcpb.CallerID{Principal: who}})
	}
	if r, err := asCaller("alice", "select id from t order by id"); err != nil || len(r.Result.Rows) != 2 {
		t.Fatalf("ExecuteQuery as alice: %v %v", r, err)
	}
	if _, err := asCaller("alice", "insert into t values (3)"); err != nil {
		t.Fatalf("ExecuteQuery write as alice: %v", err)
	}
	_, err = asCaller("mallory", "select id from t")
	wantCode(t, "ExecuteQuery as a caller the ACL does not know", err, vtrpcpb.Code_PERMISSION_DENIED, 0)
}

// TestTMReloadSchema: no position, a position already reached, and a bad position.
func TestTMReloadSchema(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	ctx := tmCtx(t)
	if _, err := q.tm.ReloadSchema(ctx, &tmpb.ReloadSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	q.mustDBA(t, "create table t (id int)")
	pos := "MariaDB/" + scalar(t, q.db.RootDB(t), "SELECT @@global.gtid_binlog_pos")
	if _, err := q.tm.ReloadSchema(ctx, &tmpb.ReloadSchemaRequest{WaitPosition: pos}); err != nil {
		t.Fatalf("ReloadSchema(%s): %v", pos, err)
	}
	_, err := q.tm.ReloadSchema(ctx, &tmpb.ReloadSchemaRequest{WaitPosition: "not-a-position"})
	wantCode(t, "bad position", err, vtrpcpb.Code_INVALID_ARGUMENT, 0)
}

// TestTMGetPermissions: mysql.user and mysql.db as Vitess lists them, never a password hash.
func TestTMGetPermissions(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	root := q.db.RootDB(t)
	if _, err := root.Exec("GRANT SELECT ON vt_commerce.* TO 'vt_appdebug'@'%'"); err != nil {
		t.Fatal(err)
	}
	r, err := q.tm.GetPermissions(tmCtx(t), &tmpb.GetPermissionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := r.Permissions
	hash := scalar(t, root, "SELECT Password FROM mysql.user WHERE User = 'vt_dba' AND Host = '%'")
	var dba *tmpb.UserPermission
	for i, up := range p.UserPermissions {
		if i > 0 && (p.UserPermissions[i-1].Host+":"+p.UserPermissions[i-1].User) > up.Host+":"+up.User {
			t.Errorf("user permissions not sorted by host, user: %s@%s after %s@%s", up.User, up.Host, p.UserPermissions[i-1].User, p.UserPermissions[i-1].Host)
		}
		if up.User == "vt_dba" && up.Host == "%" {
			dba = up
		}
	}
	if dba == nil || hash == "" || dba.PasswordChecksum != crc64.Checksum([]byte(hash), crc64.MakeTable(crc64.ISO)) ||
		dba.Privileges["Select_priv"] != "Y" || dba.Privileges["Super_priv"] != "Y" {
		t.Fatalf("vt_dba@%%: %v", dba)
	}
	for _, hidden := range []string{"Password", "authentication_string", "password_last_changed"} {
		if _, ok := dba.Privileges[hidden]; ok {
			t.Errorf("privileges list %s", hidden)
		}
	}
	if text := prototext.Format(p); strings.Contains(text, hash) || strings.Contains(text, strings.TrimPrefix(hash, "*")) {
		t.Fatal("the response carries a password hash")
	}
	found := false
	for _, dp := range p.DbPermissions {
		if dp.User == "vt_appdebug" && dp.Host == "%" && dp.Db == "vt_commerce" {
			found = dp.Privileges["Select_priv"] == "Y" && dp.Privileges["Insert_priv"] == "N"
		}
	}
	if !found {
		t.Errorf("db permissions lack vt_appdebug@%% on vt_commerce with SELECT only: %v", p.DbPermissions)
	}
}

// TestTMLockTables: writes wait while the tables are locked; locking twice and unlocking
// what is not locked fail.
func TestTMLockTables(t *testing.T) {
	t.Parallel()
	q := newSchemaQT(t, nil)
	q.mustDBA(t, "create table t (id int)")
	root := q.db.RootDB(t)
	ctx := tmCtx(t)
	blocked := func() bool {
		t.Helper()
		c, err := root.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, "SET SESSION lock_wait_timeout = 1"); err != nil {
			t.Fatal(err)
		}
		_, err = c.ExecContext(ctx, "INSERT INTO vt_commerce.t VALUES (1)")
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1205 {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if _, err := q.tm.LockTables(ctx, &tmpb.LockTablesRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := q.tm.LockTables(ctx, &tmpb.LockTablesRequest{})
	wantCode(t, "second LockTables", err, vtrpcpb.Code_FAILED_PRECONDITION, 0)
	if !blocked() {
		t.Fatal("an insert went through LockTables")
	}
	if _, err := q.tm.UnlockTables(ctx, &tmpb.UnlockTablesRequest{}); err != nil {
		t.Fatal(err)
	}
	if blocked() {
		t.Fatal("insert blocked after UnlockTables")
	}
	_, err = q.tm.UnlockTables(ctx, &tmpb.UnlockTablesRequest{})
	wantCode(t, "UnlockTables without a lock", err, vtrpcpb.Code_FAILED_PRECONDITION, 0)
}

// TestTMSidecarQualifier: in a keyspace with its own sidecar database, "_vt." in a fetched
// statement means that database, as in vttablet.
func TestTMSidecarQualifier(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.put(t, path.Join(globalRoot, "keyspaces", "commerce", "Keyspace"), &topodatapb.Keyspace{SidecarDbName: "_vt_side"})
	db := mariadbtest.Start(t, privateTmp(t))
	db.Exec(t, "CREATE DATABASE vt_commerce", "CREATE DATABASE IF NOT EXISTS _vt_side", "CREATE TABLE _vt_side.mine (id int)",
		"INSERT INTO _vt_side.mine VALUES (7)")
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 210, initType: topodatapb.TabletType_PRIMARY}))
	eventually(t, 10*time.Second, "the tablet is registered (and knows its sidecar database)", func() bool {
		return e.get(t, tabletKey(210), &topodatapb.Tablet{})
	})
	res, err := r.tm.ExecuteFetchAsDba(tmCtx(t), &tmpb.ExecuteFetchAsDbaRequest{Query: []byte("select id from _vt.mine"), DbName: "vt_commerce", MaxRows: 1})
	if err != nil || len(res.Result.Rows) != 1 || values(res.Result)[0][0] != "7" {
		t.Fatalf("select from _vt.mine in keyspace with sidecar _vt_side: %v %v", res, err)
	}
}
